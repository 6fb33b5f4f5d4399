//! Pixel-format conversion between video frames and model tensors.
//!
//! The network takes and returns planar float32 RGB in `[-1, 1]` (NCHW, one image = three
//! `H x W` planes, R then G then B, `value = pixel / 127.5 - 1`). Video arrives as GStreamer
//! hands it: one to three planes, each with a stride in bytes that may be larger than a row.
//!
//! * [`frame_to_tensor`] converts a [`FrameRef`] into a tensor, optionally padded up to a
//!   multiple of `m` in height and width (edge replication), for models that need it.
//! * [`tensor_to_frame`] converts the top-left `height x width` of a (possibly padded) tensor
//!   back into a [`FrameMut`]: clamp to `[-1, 1]`, then `round((v + 1) * 127.5)` (exact .5
//!   ties, which only `v = 0` produces, go to even).
//! * [`rgb8_to_tensor`] / [`tensor_to_rgb8`] do the same for a tightly packed RGB8 image
//!   (image files, metrics).
//!
//! Nothing here allocates: the caller owns every buffer, so these functions can run per frame.
//! Every size, stride and length is validated first and reported as a [`ConvertError`]; the
//! functions never panic on bad input.
//!
//! YUV formats ([`PixelFormat::I420`], [`PixelFormat::Nv12`]) use the [`YuvEncoding`] (matrix
//! and limited or full range) the caller passes, and chroma sited at the centre of each 2x2
//! luma block (the siting that a 2x2 average produces).

// One file per concern; everything public is re-exported here, so the API stays
// `nlcl::convert::X`. What the files share with each other is `pub(super)`, so splitting the
// module widened no visibility outside it.

mod color;
mod format;
mod frame;
mod packing;
mod tensor;
#[cfg(test)]
mod test_support;

pub use color::{ChromaUpsampling, ColorMatrix, ColorRange, YuvEncoding};
// Only the GPU path (src/cuda.rs) uses these.
#[cfg_attr(not(feature = "cuda"), allow(unused_imports))]
pub(crate) use color::{rgb_to_yuv_coefficients, yuv_to_rgb_coefficients};
pub use format::PixelFormat;
pub(crate) use frame::validate_layout;
pub use frame::{
    ConvertError, FrameMut, FrameRef, copy_frame, tight_frame, tight_frame_len, tight_frame_mut,
};
pub use tensor::{
    frame_to_tensor, frame_to_tensor_with, padded_size, rgb8_to_tensor, tensor_len,
    tensor_to_frame, tensor_to_rgb8,
};
