//! Checkpoints: every network's parameters as float32 safetensors, with the step, the
//! architecture tag and the trainer options in the safetensors metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Metadata key of the training step a checkpoint was written at.
pub const META_STEP: &str = "nlcl.step";
/// Prefix of the moving-average copies of the generator weights (`ema.back.head.weight`, ...).
pub const EMA_PREFIX: &str = "ema.";

/// A checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a float32 safetensors checkpoint.
    #[error("{path}: not a valid checkpoint: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Named float32 tensors plus string metadata.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// `(name, shape, values)`, in a stable (sorted) order.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// String metadata (step, architecture, trainer options, data recipe).
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// The training step recorded in the metadata (0 when absent).
    pub fn step(&self) -> u64 {
        self.metadata
            .get(META_STEP)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// A tensor by name.
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, v)| (s.as_slice(), v.as_slice()))
    }

    /// A generator tensor for inference: the exponential moving average of the weights
    /// (`ema.` + `name`, written by runs with `--ema`) when the checkpoint has one, else `name`.
    pub fn inference_tensor(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.get(&format!("{EMA_PREFIX}{name}"))
            .or_else(|| self.get(name))
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, s, v)| {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, s, b)| {
                TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| format!("{n}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, Some(self.metadata.clone())).map_err(|e| e.to_string())
    }

    /// Parses safetensors bytes (float32 tensors only).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(format!("{name}: dtype {:?}, expected F32", view.dtype()));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.push((name, view.shape().to_vec(), values));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Checkpoint {
            tensors,
            metadata: meta.metadata().clone().unwrap_or_default(),
        })
    }

    /// The generator weights of an ONNX model written by nlcl (`nlcl export`, the shipped
    /// models), with its architecture: a starting point for fine-tuning.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, String> {
        let (spec, weights) = nlcl::onnx::read_generators(bytes).map_err(|e| e.to_string())?;
        let tensors = weights
            .names()
            .filter_map(|n| {
                weights
                    .get(n)
                    .map(|t| (n.to_string(), t.shape.clone(), t.data.clone()))
            })
            .collect();
        let metadata = HashMap::from([(nlcl::onnx::meta::ARCH.to_string(), spec.tag())]);
        Ok(Checkpoint { tensors, metadata })
    }

    /// Reads a checkpoint file, or the generators of an ONNX model (`.onnx`).
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let onnx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        let parsed = if onnx {
            Self::from_onnx(&bytes)
        } else {
            Self::from_bytes(&bytes)
        };
        parsed.map_err(|reason| CheckpointError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes atomically (temporary file, then rename), so an interrupted run never leaves a
    /// truncated `last.safetensors` behind.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self.to_bytes().map_err(|reason| CheckpointError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        let tmp = path.with_extension("safetensors.tmp");
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
