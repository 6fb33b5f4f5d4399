//! # nlcl-train — the NLCL trainer
//!
//! Trains the NLCL generators (CVPR 2022, "Unsupervised Deraining: Where Contrastive Learning
//! Meets Self-similarity") on unpaired folders of rainy and clean images with libtorch (`tch`),
//! and exports the result through the engine's ONNX writer.
//!
//! - [`nets`]: generators from a [`nlcl::ModelSpec`], PatchGAN discriminator, projection MLPs.
//! - [`losses`]: LSGAN, location contrastive (PatchNCE), layer contrastive (SupCon).
//! - [`sampler`]: non-local self-similarity sampling (or random, for the ablation and CUT).
//! - [`data`] and [`render`]: image folders, crops, and a rain renderer for a synthetic rainy
//!   domain.
//! - [`trainer`]: [`TrainArgs`] and [`train`]; [`export`]: [`ExportArgs`] and [`export()`].
//!
//! Building needs libtorch 2.11.0: `scripts/setup-train.sh`, then `source scripts/torch-env.sh`.

pub mod checkpoint;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod losses;
pub mod nets;
pub mod plot;
pub mod sampler;
pub mod trainer;

/// The rain renderer and the PRNG live in the engine (no libtorch needed to render rain).
pub use nlcl::{render, rng};

pub use device::DeviceChoice;
pub use export::{ExportArgs, export};
pub use trainer::{TrainArgs, Trainer, train};
