//! Checkpoints and run state: every network's parameters as float32 safetensors, with the
//! step, the architecture tag and the trainer options in the safetensors metadata; a run
//! folder's `last.safetensors`, `state.toml` and kept `checkpoints/step-NNNNNN.safetensors`;
//! where a run starts (resume or `--init`) and copying a checkpoint into the networks.
//!
//! The metadata keys a checkpoint shares with the exported model (architecture, trainer
//! options, data recipe) are [`nlcl::onnx::meta`]'s; the ones below exist only in checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nlcl::onnx::meta;
use nlcl::spec::{BACK_PREFIX, ModelSpec, RAIN_PREFIX};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tch::{Device, Kind, Tensor, nn};

/// Metadata key of the training step a checkpoint was written at (the exported model records
/// it as [`meta::STEPS`]).
pub const META_STEP: &str = "nlcl.step";
/// Metadata key: the checkpoint has a rain generator (`true`/`false`).
pub const META_HAS_RAIN: &str = "nlcl.has_rain";
/// Metadata key: discriminator base channels.
pub const META_DISC: &str = "nlcl.disc_channels";
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

    /// The generators' architecture tag ([`meta::ARCH`]).
    pub fn arch(&self) -> Option<&str> {
        self.metadata.get(meta::ARCH).map(String::as_str)
    }

    /// The generators' architecture.
    pub fn spec(&self) -> anyhow::Result<ModelSpec> {
        let arch = self
            .arch()
            .context("checkpoint metadata lacks nlcl.arch (not written by nlcl-train?)")?;
        Ok(ModelSpec::from_tag(arch)?)
    }

    /// The discriminator base channels recorded by the run ([`META_DISC`]).
    pub fn disc_channels(&self) -> Option<i64> {
        self.metadata.get(META_DISC).and_then(|d| d.parse().ok())
    }

    /// Whether the checkpoint keeps moving averages of the generator weights (`--ema`).
    pub fn has_ema(&self) -> bool {
        self.get(&format!("{EMA_PREFIX}{BACK_PREFIX}head.weight"))
            .is_some()
    }

    /// The checkpoint of named tensors (copied to float32 on the CPU) and a run's state.
    pub fn from_tensors(named: Vec<(String, Tensor)>, state: &RunState) -> Self {
        let mut tensors: Vec<_> = named
            .into_iter()
            .map(|(n, t)| {
                let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float);
                let shape = t.size().iter().map(|&d| d as usize).collect();
                let values = Vec::<f32>::try_from(t.contiguous().view([-1])).unwrap_or_default();
                (n, shape, values)
            })
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Checkpoint {
            tensors,
            metadata: state.metadata(),
        }
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

/// What a run records next to its weights: in the checkpoint's metadata and in `state.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// Steps done.
    pub step: u64,
    /// Generator architecture.
    pub spec: ModelSpec,
    /// The run trains a rain generator (not CUT).
    pub has_rain: bool,
    /// Discriminator base channels.
    pub disc_channels: i64,
    /// The training-method options as one line.
    pub trainer: String,
    /// The data recipe as one line.
    pub data: String,
}

impl RunState {
    /// The checkpoint metadata.
    pub fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (META_STEP.to_string(), self.step.to_string()),
            (meta::ARCH.to_string(), self.spec.tag()),
            (meta::TRAINER.to_string(), self.trainer.clone()),
            (meta::DATA.to_string(), self.data.clone()),
            (META_HAS_RAIN.to_string(), self.has_rain.to_string()),
            (META_DISC.to_string(), self.disc_channels.to_string()),
        ])
    }

    /// The text of `state.toml` (for people and scripts; resuming reads the checkpoint).
    pub fn state_toml(&self) -> String {
        format!(
            "# nlcl-train run state (the checkpoint is {LAST})\nstep = {}\narch = \"{}\"\n\
             has_rain = {}\ntrainer = \"{}\"\ndata = \"{}\"\n",
            self.step,
            self.spec.tag(),
            self.has_rain,
            self.trainer,
            self.data.replace('\\', "\\\\").replace('"', "\\\""),
        )
    }
}

/// File name of a run's last checkpoint.
pub const LAST: &str = "last.safetensors";

/// The last checkpoint of a run folder.
pub fn last_checkpoint(run: &Path) -> PathBuf {
    run.join(LAST)
}

/// Resolves a run folder (its last checkpoint) or a checkpoint file to the checkpoint file.
pub fn checkpoint_path(run: &Path) -> PathBuf {
    if run.is_dir() {
        last_checkpoint(run)
    } else {
        run.to_path_buf()
    }
}

/// Writes a run's `last.safetensors` and `state.toml`.
pub fn save_run(run: &Path, ck: &Checkpoint, state: &RunState) -> anyhow::Result<()> {
    ck.save(&last_checkpoint(run))?;
    let path = run.join("state.toml");
    std::fs::write(&path, state.state_toml()).with_context(|| format!("writing {}", path.display()))
}

/// Copies a run's `last.safetensors` to `checkpoints/step-NNNNNN.safetensors`.
pub fn keep_checkpoint(run: &Path, step: u64) -> anyhow::Result<PathBuf> {
    let dir = run.join("checkpoints");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kept = dir.join(format!("step-{step:06}.safetensors"));
    std::fs::copy(last_checkpoint(run), &kept)
        .with_context(|| format!("writing {}", kept.display()))?;
    Ok(kept)
}

/// Where a run starts from.
#[derive(Debug, Clone)]
pub struct StartPoint {
    /// The checkpoint (from a file or an ONNX model's generators).
    pub checkpoint: Checkpoint,
    /// Its file.
    pub path: PathBuf,
    /// `true`: the run folder's own last checkpoint (resume); `false`: `--init` (fine-tuning).
    pub resume: bool,
}

/// The run folder's last checkpoint when there is one (resume), else `init` when given.
pub fn start_point(run: &Path, init: Option<&Path>) -> Result<Option<StartPoint>, CheckpointError> {
    let last = last_checkpoint(run);
    let (path, resume) = match init {
        _ if last.exists() => (last, true),
        Some(p) => (p.to_path_buf(), false),
        None => return Ok(None),
    };
    Ok(Some(StartPoint {
        checkpoint: Checkpoint::load(&path)?,
        path,
        resume,
    }))
}

fn is_generator(name: &str) -> bool {
    name.starts_with(BACK_PREFIX) || name.starts_with(RAIN_PREFIX)
}

fn shape_eq(a: &[usize], b: &[i64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x as i64 == y)
}

/// Copies the matching tensors of `ck` into the variables of `stores` and returns how many.
/// With `strict`, every variable must be present with the same shape (resume; moving averages
/// may be missing: a run that turns on `--ema` later starts them from the weights); otherwise
/// only matching names and shapes are taken (fine-tuning from another configuration), but a
/// generator tensor of another shape is still an error.
pub fn restore(
    stores: &[&nn::VarStore],
    ck: &Checkpoint,
    strict: bool,
    device: Device,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for vs in stores {
        for (name, mut var) in vs.variables() {
            match ck.get(&name) {
                Some((shape, values)) if shape_eq(shape, &var.size()) => {
                    let src = Tensor::from_slice(values)
                        .view(var.size().as_slice())
                        .to_device(device);
                    tch::no_grad(|| var.copy_(&src));
                    n += 1;
                }
                // Fine-tuning may change the discriminator or drop the rain generator, but
                // a generator that does not fit is a mistake worth stopping for.
                Some((shape, _)) if strict || is_generator(&name) => {
                    bail!(
                        "checkpoint tensor {name} has shape {shape:?}, expected {:?}",
                        var.size()
                    )
                }
                // A run that turns on --ema later starts its averages from the weights.
                None if strict && !name.starts_with(EMA_PREFIX) => {
                    bail!("checkpoint lacks tensor {name}")
                }
                _ => {}
            }
        }
    }
    if n == 0 {
        bail!("the checkpoint has no tensor matching this network");
    }
    Ok(n)
}
