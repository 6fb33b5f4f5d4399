//! # nlcl — the NLCL deraining engine
//!
//! Everything the `nlclderain` GStreamer element, the `nlcl` command and the trainer share,
//! with no GStreamer or libtorch dependency:
//!
//! - [`spec`]: the generator architecture ([`ModelSpec`]), the single source of truth.
//! - [`onnx`]: writes a spec plus named weights as an ONNX model with metadata.
//! - [`runtime`]: loads ONNX Runtime at run time and runs a model on the CPU or a GPU provider.
//! - [`convert`]: packed / planar video frames <-> planar float tensors in [-1, 1].
//! - [`metrics`]: Y-channel PSNR and SSIM as the deraining literature computes them.
//! - `cuda` (feature `cuda`): the GPU frame path: NVRTC conversion kernels, pinned staging and
//!   ONNX Runtime I/O binding on device memory.
//! - [`worker`]: inference threads (one session each) that run jobs in order (the element's
//!   pipeline); a job's [`worker::Payload`] is tensors converted on the CPU or, on the GPU frame
//!   path, whole frames, and [`worker::InferenceWorker::open`] chooses between the two.
//! - [`synthetic_rain`]: a photographic rain renderer, for synthetic rainy data and samples;
//!   [`haze`]: a haze renderer (atmospheric scattering over a depth proxy) for dehazing.
//! - [`rain_meter`]: how much rain a model removed from a frame, and automatic bypass on dry
//!   frames; [`output_view`]: the derained frame, the rain layer or a split view;
//!   [`temporal`]: steadier output on a still camera (the model's change carried over where the
//!   input stands still); [`transients`]: what a still camera's frames add over their temporal
//!   median (the rain), which [`rain_fit`] can fit where streaks are too faint to see in one frame.
//! - [`family`]: the named models (`lite` built in, `standard`, `full`, `dehaze`) and where they
//!   are found.
//! - [`latency_window`]: latencies over a sliding window (the element's `stats`, benchmarks);
//!   [`evaluate`]: Y-PSNR / SSIM / do-no-harm over folders, shared by `nlcl eval` and the trainer.
//!
//! ## Model-file contract
//! Input `rainy`, float32 `[N, 3, H, W]` in [-1, 1] (RGB); output `clean` of the same shape and,
//! optionally, `rain`. H and W are dynamic; they must be multiples of the metadata value
//! `nlcl.size_multiple` (default 1), callers pad and crop. See [`onnx::meta`] for metadata keys.

pub mod convert;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod evaluate;
pub mod family;
pub mod haze;
pub mod latency_window;
pub mod metrics;
pub mod onnx;
pub mod output_view;
pub mod rain_fit;
pub mod rain_meter;
pub mod reference;
pub mod rng;
pub mod runtime;
pub mod spec;
pub mod synthetic_rain;
pub mod temporal;
pub mod transients;
pub mod worker;

pub use spec::ModelSpec;

/// The project's default model (`models/default.onnx`), compiled in when the file exists at
/// build time, so the element and the `nlcl` command work without a model file.
#[cfg(nlcl_default_model)]
pub const DEFAULT_MODEL: Option<&[u8]> = Some(include_bytes!("../models/default.onnx"));
/// The project's default model; this build has none (`models/default.onnx` was absent).
#[cfg(not(nlcl_default_model))]
pub const DEFAULT_MODEL: Option<&[u8]> = None;
