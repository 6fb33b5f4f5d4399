//! The float16 variant of a model this writer produced: weights and arithmetic in half
//! precision (half the file, and tensor-core convolutions on GPUs), the model-file contract
//! unchanged. The graph's input and outputs stay float32: a Cast follows `rainy` and precedes
//! each output, so the element, the CLI and the CUDA frame path run it like any other model.

use half::f16;
use prost::Message;

use super::proto::{ModelProto, NodeProto, StringStringEntryProto, data_type};
use super::{OnnxError, meta};

/// Metadata value of [`meta::PRECISION`] in a float16 variant.
pub const FLOAT16: &str = "float16";

/// Rewrites the float32 model `bytes` (written by [`super::write_model`]) to compute in
/// float16, keeping its float32 input and outputs. Every float initializer is rounded to the
/// nearest float16; the metadata gains `nlcl.precision = float16`.
pub fn to_float16(bytes: &[u8]) -> Result<Vec<u8>, OnnxError> {
    let mut model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    if model
        .metadata_props
        .iter()
        .any(|e| e.key == meta::PRECISION && e.value == FLOAT16)
    {
        return Err(OnnxError::Decode("the model is already float16".into()));
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| OnnxError::Decode("the file holds no graph".into()))?;
    for t in &mut graph.initializer {
        if t.data_type != data_type::FLOAT {
            return Err(OnnxError::WeightDtype {
                name: t.name.clone(),
                dtype: format!("ONNX type {}", t.data_type),
            });
        }
        t.raw_data = t
            .raw_data
            .chunks_exact(4)
            .flat_map(|b| f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
            .collect();
        t.data_type = data_type::FLOAT16;
    }
    let cast = |from: &str, to: &str, dtype: i32| NodeProto {
        input: vec![from.to_string()],
        output: vec![to.to_string()],
        name: format!("{to}.cast"),
        op_type: "Cast".into(),
        attribute: vec![super::int_attr("to", dtype as i64)],
        ..Default::default()
    };
    let inputs: Vec<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let outputs: Vec<String> = graph.output.iter().map(|v| v.name.clone()).collect();
    let half_name = |name: &str| format!("{name}.f16");
    for node in &mut graph.node {
        for name in node.input.iter_mut().chain(node.output.iter_mut()) {
            if inputs.contains(name) || outputs.contains(name) {
                *name = half_name(name);
            }
        }
    }
    let mut nodes: Vec<NodeProto> = inputs
        .iter()
        .map(|n| cast(n, &half_name(n), data_type::FLOAT16))
        .collect();
    nodes.append(&mut graph.node);
    nodes.extend(
        outputs
            .iter()
            .map(|n| cast(&half_name(n), n, data_type::FLOAT)),
    );
    graph.node = nodes;
    model.metadata_props.push(StringStringEntryProto {
        key: meta::PRECISION.into(),
        value: FLOAT16.into(),
    });
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{identity_model, read_metadata};
    use crate::spec::ModelSpec;

    #[test]
    fn keeps_float32_io_and_halves_the_weights() {
        let spec = ModelSpec {
            width: 4,
            depth: 1,
            unshuffle: 2,
            global_residual: true,
            instance_norm: false,
            detail_radius: 2,
        };
        let f32_bytes = identity_model(spec).unwrap();
        let half = to_float16(&f32_bytes).unwrap();
        let model = ModelProto::decode(half.as_slice()).unwrap();
        let graph = model.graph.unwrap();
        assert!(
            graph
                .initializer
                .iter()
                .all(|t| t.data_type == data_type::FLOAT16 && t.raw_data.len() % 2 == 0)
        );
        let first = &graph.node[0];
        assert_eq!(
            (first.op_type.as_str(), first.input[0].as_str()),
            ("Cast", "rainy")
        );
        let last = graph.node.last().unwrap();
        assert_eq!(
            (last.op_type.as_str(), last.output[0].as_str()),
            ("Cast", "clean")
        );
        // Exactly one node reads the float32 input and one writes the float32 output.
        let reads = graph
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == "rainy"));
        assert_eq!(reads.count(), 1);
        let writes = graph
            .node
            .iter()
            .filter(|n| n.output.iter().any(|o| o == "clean"));
        assert_eq!(writes.count(), 1);
        let m = read_metadata(&half).unwrap();
        assert!(m.iter().any(|(k, v)| k == meta::PRECISION && v == FLOAT16));
        assert!(
            to_float16(&half).is_err(),
            "converting twice must be refused"
        );
        assert!(to_float16(b"not a model").is_err());
    }
}
