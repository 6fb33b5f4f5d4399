//! Writes an NLCL generator ([`ModelSpec`] + named weights) as an ONNX model.
//!
//! The graph follows the model-file contract of the crate root: input `rainy` `[N,3,H,W]`,
//! output `clean` (and `rain` when the rain generator is included), dynamic N, H and W, outputs
//! clamped to [-1, 1], provenance in `metadata_props` (keys in [`meta`]).

pub mod float16;
pub mod int8;
pub mod proto;

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use crate::spec::{BACK_PREFIX, ConvDesc, INSTANCE_NORM_EPS, ModelSpec, RAIN_PREFIX, SpecError};
use proto::*;

/// Metadata keys written into `metadata_props`.
pub mod meta {
    /// Architecture tag of [`crate::ModelSpec::tag`], e.g. `w16d4s2r`.
    pub const ARCH: &str = "nlcl.arch";
    /// `derain` or `dehaze`.
    pub const TASK: &str = "nlcl.task";
    /// Frame sizes must be multiples of this (callers pad and crop).
    pub const SIZE_MULTIPLE: &str = "nlcl.size_multiple";
    /// Value range of inputs and outputs, always `[-1,1]`.
    pub const INPUT_RANGE: &str = "nlcl.input_range";
    /// Comma-separated output names.
    pub const OUTPUTS: &str = "nlcl.outputs";
    /// Training data recipe.
    pub const DATA: &str = "nlcl.data";
    /// Training steps.
    pub const STEPS: &str = "nlcl.steps";
    /// Trainer options, including ablation flags.
    pub const TRAINER: &str = "nlcl.trainer";
    /// Evaluation numbers (as in models/MODELS.md).
    pub const EVAL: &str = "nlcl.eval";
    /// `float16` in the half-precision variant ([`super::float16`]); absent means float32.
    pub const PRECISION: &str = "nlcl.precision";
    /// The rain intensity (mean |input - output| in 8-bit levels) between this model's dry
    /// and rainy frames, measured with `bench/auto-bypass.sh`: each model changes dry frames
    /// by its own amount, so the element's auto-bypass uses this unless `rain-threshold` is set.
    pub const RAIN_THRESHOLD: &str = "nlcl.rain_threshold";
    /// The dead zone of the `clean` output in 8-bit levels ([`super::ExportConfig::dead_zone`]);
    /// absent means none.
    pub const DEAD_ZONE: &str = "nlcl.dead_zone";
}

/// ONNX opset the graphs are written for (Conv, InstanceNormalization, Clip with tensor bounds,
/// SpaceToDepth, DepthToSpace with `mode`).
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Errors from reading weights or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("weight {name:?} is missing from the checkpoint")]
    MissingWeight { name: String },
    #[error("weight {name:?} has shape {found:?}, the spec needs {expected:?}")]
    WeightShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("weight {name:?} has {found} values for shape {shape:?}")]
    WeightLength {
        name: String,
        found: usize,
        shape: Vec<usize>,
    },
    #[error("weight {name:?} has dtype {dtype}; only F32 and F64 are read")]
    WeightDtype { name: String, dtype: String },
    #[error("not a safetensors file: {0}")]
    Safetensors(String),
    #[error("not an ONNX model: {0}")]
    Decode(String),
    #[error("dead zone {0}: must be a number of levels in [0, 255]")]
    DeadZone(f32),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One named float32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Named float32 tensors, as saved by the trainer (safetensors) and read by the writer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    tensors: BTreeMap<String, WeightTensor>,
}

impl Weights {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a tensor; `data.len()` must equal the product of `shape`.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<(), OnnxError> {
        let name = name.into();
        if shape.iter().product::<usize>() != data.len() {
            return Err(OnnxError::WeightLength {
                name,
                found: data.len(),
                shape,
            });
        }
        self.tensors.insert(name, WeightTensor { shape, data });
        Ok(())
    }

    /// The tensor called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&WeightTensor> {
        self.tensors.get(name)
    }

    /// Names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Parses a safetensors file's bytes (F32 or F64 tensors; others are an error).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, OnnxError> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| OnnxError::Safetensors(e.to_string()))?;
        let mut w = Weights::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                safetensors::Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect(),
                other => {
                    return Err(OnnxError::WeightDtype {
                        name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            w.insert(name, view.shape().to_vec(), data)?;
        }
        Ok(w)
    }

    /// Reads a safetensors file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, OnnxError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_safetensors(&bytes)
    }

    /// Serialises as safetensors (F32, little endian).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, OnnxError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.shape.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, shape, raw)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| OnnxError::Safetensors(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, None).map_err(|e| OnnxError::Safetensors(e.to_string()))
    }

    /// Deterministic pseudo-random weights for a generator (tests, benchmarks, smoke runs):
    /// He-style scale so activations stay bounded, small biases.
    pub fn random_generator(spec: &ModelSpec, prefix: &str, seed: u64, scale: f32) -> Self {
        let mut rng = crate::rng::Rng::new(seed);
        let mut w = Weights::new();
        for conv in spec.convs() {
            let fan_in = (conv.in_ch * 9) as f32;
            let std = scale * (2.0 / fan_in).sqrt();
            let n = conv.out_ch * conv.in_ch * 9;
            let data = (0..n).map(|_| rng.range(-1.0, 1.0) * std * 1.732).collect();
            let bias = (0..conv.out_ch)
                .map(|_| rng.range(-1.0, 1.0) * 0.01)
                .collect();
            // Shapes match by construction, so insert cannot fail.
            let _ = w.insert(
                format!("{prefix}{}.weight", conv.name),
                vec![conv.out_ch, conv.in_ch, 3, 3],
                data,
            );
            let _ = w.insert(
                format!("{prefix}{}.bias", conv.name),
                vec![conv.out_ch],
                bias,
            );
        }
        w
    }

    /// Adds all tensors of `other`, replacing equal names.
    pub fn extend(&mut self, other: Weights) {
        self.tensors.extend(other.tensors);
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub spec: ModelSpec,
    /// Also export the rain-layer generator as output `rain`.
    pub include_rain: bool,
    /// Extra `metadata_props` (task, data recipe, steps, trainer options, evaluation).
    pub metadata: Vec<(String, String)>,
    /// Dead zone of the `clean` output, in 8-bit levels (0 = none): where the network would
    /// change a pixel by less than about this much (the mean over the colour channels), the
    /// change is faded out, smoothly: it is scaled by m^2 / (m^2 + t^2), a half at t, 0.9 at
    /// 3t. Rain changes pixels by tens of levels and keeps its removal; on dry frames the
    /// network's small, frame-to-frame varying changes vanish, so dry video passes untouched
    /// and as steady as it came. Recorded as [`meta::DEAD_ZONE`].
    pub dead_zone: f32,
}

/// Builds the ONNX model and returns its serialised bytes.
pub fn write_model(config: &ExportConfig, weights: &Weights) -> Result<Vec<u8>, OnnxError> {
    Ok(build_model(config, weights)?.encode_to_vec())
}

/// Builds the ONNX model and writes it to `path`.
pub fn write_model_file(
    config: &ExportConfig,
    weights: &Weights,
    path: impl AsRef<Path>,
) -> Result<(), OnnxError> {
    let path = path.as_ref();
    std::fs::write(path, write_model(config, weights)?).map_err(|source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A model whose `clean` output equals its input: the `spec` with a global residual and every
/// weight zero. A pass-through for pipeline tests, and the "no model" baseline of an evaluation.
pub fn identity_model(spec: ModelSpec) -> Result<Vec<u8>, OnnxError> {
    let spec = ModelSpec {
        global_residual: true,
        ..spec
    };
    let mut weights = Weights::new();
    for conv in spec.convs() {
        weights.insert(
            format!("{BACK_PREFIX}{}.weight", conv.name),
            vec![conv.out_ch, conv.in_ch, 3, 3],
            vec![0.0; conv.out_ch * conv.in_ch * 9],
        )?;
        weights.insert(
            format!("{BACK_PREFIX}{}.bias", conv.name),
            vec![conv.out_ch],
            vec![0.0; conv.out_ch],
        )?;
    }
    let config = ExportConfig {
        spec,
        include_rain: false,
        metadata: vec![(meta::TASK.into(), "identity".into())],
        dead_zone: 0.0,
    };
    write_model(&config, &weights)
}

/// Reads the `metadata_props` of an ONNX model without loading ONNX Runtime.
pub fn read_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>, OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    if model.graph.is_none() {
        return Err(OnnxError::Decode("the file holds no graph".into()));
    }
    Ok(model
        .metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

/// Reads back the generator(s) of a model this writer produced: the architecture (metadata
/// `nlcl.arch`) and the `back.*` (and, when exported, `rain.*`) weights in the trainer's layout
/// (the stem's channel permutation undone), so a shipped model can be fine-tuned.
pub fn read_generators(bytes: &[u8]) -> Result<(ModelSpec, Weights), OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let tag = model
        .metadata_props
        .iter()
        .find(|e| e.key == meta::ARCH)
        .map(|e| e.value.clone())
        .ok_or_else(|| {
            OnnxError::Decode(format!(
                "no {} metadata: the model was not written by nlcl",
                meta::ARCH
            ))
        })?;
    let spec = ModelSpec::from_tag(&tag)?;
    let graph = model
        .graph
        .ok_or_else(|| OnnxError::Decode("the file holds no graph".into()))?;
    let s = spec.unshuffle;
    let mut weights = Weights::new();
    for t in graph.initializer {
        if !(t.name.starts_with(BACK_PREFIX) || t.name.starts_with(RAIN_PREFIX)) {
            continue;
        }
        if t.data_type != data_type::FLOAT {
            return Err(OnnxError::WeightDtype {
                name: t.name,
                dtype: format!("ONNX type {}", t.data_type),
            });
        }
        let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let mut data: Vec<f32> = t
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if s > 1 && t.name.ends_with("head.weight") && shape.len() == 4 {
            // The writer stored ONNX channel j = the trained channel perm[j]; put them back.
            let (out_ch, in_ch) = (shape[0], shape[1]);
            let mut trained = vec![0f32; data.len()];
            for o in 0..out_ch {
                for j in 0..in_ch {
                    let (block, c) = (j / 3, j % 3);
                    let src = c * s * s + block;
                    let from = (o * in_ch + j) * 9;
                    let to = (o * in_ch + src) * 9;
                    trained[to..to + 9].copy_from_slice(&data[from..from + 9]);
                }
            }
            data = trained;
        }
        weights.insert(t.name, shape, data)?;
    }
    for conv in spec.convs() {
        checked(
            &weights,
            &format!("{BACK_PREFIX}{}.weight", conv.name),
            &[conv.out_ch, conv.in_ch, 3, 3],
        )?;
    }
    Ok((spec, weights))
}

fn build_model(config: &ExportConfig, weights: &Weights) -> Result<ModelProto, OnnxError> {
    let spec = config.spec;
    spec.validate()?;
    let mut g = GraphBuilder::default();
    let w = spec.width;
    if spec.instance_norm {
        g.constant("in_scale", vec![w], vec![1.0; w]);
        g.constant("in_bias", vec![w], vec![0.0; w]);
    }
    g.constant("clip_min", vec![], vec![-1.0]);
    g.constant("clip_max", vec![], vec![1.0]);

    let mut outputs = vec![("clean", BACK_PREFIX, spec.global_residual)];
    if config.include_rain {
        outputs.push(("rain", RAIN_PREFIX, false));
    }
    let dead_zone = config.dead_zone;
    if !(0.0..=255.0).contains(&dead_zone) {
        return Err(OnnxError::DeadZone(dead_zone));
    }
    if dead_zone > 0.0 {
        // In the graph's [-1, 1] units: one level is 2/255.
        let t = dead_zone * 2.0 / 255.0;
        g.constant("dead_zone_sq", vec![], vec![t * t]);
    }
    for (out_name, prefix, residual) in &outputs {
        let body = g.generator(&spec, prefix, weights)?;
        let gated = *out_name == "clean" && dead_zone > 0.0;
        let pre_clip = if *residual || gated {
            // The change the network makes (with a global residual, its body), gated by its
            // size when asked: clean = rainy - change.
            let mut change = if *residual {
                body
            } else {
                g.node("Sub", &["rainy", &body], &format!("{prefix}change"), vec![])
            };
            if gated {
                change = g.dead_zone(&change, prefix);
            }
            g.node(
                "Sub",
                &["rainy", &change],
                &format!("{prefix}residual"),
                vec![],
            )
        } else {
            body
        };
        g.nodes.push(NodeProto {
            input: vec![pre_clip, "clip_min".into(), "clip_max".into()],
            output: vec![out_name.to_string()],
            name: format!("{prefix}clip"),
            op_type: "Clip".into(),
            ..Default::default()
        });
    }

    let mut metadata = vec![
        (meta::ARCH.to_string(), spec.tag()),
        (
            meta::SIZE_MULTIPLE.to_string(),
            spec.size_multiple().to_string(),
        ),
        (meta::INPUT_RANGE.to_string(), "[-1,1]".to_string()),
        (
            meta::OUTPUTS.to_string(),
            outputs.iter().map(|o| o.0).collect::<Vec<_>>().join(","),
        ),
    ];
    for (k, v) in &config.metadata {
        metadata.retain(|(key, _)| key != k);
        metadata.push((k.clone(), v.clone()));
    }
    // What the graph computes, not what a caller says: the config decides this key.
    metadata.retain(|(key, _)| key != meta::DEAD_ZONE);
    if dead_zone > 0.0 {
        metadata.push((meta::DEAD_ZONE.to_string(), dead_zone.to_string()));
    }

    let graph = GraphProto {
        node: g.nodes,
        name: format!("nlcl_{}", spec.tag()),
        initializer: g.initializers,
        doc_string: "NLCL generator: rainy [N,3,H,W] in [-1,1] -> clean (and rain)".into(),
        input: vec![image_value_info("rainy")],
        output: outputs.iter().map(|o| image_value_info(o.0)).collect(),
        value_info: vec![],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "nlcl".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "org.nlcl".into(),
        model_version: 1,
        doc_string: "NLCL deraining generator (Ye et al., CVPR 2022)".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
    })
}

fn image_value_info(name: &str) -> ValueInfoProto {
    let dim = |p: &str| Dimension {
        dim_value: None,
        dim_param: Some(p.to_string()),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim("batch"),
                        Dimension {
                            dim_value: Some(3),
                            dim_param: None,
                        },
                        dim("height"),
                        dim("width"),
                    ],
                }),
            }),
        }),
        doc_string: String::new(),
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn ints_attr(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn string_attr(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    fn constant(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.into(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }

    /// Adds a node with one output named after the node; returns that output name.
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        name: &str,
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        name.to_string()
    }

    fn conv(
        &mut self,
        input: &str,
        prefix: &str,
        conv: &ConvDesc,
        weights: &Weights,
        permute_in: Option<&[usize]>,
    ) -> Result<String, OnnxError> {
        let wname = format!("{prefix}{}.weight", conv.name);
        let bname = format!("{prefix}{}.bias", conv.name);
        let wt = checked(weights, &wname, &[conv.out_ch, conv.in_ch, 3, 3])?;
        let bt = checked(weights, &bname, &[conv.out_ch])?;
        let data = match permute_in {
            // ONNX channel j of the stem takes the trained network's channel permute[j].
            Some(perm) => {
                let mut d = Vec::with_capacity(wt.data.len());
                for o in 0..conv.out_ch {
                    for &src in perm {
                        let base = (o * conv.in_ch + src) * 9;
                        d.extend_from_slice(&wt.data[base..base + 9]);
                    }
                }
                d
            }
            None => wt.data.clone(),
        };
        self.constant(&wname, wt.shape.clone(), data);
        self.constant(&bname, bt.shape.clone(), bt.data.clone());
        let out = format!("{prefix}{}", conv.name);
        Ok(self.node(
            "Conv",
            &[input, &wname, &bname],
            &out,
            vec![
                ints_attr("kernel_shape", &[3, 3]),
                ints_attr("pads", &[1, 1, 1, 1]),
                ints_attr("strides", &[1, 1]),
            ],
        ))
    }

    fn instance_norm(&mut self, input: &str) -> String {
        self.node(
            "InstanceNormalization",
            &[input, "in_scale", "in_bias"],
            &format!("{input}.norm"),
            vec![float_attr("epsilon", INSTANCE_NORM_EPS)],
        )
    }

    /// InstanceNorm when the spec has it; the normalisation-free variant passes `input` on.
    fn norm(&mut self, spec: &ModelSpec, input: &str) -> String {
        if spec.instance_norm {
            self.instance_norm(input)
        } else {
            input.to_string()
        }
    }

    /// `change * m^2 / (m^2 + t^2)`, m the mean of `change` over the colour channels and t^2
    /// the constant `dead_zone_sq` ([`ExportConfig::dead_zone`]).
    fn dead_zone(&mut self, change: &str, prefix: &str) -> String {
        let m = self.node(
            "ReduceMean",
            &[change],
            &format!("{prefix}change_mean"),
            vec![ints_attr("axes", &[1]), int_attr("keepdims", 1)],
        );
        let m2 = self.node("Mul", &[&m, &m], &format!("{prefix}change_sq"), vec![]);
        let den = self.node(
            "Add",
            &[&m2, "dead_zone_sq"],
            &format!("{prefix}change_sq_t"),
            vec![],
        );
        let gate = self.node("Div", &[&m2, &den], &format!("{prefix}gate"), vec![]);
        self.node("Mul", &[change, &gate], &format!("{prefix}gated"), vec![])
    }

    fn relu(&mut self, input: &str) -> String {
        self.node("Relu", &[input], &format!("{input}.relu"), vec![])
    }

    /// One generator; returns the name of its (unclamped) output.
    fn generator(
        &mut self,
        spec: &ModelSpec,
        prefix: &str,
        weights: &Weights,
    ) -> Result<String, OnnxError> {
        let convs = spec.convs();
        let s = spec.unshuffle;
        let mut x = "rainy".to_string();
        if spec.detail_radius > 0 {
            // The detail layer: the input less its box mean over the pixels inside the frame.
            let (k, r) = (2 * spec.detail_radius as i64 + 1, spec.detail_radius as i64);
            let mean = self.node(
                "AveragePool",
                &[&x],
                &format!("{prefix}lowpass"),
                vec![
                    ints_attr("kernel_shape", &[k, k]),
                    ints_attr("pads", &[r, r, r, r]),
                    ints_attr("strides", &[1, 1]),
                    int_attr("count_include_pad", 0),
                ],
            );
            x = self.node("Sub", &[&x, &mean], &format!("{prefix}detail"), vec![]);
        }
        let mut perm = None;
        if s > 1 {
            x = self.node(
                "SpaceToDepth",
                &[&x],
                &format!("{prefix}unshuffle"),
                vec![int_attr("blocksize", s as i64)],
            );
            // ONNX SpaceToDepth orders channels (dy*s+dx)*3+c; the trainer's pixel_unshuffle
            // orders them c*s*s+dy*s+dx. Permuting the head weights is cheaper than a transpose.
            let p: Vec<usize> = (0..3 * s * s)
                .map(|j| {
                    let (block, c) = (j / 3, j % 3);
                    c * s * s + block
                })
                .collect();
            perm = Some(p);
        }
        let mut it = convs.iter();
        let head = it
            .next()
            .ok_or_else(|| SpecError::Invalid("no head".into()))?;
        let mut h = self.conv(&x, prefix, head, weights, perm.as_deref())?;
        for _ in 0..spec.depth {
            let (c1, c2) = match (it.next(), it.next()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(SpecError::Invalid("block list too short".into()).into()),
            };
            let t = self.conv(&h, prefix, c1, weights, None)?;
            let t = self.norm(spec, &t);
            let t = self.relu(&t);
            let t = self.conv(&t, prefix, c2, weights, None)?;
            let t = self.norm(spec, &t);
            let name = format!("{prefix}{}.sum", c2.name.trim_end_matches(".conv2"));
            h = self.node("Add", &[&h, &t], &name, vec![]);
        }
        let rest: Vec<&ConvDesc> = it.collect();
        let [t1, t2, out] = rest[..] else {
            return Err(SpecError::Invalid("tail layout".into()).into());
        };
        let t = self.conv(&h, prefix, t1, weights, None)?;
        let t = self.norm(spec, &t);
        let t = self.relu(&t);
        let t = self.conv(&t, prefix, t2, weights, None)?;
        let mut o = self.conv(&t, prefix, out, weights, None)?;
        if s > 1 {
            // CRD is the channel order of PyTorch's pixel_shuffle.
            o = self.node(
                "DepthToSpace",
                &[&o],
                &format!("{prefix}shuffle"),
                vec![int_attr("blocksize", s as i64), string_attr("mode", "CRD")],
            );
        }
        Ok(o)
    }
}

fn checked<'a>(
    weights: &'a Weights,
    name: &str,
    expected: &[usize],
) -> Result<&'a WeightTensor, OnnxError> {
    let t = weights.get(name).ok_or_else(|| OnnxError::MissingWeight {
        name: name.to_string(),
    })?;
    if t.shape != expected {
        return Err(OnnxError::WeightShape {
            name: name.to_string(),
            found: t.shape.clone(),
            expected: expected.to_vec(),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ModelSpec {
        ModelSpec {
            width: 4,
            depth: 2,
            unshuffle: 2,
            global_residual: true,
            instance_norm: true,
            detail_radius: 0,
        }
    }

    #[test]
    fn read_generators_inverts_the_writer() {
        for unshuffle in [1, 2] {
            let spec = ModelSpec {
                width: 4,
                depth: 2,
                unshuffle,
                global_residual: true,
                instance_norm: false,
                detail_radius: 0,
            };
            let mut w = Weights::random_generator(&spec, BACK_PREFIX, 3, 0.5);
            w.extend(Weights::random_generator(&spec, RAIN_PREFIX, 4, 0.5));
            let config = ExportConfig {
                spec,
                include_rain: true,
                metadata: vec![],
                dead_zone: 0.0,
            };
            let bytes = write_model(&config, &w).unwrap();
            let (read_spec, read) = read_generators(&bytes).unwrap();
            assert_eq!(read_spec, spec);
            let mut names: Vec<&str> = w.names().collect();
            names.sort_unstable();
            let mut read_names: Vec<&str> = read.names().collect();
            read_names.sort_unstable();
            assert_eq!(names, read_names);
            for n in names {
                assert_eq!(w.get(n), read.get(n), "{n} (unshuffle {unshuffle})");
            }
        }
        assert!(read_generators(b"not onnx").is_err());
    }

    #[test]
    fn writes_decodable_model_with_metadata() {
        let spec = small();
        let w = Weights::random_generator(&spec, BACK_PREFIX, 1, 1.0);
        let cfg = ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![(meta::TASK.into(), "derain".into())],
            dead_zone: 0.0,
        };
        let bytes = write_model(&cfg, &w).unwrap();
        let md = read_metadata(&bytes).unwrap();
        let get = |k: &str| md.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get(meta::ARCH), Some("w4d2s2r"));
        assert_eq!(get(meta::SIZE_MULTIPLE), Some("2"));
        assert_eq!(get(meta::TASK), Some("derain"));
        assert_eq!(get(meta::OUTPUTS), Some("clean"));
        let m = ModelProto::decode(bytes.as_slice()).unwrap();
        let g = m.graph.unwrap();
        // head + 2 blocks * 2 + tail 2 + out.
        assert_eq!(g.node.iter().filter(|n| n.op_type == "Conv").count(), 8);
    }

    #[test]
    fn missing_and_misshaped_weights_are_named() {
        let spec = small();
        let mut w = Weights::random_generator(&spec, BACK_PREFIX, 1, 1.0);
        let cfg = ExportConfig {
            spec,
            include_rain: true,
            metadata: vec![],
            dead_zone: 0.0,
        };
        match write_model(&cfg, &w) {
            Err(OnnxError::MissingWeight { name }) => assert_eq!(name, "rain.head.weight"),
            other => panic!("{other:?}"),
        }
        w.insert("back.out.bias", vec![5], vec![0.0; 5]).unwrap();
        let cfg = ExportConfig {
            include_rain: false,
            ..cfg
        };
        let err = write_model(&cfg, &w).unwrap_err().to_string();
        assert!(
            err.contains("back.out.bias") && err.contains("[5]"),
            "{err}"
        );
    }

    #[test]
    fn safetensors_round_trip() {
        let w = Weights::random_generator(&small(), RAIN_PREFIX, 7, 1.0);
        let bytes = w.to_safetensors().unwrap();
        assert_eq!(Weights::from_safetensors(&bytes).unwrap(), w);
        assert!(Weights::from_safetensors(b"not a file").is_err());
    }

    #[test]
    fn garbage_is_not_a_model() {
        assert!(read_metadata(b"\x00\x01garbage").is_err());
    }
}
