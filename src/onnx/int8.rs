//! The INT8 variant of a model this writer produced, in ONNX Runtime's QDQ form: the
//! convolutions' weights stored as int8 (one scale per output channel), their biases as int32,
//! and the activations between them quantized to uint8 (one scale per tensor, from ranges
//! measured on calibration images). ONNX Runtime's graph optimizer turns each
//! `DequantizeLinear -> Conv -> QuantizeLinear` into an integer convolution (`QLinearConv`,
//! with VNNI instructions where the CPU has them) and each block's sum into `QLinearAdd`; the
//! speed-up `nlcl bench --parts d` measures (models/MODELS.md) is that. The first convolution,
//! the last one, the global residual (input + change) and the clamp stay float (see
//! `quantized_tensors` for why), as do the input `rainy` and the outputs, so the model-file
//! contract is unchanged.
//!
//! Two steps, because the ranges come from running the float model:
//! [`with_calibration_outputs`] exposes the tensors to be quantized as extra graph outputs,
//! the caller runs that model on its calibration images and collects each tensor's [`Range`],
//! and [`to_int8`] writes the variant.

use std::collections::{BTreeMap, HashMap};

use prost::Message;

use super::proto::{
    GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto, TypeProto,
    TypeProtoTensor, ValueInfoProto, data_type,
};
use super::{OnnxError, meta};

/// Metadata value of [`meta::PRECISION`] in an INT8 variant.
pub const INT8: &str = "int8";

/// The values one tensor took over the calibration images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    /// An empty range, to be widened by [`Range::include`].
    pub const EMPTY: Range = Range {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    /// Widens the range to hold every finite value of `values`.
    pub fn include(&mut self, values: &[f32]) {
        for &v in values.iter().filter(|v| v.is_finite()) {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// The uint8 scale and zero point covering the range and 0 (which must be exact: it is
    /// the convolutions' padding and a ReLU's floor).
    fn uint8_params(self) -> (f32, u8) {
        let lo = self.min.min(0.0);
        let hi = self.max.max(0.0).max(lo + 1e-6);
        let scale = (hi - lo) / 255.0;
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zero)
    }
}

/// A histogram of one tensor's values over the calibration images, within the [`Range`] a
/// first pass measured: the range to quantize over can then leave out the rarest extremes,
/// which would otherwise coarsen the steps of every common value.
#[derive(Debug, Clone)]
pub struct Histogram {
    range: Range,
    bins: Vec<u64>,
}

impl Histogram {
    const BINS: usize = 4096;

    /// An empty histogram over `range`.
    pub fn new(range: Range) -> Self {
        Histogram {
            range,
            bins: vec![0; Self::BINS],
        }
    }

    /// Counts every finite value of `values` (values outside the range in its end bins).
    pub fn add(&mut self, values: &[f32]) {
        let width = (self.range.max - self.range.min).max(1e-12);
        let last = Self::BINS - 1;
        for &v in values.iter().filter(|v| v.is_finite()) {
            let at = ((v - self.range.min) / width * Self::BINS as f32).max(0.0) as usize;
            self.bins[at.min(last)] += 1;
        }
    }

    /// The range holding all but `tail` of the values at each end (e.g. 1e-4), widened to the
    /// bins' edges; the full range when `tail` is 0.
    pub fn central(&self, tail: f64) -> Range {
        let total: u64 = self.bins.iter().sum();
        if total == 0 || tail <= 0.0 {
            return self.range;
        }
        let cut = (tail * total as f64) as u64;
        let edge = |i: usize| {
            self.range.min + (self.range.max - self.range.min) * i as f32 / Self::BINS as f32
        };
        let (mut seen, mut lo) = (0u64, 0usize);
        while lo < Self::BINS - 1 && seen + self.bins[lo] <= cut {
            seen += self.bins[lo];
            lo += 1;
        }
        let (mut seen, mut hi) = (0u64, Self::BINS);
        while hi > lo + 1 && seen + self.bins[hi - 1] <= cut {
            seen += self.bins[hi - 1];
            hi -= 1;
        }
        Range {
            min: edge(lo),
            max: edge(hi),
        }
    }
}

/// What the rewrite quantizes, found from the graph alone: the activations between integer
/// operations (outputs of ReLU, of convolutions not followed by a ReLU, and sums of two
/// quantized tensors), in graph order. The ends stay float: the first convolution reads the
/// input itself (8-bit frames mapped to [-1, 1] fall exactly between the steps of any uint8
/// grid that covers them, so quantizing them would add half a level of noise to every pixel),
/// and the last convolution's output, the change the model makes, is added to the input in
/// float. Both are a small part of the work.
fn quantized_tensors(graph: &GraphProto) -> Vec<String> {
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            consumers.entry(i.as_str()).or_default().push(n);
        }
    }
    let only_relu = |t: &str| {
        consumers
            .get(t)
            .is_some_and(|c| c.len() == 1 && c[0].op_type == "Relu")
    };
    let mut list: Vec<String> = Vec::new();
    for n in &graph.node {
        let Some(out) = n.output.first() else {
            continue;
        };
        match n.op_type.as_str() {
            "Conv" if !only_relu(out) => list.push(out.clone()),
            "Relu" => list.push(out.clone()),
            "Add" if n.input.iter().all(|i| list.contains(i)) => list.push(out.clone()),
            _ => {}
        }
    }
    // Drop what no integer operation reads, until nothing changes (a sum dropped leaves its
    // inputs with one integer reader fewer).
    loop {
        let before = list.len();
        let kept: Vec<String> = list
            .iter()
            .filter(|t| {
                consumers.get(t.as_str()).is_some_and(|c| {
                    c.iter().any(|n| {
                        is_integer_op(n, &list) && n.input.first() == Some(*t)
                            || n.op_type == "Add" && is_integer_op(n, &list)
                    })
                })
            })
            .cloned()
            .collect();
        list = kept;
        if list.len() == before {
            return list;
        }
    }
}

/// Whether `node` runs on quantized inputs once rewritten, given the quantized tensors: a
/// convolution reading a quantized tensor, or a ReLU or sum whose output is quantized.
fn is_integer_op(node: &NodeProto, quantized: &[String]) -> bool {
    match node.op_type.as_str() {
        "Conv" => node.input.first().is_some_and(|x| quantized.contains(x)),
        "Relu" | "Add" => node.output.first().is_some_and(|o| quantized.contains(o)),
        _ => false,
    }
}

fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    if let Some(p) = model
        .metadata_props
        .iter()
        .find(|e| e.key == meta::PRECISION)
    {
        return Err(OnnxError::Decode(format!(
            "the model is already {}; the INT8 variant is written from a float32 model",
            p.value
        )));
    }
    if model.graph.is_none() {
        return Err(OnnxError::Decode("the file holds no graph".into()));
    }
    Ok(model)
}

fn float_output(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: None,
            }),
        }),
        doc_string: String::new(),
    }
}

/// The float32 model `bytes` with every tensor [`to_int8`] needs a range for added as a graph
/// output, and those tensors' names.
pub fn with_calibration_outputs(bytes: &[u8]) -> Result<(Vec<u8>, Vec<String>), OnnxError> {
    let mut model = decode(bytes)?;
    let graph = model.graph.as_mut().expect("checked by decode");
    let names = quantized_tensors(graph);
    graph.output.extend(names.iter().map(|n| float_output(n)));
    Ok((model.encode_to_vec(), names))
}

fn tensor(name: String, dims: Vec<i64>, data_type: i32, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        dims,
        data_type,
        name,
        raw_data,
    }
}

fn op(op_type: &str, input: Vec<String>, output: String, axis: Option<i64>) -> NodeProto {
    NodeProto {
        name: output.clone(),
        input,
        output: vec![output],
        op_type: op_type.into(),
        attribute: axis
            .map(|a| super::int_attr("axis", a))
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn floats(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn raw_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Stores the quantized initializer `name` (`(dims, data type, raw values)`, one scale per
/// output channel along axis 0, zero points `zero` as raw bytes of that type) and dequantizes it
/// for its reader; returns the dequantized tensor's name.
fn per_channel(
    name: &str,
    (dims, dtype, raw): (Vec<i64>, i32, Vec<u8>),
    scales: &[f32],
    zero: Vec<u8>,
    nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<TensorProto>,
) -> String {
    let channels = vec![scales.len() as i64];
    inits.push(tensor(format!("{name}.q"), dims, dtype, raw));
    inits.push(tensor(
        format!("{name}.scale"),
        channels.clone(),
        data_type::FLOAT,
        raw_f32(scales),
    ));
    inits.push(tensor(format!("{name}.zero"), channels, dtype, zero));
    let out = format!("{name}.dq");
    nodes.push(op(
        "DequantizeLinear",
        vec![
            format!("{name}.q"),
            format!("{name}.scale"),
            format!("{name}.zero"),
        ],
        out.clone(),
        Some(0),
    ));
    out
}

/// Rewrites the float32 model `bytes` (written by [`super::write_model`]) as its INT8 variant,
/// with the activation ranges `ranges` measured on calibration images (every name
/// [`with_calibration_outputs`] returned). The metadata gains `nlcl.precision = int8`.
pub fn to_int8(bytes: &[u8], ranges: &BTreeMap<String, Range>) -> Result<Vec<u8>, OnnxError> {
    let mut model = decode(bytes)?;
    let graph = model.graph.as_mut().expect("checked by decode");
    let quantized = quantized_tensors(graph);
    let mut activation: HashMap<String, (f32, u8)> = HashMap::new();
    for name in &quantized {
        let range = match ranges.get(name) {
            Some(r) if r.min.is_finite() && r.max.is_finite() => *r,
            _ => {
                return Err(OnnxError::Decode(format!(
                    "no calibrated range for tensor {name:?}"
                )));
            }
        };
        activation.insert(name.clone(), range.uint8_params());
    }
    let mut initializers: HashMap<String, TensorProto> = graph
        .initializer
        .drain(..)
        .map(|t| (t.name.clone(), t))
        .collect();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut dq_count = 0usize;
    // A fresh DequantizeLinear per consumer, as ONNX Runtime's node-unit selectors want.
    let mut dequantized = |t: &str, nodes: &mut Vec<NodeProto>| -> String {
        dq_count += 1;
        let out = format!("{t}.dq{dq_count}");
        nodes.push(op(
            "DequantizeLinear",
            vec![format!("{t}.q"), format!("{t}.scale"), format!("{t}.zero")],
            out.clone(),
            None,
        ));
        out
    };
    let quantize = |t: &str, nodes: &mut Vec<NodeProto>, inits: &mut Vec<TensorProto>| {
        let (scale, zero) = activation[t];
        inits.push(tensor(
            format!("{t}.scale"),
            vec![],
            data_type::FLOAT,
            raw_f32(&[scale]),
        ));
        inits.push(tensor(
            format!("{t}.zero"),
            vec![],
            data_type::UINT8,
            vec![zero],
        ));
        nodes.push(op(
            "QuantizeLinear",
            vec![t.to_string(), format!("{t}.scale"), format!("{t}.zero")],
            format!("{t}.q"),
            None,
        ));
    };
    for mut node in std::mem::take(&mut graph.node) {
        let x_name = node.input.first().cloned().unwrap_or_default();
        let integer = is_integer_op(&node, &quantized);
        for i in 0..node.input.len() {
            if integer && activation.contains_key(&node.input[i]) {
                let t = node.input[i].clone();
                node.input[i] = dequantized(&t, &mut nodes);
            }
        }
        if node.op_type == "Conv"
            && let Some(&(x_scale, _)) = activation.get(&x_name)
        {
            let w_name = node.input.get(1).cloned().unwrap_or_default();
            let w = initializers.remove(&w_name).ok_or_else(|| {
                OnnxError::Decode(format!("convolution {:?} has no weight", node.name))
            })?;
            let out_ch = usize::try_from(w.dims.first().copied().unwrap_or(0)).unwrap_or(0);
            let values = floats(&w.raw_data);
            if out_ch == 0 || values.is_empty() || !values.len().is_multiple_of(out_ch) {
                return Err(OnnxError::Decode(format!(
                    "weight {w_name:?} has an odd shape"
                )));
            }
            let per = values.len() / out_ch;
            let scales: Vec<f32> = values
                .chunks(per)
                .map(|c| c.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12) / 127.0)
                .collect();
            let q: Vec<u8> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (v / scales[i / per]).round().clamp(-127.0, 127.0) as i8 as u8)
                .collect();
            node.input[1] = per_channel(
                &w_name,
                (w.dims, data_type::INT8, q),
                &scales,
                vec![0; out_ch],
                &mut nodes,
                &mut new_inits,
            );
            if let Some(b_name) = node.input.get(2).cloned() {
                let b = initializers.remove(&b_name).ok_or_else(|| {
                    OnnxError::Decode(format!("convolution {:?} has no bias", node.name))
                })?;
                let bias = floats(&b.raw_data);
                if bias.len() != out_ch {
                    return Err(OnnxError::Decode(format!(
                        "bias {b_name:?} has an odd shape"
                    )));
                }
                // The integer convolution adds the bias in its accumulator's scale.
                let b_scales: Vec<f32> = scales.iter().map(|s| s * x_scale).collect();
                let q: Vec<u8> = bias
                    .iter()
                    .zip(&b_scales)
                    .flat_map(|(v, s)| ((v / s).round() as i32).to_le_bytes())
                    .collect();
                node.input[2] = per_channel(
                    &b_name,
                    (b.dims, data_type::INT32, q),
                    &b_scales,
                    vec![0; 4 * out_ch],
                    &mut nodes,
                    &mut new_inits,
                );
            }
        }
        let out = node.output.first().cloned();
        nodes.push(node);
        if let Some(out) = out
            && activation.contains_key(&out)
        {
            quantize(&out, &mut nodes, &mut new_inits);
        }
    }
    graph.node = nodes;
    graph.initializer = initializers.into_values().chain(new_inits).collect();
    graph.initializer.sort_by(|a, b| a.name.cmp(&b.name));
    model.metadata_props.push(StringStringEntryProto {
        key: meta::PRECISION.into(),
        value: INT8.into(),
    });
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_range_leaves_out_the_rarest_extremes() {
        // 100,000 values spread over [-1, 1] and one far outlier: the full range is set by the
        // outlier, the central 99.99 % by the common values.
        let values: Vec<f32> = (0..100_000)
            .map(|i| i as f32 / 50_000.0 - 1.0)
            .chain([300.0])
            .collect();
        let mut range = Range::EMPTY;
        range.include(&values);
        assert_eq!((range.min, range.max), (-1.0, 300.0));
        let mut hist = Histogram::new(range);
        hist.add(&values);
        assert_eq!(hist.central(0.0), range);
        let central = hist.central(1e-4);
        assert!(central.min <= -0.99 && central.max >= 0.99, "{central:?}");
        assert!(
            central.max < 1.2,
            "the outlier still sets the range: {central:?}"
        );
    }

    #[test]
    fn uint8_steps_hold_zero_exactly() {
        for r in [
            (-1.0, 3.0),
            (0.0, 7.97),
            (0.5, 2.0),
            (-4.0, -1.0),
            (0.0, 0.0),
        ] {
            let (scale, zero) = Range { min: r.0, max: r.1 }.uint8_params();
            assert!(scale > 0.0, "{r:?}");
            // 0 maps to the integer `zero`, and the whole range (with 0) fits in 0..=255.
            let lo = (r.0.min(0.0) / scale).round() + f32::from(zero);
            let hi = (r.1.max(0.0) / scale).round() + f32::from(zero);
            assert!(lo >= 0.0 && hi <= 255.0, "{r:?}: {lo}..{hi}");
        }
    }
}
