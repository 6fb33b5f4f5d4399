//! # nlcl-train — the NLCL trainer
//!
//! Trains the NLCL generators (CVPR 2022, "Unsupervised Deraining: Where Contrastive Learning
//! Meets Self-similarity") on unpaired folders of rainy and clean images with libtorch (`tch`),
//! and exports the result through the engine's ONNX writer.
//!
//! - [`nets`]: generators from a [`nlcl::ModelSpec`], PatchGAN discriminator, projection MLPs.
//! - [`losses`]: LSGAN, location contrastive (PatchNCE), layer contrastive (SupCon).
//! - [`sampler`]: non-local self-similarity sampling (or random, for the ablation and CUT).
//! - [`data`]: image folders, crops, and synthetic rainy samples drawn by the engine's rain
//!   renderer ([`nlcl::synthetic_rain`]).
//! - [`options`]: [`TrainArgs`]; [`trainer`]: [`Trainer`] and the training loop [`train`];
//!   [`history`]: the loss records (`losses.csv`); [`checkpoint`]: checkpoints and run state;
//!   [`plot`]: loss curves and sample sheets.
//! - [`mod@export`]: [`ExportArgs`] and [`export()`]; [`eval`]: a checkpoint scored with the
//!   engine's evaluator ([`nlcl::evaluate`], the same as `nlcl eval`'s) without exporting it.
//!
//! Building needs libtorch 2.11.0: `scripts/setup-train.sh`, then `source scripts/torch-env.sh`.

pub mod checkpoint;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod history;
pub mod losses;
pub mod nets;
pub mod options;
pub mod plot;
pub mod sampler;
pub mod trainer;

pub use device::DeviceChoice;
pub use export::{ExportArgs, export};
pub use options::TrainArgs;
pub use trainer::{Trainer, train};
