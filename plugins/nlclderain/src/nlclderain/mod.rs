//! The `nlclderain` element.

use gst::glib;
use gst::prelude::*;

mod batching;
mod frames;
mod imp;
mod rain;
mod settings;
mod smoothing;
mod stats;

/// Where `nlclderain` runs the network (property `execution-provider`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstNlclExecutionProvider")]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    #[default]
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 0,
    /// ONNX Runtime's CUDA provider (needs the onnxruntime-gpu library and an NVIDIA GPU).
    #[enum_value(name = "CUDA", nick = "cuda")]
    Cuda = 1,
    /// ONNX Runtime's TensorRT provider (needs TensorRT and an NVIDIA GPU).
    #[enum_value(name = "TensorRT", nick = "tensorrt")]
    TensorRt = 2,
}

/// Which model of the family `nlclderain` runs when `model-file` is empty (property `model`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstNlclModel")]
pub enum NlclModel {
    /// The CPU-live model built into the plugin.
    #[default]
    #[enum_value(name = "lite: built in, live on a CPU", nick = "lite")]
    Lite = 0,
    /// Costlier and stronger; installed beside the plugin by the set-up.
    #[enum_value(name = "standard: stronger, slower CPU model", nick = "standard")]
    Standard = 1,
    /// For GPUs; installed beside the plugin by the set-up.
    #[enum_value(name = "full: the GPU model", nick = "full")]
    Full = 2,
    /// Removes haze instead of rain; installed beside the plugin by the set-up.
    #[enum_value(name = "dehaze: removes haze (lite-sized)", nick = "dehaze")]
    Dehaze = 3,
}

impl From<NlclModel> for nlcl::family::ModelName {
    fn from(m: NlclModel) -> Self {
        match m {
            NlclModel::Lite => nlcl::family::ModelName::Lite,
            NlclModel::Standard => nlcl::family::ModelName::Standard,
            NlclModel::Full => nlcl::family::ModelName::Full,
            NlclModel::Dehaze => nlcl::family::ModelName::Dehaze,
        }
    }
}

/// What `nlclderain` does with a frame that is already late downstream (property `late-frames`,
/// effective while `qos` is on).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstNlclLateFrames")]
pub enum LateFrames {
    /// Drop it (and post a QoS message), as GStreamer filters usually do.
    #[default]
    #[enum_value(name = "Drop late frames", nick = "drop")]
    Drop = 0,
    /// Push it untouched: no frame is lost, late ones keep their rain.
    #[enum_value(name = "Pass late frames through untouched", nick = "pass-through")]
    PassThrough = 1,
    /// Derain it anyway (latency grows while the model is slower than real time).
    #[enum_value(name = "Derain late frames anyway", nick = "process")]
    Process = 2,
}

/// What `nlclderain` writes into each frame (property `output`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstNlclOutput")]
pub enum Output {
    /// The derained frame.
    #[default]
    #[enum_value(name = "The derained frame", nick = "clean")]
    Clean = 0,
    /// The rain layer the model removed, scaled for viewing.
    #[enum_value(
        name = "The removed rain layer, 4x |input - output| on black",
        nick = "rain"
    )]
    Rain = 1,
    /// Left half input, right half derained (demos).
    #[enum_value(name = "Left half input, right half derained", nick = "split")]
    Split = 2,
}

impl From<Output> for nlcl::output_view::OutputView {
    fn from(o: Output) -> Self {
        match o {
            Output::Clean => nlcl::output_view::OutputView::Clean,
            Output::Rain => nlcl::output_view::OutputView::Rain,
            Output::Split => nlcl::output_view::OutputView::Split,
        }
    }
}

impl From<ExecutionProvider> for nlcl::runtime::Provider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Cpu => nlcl::runtime::Provider::Cpu,
            ExecutionProvider::Cuda => nlcl::runtime::Provider::Cuda,
            ExecutionProvider::TensorRt => nlcl::runtime::Provider::TensorRt,
        }
    }
}

glib::wrapper! {
    /// Removes rain from raw video frames with an NLCL generator (ONNX model).
    pub struct NlclDerain(ObjectSubclass<imp::NlclDerain>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `nlclderain` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    LateFrames::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    NlclModel::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Output::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "nlclderain",
        gst::Rank::NONE,
        NlclDerain::static_type(),
    )
}
