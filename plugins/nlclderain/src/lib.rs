//! GStreamer plugin `nlcl`: the `nlclderain` element removes rain (or, with a dehazing model,
//! haze) from raw video with the NLCL generator run by ONNX Runtime.
//!
//! Tests and applications can register it without installing the shared library:
//! `gst::init()?; gstnlcl::plugin_register_static()?;`.

use gst::glib;

mod nlclderain;

pub use nlclderain::{ExecutionProvider, LateFrames, NlclDerain};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    nlclderain::register(plugin)
}

gst::plugin_define!(
    nlcl,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
