//! `nlclderain`: a VideoFilter that runs the NLCL generator on every frame, in place.
//!
//! The model is opened in `start()` and dropped in `stop()`; frames are converted to the
//! model's tensor layout in reusable buffers (no per-frame allocation once the size is known),
//! so a mid-stream resolution change only grows those buffers.

use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use nlcl::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat};
use nlcl::runtime::{Model, RuntimeError, SessionOptions};
use nlcl::timing::Latencies;

use super::ExecutionProvider;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nlclderain",
        gst::DebugColorFlags::empty(),
        Some("NLCL deraining filter"),
    )
});

/// The model compiled into the engine, used when `model-file` is empty.
const DEFAULT_MODEL: Option<&[u8]> = nlcl::DEFAULT_MODEL;

const DEFAULT_MODEL_FILE: &str = "";
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_BYPASS: bool = false;
const DEFAULT_FALLBACK: bool = true;
/// Inference times kept for the percentiles of `stats`.
const LATENCY_WINDOW: usize = 1024;

const FORMATS: [gst_video::VideoFormat; 10] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Nv12,
];

#[derive(Debug, Clone)]
struct Settings {
    model_file: String,
    provider: ExecutionProvider,
    device_id: i32,
    threads: u32,
    bypass: bool,
    fallback_to_cpu: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_file: DEFAULT_MODEL_FILE.into(),
            provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            threads: DEFAULT_THREADS,
            bypass: DEFAULT_BYPASS,
            fallback_to_cpu: DEFAULT_FALLBACK,
        }
    }
}

/// Telemetry behind the `stats` property; survives `stop()` so it can be read after EOS.
#[derive(Debug)]
struct Stats {
    processed: u64,
    bypassed: u64,
    inference: Latencies,
    frame: Latencies,
    /// Provider the running session uses (`none` before the first start).
    provider: &'static str,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            processed: 0,
            bypassed: 0,
            inference: Latencies::new(LATENCY_WINDOW),
            frame: Latencies::new(LATENCY_WINDOW),
            provider: "none",
        }
    }
}

/// Everything that exists between `start()` and `stop()`.
struct State {
    model: Model,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Copy of the input's packed plane for formats with real alpha, which the in-place
    /// write-back would otherwise overwrite.
    alpha: Vec<u8>,
}

#[derive(Default)]
pub struct NlclDerain {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for NlclDerain {
    const NAME: &'static str = "GstNlclDerain";
    type Type = super::NlclDerain;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for NlclDerain {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model-file")
                    .nick("Model file")
                    .blurb(
                        "ONNX model (NLCL contract: input 'rainy' [N,3,H,W] in [-1,1], output \
                         'clean'); empty uses the model built into the plugin",
                    )
                    .default_value(Some(DEFAULT_MODEL_FILE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "execution-provider",
                    ExecutionProvider::Cpu,
                )
                .nick("Execution provider")
                .blurb("ONNX Runtime execution provider that runs the network")
                .mutable_ready()
                .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("Device ID")
                    .blurb("GPU ordinal for the cuda and tensorrt providers")
                    .minimum(0)
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("ONNX Runtime intra-op threads (0 = one per physical core)")
                    .maximum(1024)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fallback-to-cpu")
                    .nick("Fall back to CPU")
                    .blurb(
                        "Run on the CPU with a warning when the requested GPU provider cannot be \
                         used; when false, fail instead",
                    )
                    .default_value(DEFAULT_FALLBACK)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("bypass")
                    .nick("Bypass")
                    .blurb("Pass frames through untouched (can be switched while playing)")
                    .default_value(DEFAULT_BYPASS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "frames-processed, frames-bypassed, inference-mean-ms, \
                         inference-p50-ms, inference-p99-ms, frame-mean-ms, provider",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "model-file" => {
                settings.model_file = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            }
            "execution-provider" => {
                settings.provider = value.get().unwrap_or_default();
            }
            "device-id" => settings.device_id = value.get().unwrap_or(DEFAULT_DEVICE_ID),
            "threads" => settings.threads = value.get().unwrap_or(DEFAULT_THREADS),
            "fallback-to-cpu" => settings.fallback_to_cpu = value.get().unwrap_or(DEFAULT_FALLBACK),
            "bypass" => {
                let bypass = value.get().unwrap_or(DEFAULT_BYPASS);
                if bypass != settings.bypass {
                    gst::info!(
                        CAT,
                        imp = self,
                        "bypass {}",
                        if bypass { "on" } else { "off" }
                    );
                }
                settings.bypass = bypass;
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "model-file" => lock(&self.settings).model_file.to_value(),
            "execution-provider" => lock(&self.settings).provider.to_value(),
            "device-id" => lock(&self.settings).device_id.to_value(),
            "threads" => lock(&self.settings).threads.to_value(),
            "fallback-to-cpu" => lock(&self.settings).fallback_to_cpu.to_value(),
            "bypass" => lock(&self.settings).bypass.to_value(),
            "stats" => self.stats_structure().to_value(),
            // GObject only asks for properties it registered.
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A filter slower than real time should let late frames go instead of piling them up.
        self.obj().set_qos(true);
    }
}

impl GstObjectImpl for NlclDerain {}

impl ElementImpl for NlclDerain {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "NLCL deraining filter",
                "Filter/Effect/Video",
                "Removes rain (or haze) from video with an NLCL generator run by ONNX Runtime",
                "nlcl developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            let src = gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps,
            );
            let sink = gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &caps,
            );
            // Static caps built from constants: cannot fail.
            vec![src.expect("src template"), sink.expect("sink template")]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for NlclDerain {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let options = SessionOptions {
            provider: settings.provider.into(),
            device_id: settings.device_id,
            threads: settings.threads as usize,
            strict_provider: !settings.fallback_to_cpu,
            ..SessionOptions::default()
        };
        let model = if settings.model_file.is_empty() {
            match DEFAULT_MODEL {
                Some(bytes) => Model::from_bytes(bytes, "built-in default model", &options),
                None => {
                    return Err(gst::error_msg!(
                        gst::ResourceError::NotFound,
                        [
                            "No model: this build of nlclderain has no built-in default model; \
                             set model-file=PATH to an NLCL ONNX model"
                        ]
                    ));
                }
            }
        } else {
            Model::open(&settings.model_file, &options)
        }
        .map_err(|e| self.model_error(&settings.model_file, e))?;

        if let Some(reason) = &model.info().fallback {
            gst::warning!(CAT, imp = self, "{reason}");
            self.obj()
                .post_message(
                    gst::message::Warning::builder(gst::CoreError::Failed, reason)
                        .src(&*self.obj())
                        .build(),
                )
                .ok();
        }
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}) on {}",
            model.info().origin,
            model
                .info()
                .meta(nlcl::onnx::meta::ARCH)
                .unwrap_or("unknown architecture"),
            model.info().provider
        );
        *lock(&self.stats) = Stats {
            provider: model.info().provider.name(),
            ..Stats::default()
        };
        *lock(&self.state) = Some(State {
            model,
            input: Vec::new(),
            output: Vec::new(),
            alpha: Vec::new(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        Ok(())
    }
}

impl VideoFilterImpl for NlclDerain {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if in_info.width() == 0 || in_info.height() == 0 {
            return Err(gst::loggable_error!(
                CAT,
                "Unsupported frame size {}x{}",
                in_info.width(),
                in_info.height()
            ));
        }
        if pixel_format(in_info.format()).is_none() {
            return Err(gst::loggable_error!(
                CAT,
                "Unsupported format {:?}",
                in_info.format()
            ));
        }
        gst::debug!(CAT, imp = self, "negotiated {incaps}");
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if lock(&self.settings).bypass {
            lock(&self.stats).bypassed += 1;
            return Ok(gst::FlowSuccess::Ok);
        }
        let mut state_guard = lock(&self.state);
        let Some(state) = state_guard.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ["Not started"]);
            return Err(gst::FlowError::NotNegotiated);
        };
        let started = Instant::now();
        let inference = self.process(state, frame).map_err(|msg| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ["{}", msg]);
            gst::FlowError::Error
        })?;
        let mut stats = lock(&self.stats);
        stats.processed += 1;
        stats.inference.record(inference);
        stats.frame.record(started.elapsed());
        Ok(gst::FlowSuccess::Ok)
    }
}

fn pixel_format(f: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as V;
    Some(match f {
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Xrgb => PixelFormat::Xrgb,
        V::Xbgr => PixelFormat::Xbgr,
        V::I420 => PixelFormat::I420,
        V::Nv12 => PixelFormat::Nv12,
        _ => return None,
    })
}

impl NlclDerain {
    fn model_error(&self, model_file: &str, e: RuntimeError) -> gst::ErrorMessage {
        match e {
            RuntimeError::ModelNotFound { .. } => gst::error_msg!(
                gst::ResourceError::NotFound,
                [
                    "Model file '{}' not found (property model-file)",
                    model_file
                ]
            ),
            RuntimeError::ModelUnreadable { .. } => gst::error_msg!(
                gst::ResourceError::OpenRead,
                ["Model file '{}' could not be read: {}", model_file, e]
            ),
            RuntimeError::LibraryNotFound { .. } => {
                gst::error_msg!(gst::LibraryError::Init, ["{}", e])
            }
            RuntimeError::ProviderUnavailable { .. } => {
                gst::error_msg!(
                    gst::LibraryError::Init,
                    ["{} (property execution-provider)", e]
                )
            }
            _ => gst::error_msg!(
                gst::StreamError::Format,
                [
                    "Model file '{}' is not a usable NLCL model: {}",
                    model_file,
                    e
                ]
            ),
        }
    }

    /// Derains one frame in place; returns the inference time.
    fn process(
        &self,
        state: &mut State,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<std::time::Duration, String> {
        let format = pixel_format(frame.format())
            .ok_or_else(|| format!("unsupported format {:?}", frame.format()))?;
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let matrix = match frame.info().colorimetry().matrix() {
            gst_video::VideoColorMatrix::Bt709 => ColorMatrix::Bt709,
            _ => ColorMatrix::Bt601,
        };
        let strides = frame.plane_stride();
        let mut plane_strides = [0usize; 3];
        for (dst, &s) in plane_strides.iter_mut().zip(strides.iter()) {
            *dst = usize::try_from(s).map_err(|_| format!("negative stride {s}"))?;
        }
        let multiple = state.model.info().size_multiple;
        let (ph, pw) = convert::padded_size(height, width, multiple);
        let len = 3 * ph * pw;
        if state.input.len() != len {
            gst::debug!(
                CAT,
                imp = self,
                "tensor size {pw}x{ph} for {width}x{height} frames"
            );
            state.input.resize(len, 0.0);
            state.output.resize(len, 0.0);
        }
        {
            let planes = frame.planes_data();
            let view = FrameRef {
                format,
                width,
                height,
                planes: [planes[0], planes[1], planes[2]],
                strides: plane_strides,
            };
            convert::frame_to_tensor(&view, matrix, multiple, &mut state.input)
                .map_err(|e| format!("frame conversion: {e}"))?;
        }
        let t = Instant::now();
        state
            .model
            .run(&state.input, 1, ph, pw, &mut state.output, None)
            .map_err(|e| e.to_string())?;
        let inference = t.elapsed();
        let keep_alpha = matches!(format, PixelFormat::Rgba | PixelFormat::Bgra);
        if keep_alpha {
            state.alpha.clear();
            state
                .alpha
                .extend_from_slice(frame.plane_data(0).map_err(|e| e.to_string())?);
        }
        let alpha_view = keep_alpha.then(|| FrameRef {
            format,
            width,
            height,
            planes: [&state.alpha[..], &[], &[]],
            strides: plane_strides,
        });
        let planes = frame.planes_data_mut();
        let [p0, p1, p2, _] = planes;
        let mut out = FrameMut {
            format,
            width,
            height,
            planes: [p0, p1, p2],
            strides: plane_strides,
        };
        convert::tensor_to_frame(&state.output, ph, pw, matrix, alpha_view.as_ref(), &mut out)
            .map_err(|e| format!("frame conversion: {e}"))?;
        Ok(inference)
    }

    fn stats_structure(&self) -> gst::Structure {
        let stats = lock(&self.stats);
        gst::Structure::builder("nlclderain-stats")
            .field("frames-processed", stats.processed)
            .field("frames-bypassed", stats.bypassed)
            .field("inference-mean-ms", stats.inference.mean_ms())
            .field("inference-p50-ms", stats.inference.percentile_ms(50.0))
            .field("inference-p99-ms", stats.inference.percentile_ms(99.0))
            .field("frame-mean-ms", stats.frame.mean_ms())
            .field("provider", stats.provider)
            .build()
    }
}
