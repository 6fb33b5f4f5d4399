//! `nlclderain`: a VideoFilter that runs the NLCL generator on every frame.
//!
//! Frames flow through an in-order pipeline: the streaming thread converts frame n+1 to a
//! tensor while inference threads ([`nlcl::worker::InferenceWorker`], `sessions` of them, each
//! with its own ONNX Runtime session) run earlier frames, and finished frames are written back
//! into their own buffers and pushed in arrival order. With `batch-size` > 1, frames are
//! gathered into one tensor and run together. At most `max-in-flight` frames (raised to what
//! the sessions and batches need) are inside the element, so memory stays flat when the source
//! outpaces the model. Serialized events (EOS, caps, segment, gap) first drain the frames in
//! flight, a partly filled batch included; a flush discards them. With `max-in-flight=1`,
//! `sessions=1` and `batch-size=1` processing is synchronous.
//!
//! With `execution-provider=cuda` in a build with the `cuda` feature, the inference threads run
//! [`nlcl::cuda::GpuSession`]s: frames are only copied (tightly packed) on the streaming thread,
//! and conversion to and from tensors happens on the GPU. Where that path cannot start (no
//! NVRTC, say) the element converts on the CPU and feeds ONNX Runtime's CUDA provider.
//!
//! QoS is handled here rather than by the base class so that `late-frames` can choose what
//! happens to a frame that is already late downstream.

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use nlcl::convert::{self, ColorMatrix, ColorRange, FrameMut, FrameRef, PixelFormat, YuvEncoding};
use nlcl::family::ModelSource;
use nlcl::output_view::{self, OutputView};
use nlcl::rain_meter::{self, FrameAction, RainMeter};
use nlcl::runtime::{Model, RuntimeError, SessionOptions};
use nlcl::timing::Latencies;
use nlcl::worker::{Done, FrameSpec, InferenceWorker, Job};

use super::{ExecutionProvider, LateFrames, NlclModel, Output};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nlclderain",
        gst::DebugColorFlags::empty(),
        Some("NLCL deraining filter"),
    )
});

const DEFAULT_MODEL_FILE: &str = "";
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_BYPASS: bool = false;
const DEFAULT_FALLBACK: bool = true;
const DEFAULT_MAX_IN_FLIGHT: u32 = 2;
/// 0 = automatic (see [`session_count`]).
const DEFAULT_SESSIONS: u32 = 0;
const DEFAULT_BATCH_SIZE: u32 = 1;
const DEFAULT_FP16: bool = false;
const DEFAULT_AUTO_BYPASS: bool = false;
/// Levels of mean |input - output| below which a frame counts as dry: the built-in model
/// changes dry frames by about 0.5 and rainy ones by several levels (README, "Rain meter").
const DEFAULT_RAIN_THRESHOLD: f64 = 1.0;
const DEFAULT_BYPASS_CHECK_INTERVAL: u32 = 10;
const DEFAULT_MESSAGE_INTERVAL: u32 = 0;
/// Measurements below the threshold in a row before auto-bypass starts.
const DRY_RUN: usize = 8;
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
    model: NlclModel,
    provider: ExecutionProvider,
    device_id: i32,
    threads: u32,
    bypass: bool,
    fallback_to_cpu: bool,
    max_in_flight: u32,
    sessions: u32,
    batch_size: u32,
    model_cache_dir: String,
    fp16: bool,
    late_frames: LateFrames,
    output: Output,
    auto_bypass: bool,
    rain_threshold: f64,
    bypass_check_interval: u32,
    message_interval: u32,
}

/// The settings read for every frame (a copy, so the lock is held briefly and nothing allocates).
#[derive(Clone, Copy)]
struct FrameSettings {
    bypass: bool,
    late_frames: LateFrames,
    output: OutputView,
    auto_bypass: bool,
    rain_threshold: f64,
    bypass_check_interval: u32,
    message_interval: u32,
}

impl Settings {
    fn per_frame(&self) -> FrameSettings {
        FrameSettings {
            bypass: self.bypass,
            late_frames: self.late_frames,
            output: self.output.into(),
            auto_bypass: self.auto_bypass,
            rain_threshold: self.rain_threshold,
            bypass_check_interval: self.bypass_check_interval,
            message_interval: self.message_interval,
        }
    }

    /// The model to run: `model-file` when set, else the named model.
    fn model_source(&self) -> ModelSource {
        if self.model_file.is_empty() {
            ModelSource::Named(self.model.into())
        } else {
            ModelSource::File(self.model_file.clone().into())
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_file: DEFAULT_MODEL_FILE.into(),
            model: NlclModel::default(),
            provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            threads: DEFAULT_THREADS,
            bypass: DEFAULT_BYPASS,
            fallback_to_cpu: DEFAULT_FALLBACK,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            sessions: DEFAULT_SESSIONS,
            batch_size: DEFAULT_BATCH_SIZE,
            model_cache_dir: String::new(),
            fp16: DEFAULT_FP16,
            late_frames: LateFrames::default(),
            output: Output::default(),
            auto_bypass: DEFAULT_AUTO_BYPASS,
            rain_threshold: DEFAULT_RAIN_THRESHOLD,
            bypass_check_interval: DEFAULT_BYPASS_CHECK_INTERVAL,
            message_interval: DEFAULT_MESSAGE_INTERVAL,
        }
    }
}

/// Telemetry behind the `stats` property; survives `stop()` so it can be read after EOS.
#[derive(Debug)]
struct Stats {
    processed: u64,
    bypassed: u64,
    late_dropped: u64,
    late_passed: u64,
    late_processed: u64,
    /// Frames whose model output held NaN or infinity: passed through untouched.
    invalid_output: u64,
    /// Frames auto-bypass passed through untouched (its checks included).
    auto_bypassed: u64,
    /// Rain intensity of the last frame the model ran on (levels), -1 before the first.
    rain_intensity: f64,
    /// Whether auto-bypass is passing frames through now.
    auto_bypass_active: bool,
    inference: Latencies,
    /// Time from a frame's arrival to its departure (queueing included).
    latency: Latencies,
    /// Provider the running session uses (`none` before the first start).
    provider: &'static str,
    /// Where frames are converted to and from tensors: `cpu`, or `gpu` (CUDA frame path).
    conversion: &'static str,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            processed: 0,
            bypassed: 0,
            late_dropped: 0,
            late_passed: 0,
            late_processed: 0,
            invalid_output: 0,
            auto_bypassed: 0,
            rain_intensity: -1.0,
            auto_bypass_active: false,
            inference: Latencies::new(LATENCY_WINDOW),
            latency: Latencies::new(LATENCY_WINDOW),
            provider: "none",
            conversion: "cpu",
        }
    }
}

/// A frame inside the element, in arrival order.
struct Pending {
    buffer: gst::Buffer,
    arrived: Instant,
    /// `None`: leaves untouched (bypass, late pass-through). `Some`: waiting for inference.
    work: Option<FrameWork>,
}

struct FrameWork {
    info: gst_video::VideoInfo,
    /// Bytes of the frame tightly packed (the GPU frame path's unit); 0 on the tensor path.
    packed: usize,
    /// Padded tensor size.
    th: usize,
    tw: usize,
    /// Auto-bypass check: run the model to measure the rain, leave the frame untouched.
    check_only: bool,
}

/// The buffers a job travels with, recycled between jobs.
#[derive(Default)]
struct JobBuffers {
    /// Tensors (CPU conversion).
    input: Vec<f32>,
    output: Vec<f32>,
    /// Tightly packed frames (GPU frame path).
    frames_in: Vec<u8>,
    frames_out: Vec<u8>,
}

impl From<Done> for JobBuffers {
    fn from(d: Done) -> Self {
        JobBuffers {
            input: d.input,
            output: d.output,
            frames_in: d.frames_in,
            frames_out: d.frames_out,
        }
    }
}

/// A batch being filled: frames converted into `bufs.input` (or packed into `bufs.frames_in`
/// for the GPU frame path), not yet submitted.
struct Filling {
    bufs: JobBuffers,
    frames: usize,
    th: usize,
    tw: usize,
    /// The frames' description on the GPU frame path.
    spec: Option<FrameSpec>,
}

/// A finished job whose frames are being written back one by one.
struct Collected {
    done: Done,
    /// Frames in the job, and how many have left.
    frames: usize,
    taken: usize,
    th: usize,
    tw: usize,
}

/// Everything that exists between `start()` and `stop()`.
struct State {
    worker: InferenceWorker,
    size_multiple: usize,
    batch_size: usize,
    /// Frames allowed inside the element (`max-in-flight`, raised for sessions and batches).
    in_flight_limit: usize,
    info: Option<gst_video::VideoInfo>,
    pending: VecDeque<Pending>,
    /// Frames converted and not yet written back (filling, submitted or collected).
    in_flight: usize,
    filling: Option<Filling>,
    /// Jobs submitted to the worker and not yet received.
    jobs_out: usize,
    /// Shapes of the submitted jobs, oldest first: (frames, th, tw).
    job_shapes: VecDeque<(usize, usize, usize)>,
    collected: Option<Collected>,
    /// Results of frames discarded by a flush are still to come back from the worker; they
    /// carry an older generation and are thrown away.
    generation: u64,
    /// Auto-bypass decisions, rebuilt when its properties change.
    meter: RainMeter,
    meter_params: (f64, u32),
    /// Rain intensities since the last `nlcl-rain` message: sum and count.
    rain_sum: f64,
    rain_count: u32,
    /// Recycled job buffers so steady state allocates nothing.
    pool: Vec<JobBuffers>,
    alpha: Vec<u8>,
}

impl State {
    /// Hands the batch being filled to the worker.
    fn submit_filling(&mut self) -> Result<(), nlcl::worker::WorkerGone> {
        let Some(mut f) = self.filling.take() else {
            return Ok(());
        };
        // A model with a fixed batch dimension gets every job padded to it.
        let n = match self.worker.info().fixed_batch {
            Some(b) if b > f.frames => {
                if let Some(spec) = f.spec {
                    let per_frame =
                        convert::tight_frame_len(spec.format, spec.width, spec.height).unwrap_or(0);
                    f.bufs.frames_in.resize(b * per_frame, 0);
                } else {
                    f.bufs.input.resize(b * 3 * f.th * f.tw, 0.0);
                }
                b
            }
            _ => f.frames,
        };
        let job = Job {
            tag: self.generation,
            input: f.bufs.input,
            output: f.bufs.output,
            n,
            h: f.th,
            w: f.tw,
            frames: f.spec,
            frames_in: f.bufs.frames_in,
            frames_out: f.bufs.frames_out,
        };
        self.worker.submit(job)?;
        self.jobs_out += 1;
        self.job_shapes.push_back((f.frames, f.th, f.tw));
        Ok(())
    }
}

/// Timing facts read outside the streaming thread (QoS events, latency queries), kept apart
/// from `State`, which the streaming thread holds while it waits for inference.
#[derive(Debug, Default)]
struct Timing {
    /// Lateness reported by downstream QoS events.
    earliest: Option<gst::ClockTime>,
    /// Frame interval of the negotiated caps.
    frame_duration: Option<gst::ClockTime>,
    /// Frames the running element holds at most (0 before `start()`).
    in_flight_limit: usize,
}

#[derive(Default)]
pub struct NlclDerain {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
    timing: Mutex<Timing>,
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
                         'clean'); empty runs the model named by the model property",
                    )
                    .default_value(Some(DEFAULT_MODEL_FILE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model", NlclModel::Lite)
                    .nick("Model")
                    .blurb(
                        "Model of the family to run when model-file is empty: lite (built in), \
                         standard or full (installed by the set-up, or found in NLCL_MODEL_DIR)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "execution-provider",
                    ExecutionProvider::Cpu,
                )
                .nick("Execution provider")
                .blurb(
                    "ONNX Runtime execution provider that runs the network; with cuda, a \
                     build with the cuda feature also converts frames on the GPU",
                )
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
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Frames in flight")
                    .blurb(
                        "Frames being converted or inferred at once (1 = synchronous); each \
                         extra frame adds one frame of latency and overlaps conversion with \
                         inference. Raised to sessions x batch-size when those ask for more",
                    )
                    .minimum(1)
                    .maximum(16)
                    .default_value(DEFAULT_MAX_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("sessions")
                    .nick("Sessions")
                    .blurb(
                        "ONNX Runtime sessions running frames in parallel, the threads shared \
                         among them (0 = automatic: 2 on a CPU when threads and max-in-flight \
                         allow, since parallel frames outrun one multi-threaded session; 1 on a \
                         GPU)",
                    )
                    .maximum(16)
                    .default_value(DEFAULT_SESSIONS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb(
                        "Frames run together in one session call (helps GPUs); a partly filled \
                         batch runs at EOS, caps changes and when downstream waits. Set \
                         max-in-flight to twice this so one batch fills while another runs",
                    )
                    .minimum(1)
                    .maximum(16)
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-cache-dir")
                    .nick("Model cache directory")
                    .blurb(
                        "Directory where the tensorrt provider keeps its built engines and \
                         timing cache, so later starts skip the build (empty = no cache)",
                    )
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fp16")
                    .nick("FP16")
                    .blurb("Let the tensorrt provider build half-precision engines")
                    .default_value(DEFAULT_FP16)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("late-frames", LateFrames::Drop)
                    .nick("Late frames")
                    .blurb(
                        "With qos on, what to do with a frame that is already late downstream: \
                         drop it, pass it through untouched, or derain it anyway",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("bypass")
                    .nick("Bypass")
                    .blurb("Pass frames through untouched (can be switched while playing)")
                    .default_value(DEFAULT_BYPASS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", Output::Clean)
                    .nick("Output")
                    .blurb(
                        "What to write into each frame: the derained frame (clean), the rain \
                         layer the model removed, scaled for viewing (rain), or left half input, \
                         right half derained (split); can be switched while playing",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("auto-bypass")
                    .nick("Automatic bypass")
                    .blurb(
                        "After 8 frames in a row whose rain intensity is below rain-threshold, \
                         pass frames through untouched and run the model only on every \
                         bypass-check-interval-th frame (left untouched too); derain again when \
                         a check measures 1.5 x rain-threshold or more. Saves most of the CPU on \
                         dry footage; can be switched while playing",
                    )
                    .default_value(DEFAULT_AUTO_BYPASS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("rain-threshold")
                    .nick("Rain threshold")
                    .blurb(
                        "Rain intensity (mean |input - output| in 8-bit levels) below which a \
                         frame counts as dry, for auto-bypass and the raining field of nlcl-rain \
                         messages",
                    )
                    .minimum(0.0)
                    .maximum(255.0)
                    .default_value(DEFAULT_RAIN_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("bypass-check-interval")
                    .nick("Bypass check interval")
                    .blurb("While auto-bypass passes frames through, check every this many frames")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_BYPASS_CHECK_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("message-interval")
                    .nick("Message interval")
                    .blurb(
                        "Post an nlcl-rain element message every this many measured frames \
                         (mean and last rain intensity, raining, auto-bypass state); 0 = none",
                    )
                    .default_value(DEFAULT_MESSAGE_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "frames-processed, frames-bypassed, frames-late-dropped, \
                         frames-late-passed, frames-late-processed, frames-invalid-output \
                         (model output NaN or infinite: frame passed through), \
                         frames-auto-bypassed, rain-intensity (last measured frame, levels; -1 \
                         before the first), auto-bypass-active, inference-mean-ms, \
                         inference-p50-ms, inference-p99-ms, latency-mean-ms, latency-p99-ms, \
                         provider",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        // READY-only properties take effect at the next start: refuse a change while running,
        // so the property keeps reporting what runs instead of silently deferring it.
        if pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_READY)
            && self.obj().current_state() > gst::State::Ready
        {
            let msg = format!(
                "property {} can only be changed in the NULL or READY state; the running value \
                 is kept (stop the pipeline, set it, then start again)",
                pspec.name()
            );
            self.post_warning(&msg);
            return;
        }
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "model-file" => {
                settings.model_file = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            }
            "model" => settings.model = value.get().unwrap_or_default(),
            "execution-provider" => settings.provider = value.get().unwrap_or_default(),
            "device-id" => settings.device_id = value.get().unwrap_or(DEFAULT_DEVICE_ID),
            "threads" => settings.threads = value.get().unwrap_or(DEFAULT_THREADS),
            "fallback-to-cpu" => settings.fallback_to_cpu = value.get().unwrap_or(DEFAULT_FALLBACK),
            "max-in-flight" => {
                settings.max_in_flight = value.get().unwrap_or(DEFAULT_MAX_IN_FLIGHT)
            }
            "sessions" => settings.sessions = value.get().unwrap_or(DEFAULT_SESSIONS),
            "batch-size" => settings.batch_size = value.get().unwrap_or(DEFAULT_BATCH_SIZE),
            "model-cache-dir" => {
                settings.model_cache_dir = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            }
            "fp16" => settings.fp16 = value.get().unwrap_or(DEFAULT_FP16),
            "late-frames" => settings.late_frames = value.get().unwrap_or_default(),
            "output" => settings.output = value.get().unwrap_or_default(),
            "auto-bypass" => settings.auto_bypass = value.get().unwrap_or(DEFAULT_AUTO_BYPASS),
            "rain-threshold" => {
                settings.rain_threshold = value.get().unwrap_or(DEFAULT_RAIN_THRESHOLD)
            }
            "bypass-check-interval" => {
                settings.bypass_check_interval =
                    value.get().unwrap_or(DEFAULT_BYPASS_CHECK_INTERVAL)
            }
            "message-interval" => {
                settings.message_interval = value.get().unwrap_or(DEFAULT_MESSAGE_INTERVAL)
            }
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
        let s = || lock(&self.settings);
        match pspec.name() {
            "model-file" => s().model_file.to_value(),
            "model" => s().model.to_value(),
            "execution-provider" => s().provider.to_value(),
            "device-id" => s().device_id.to_value(),
            "threads" => s().threads.to_value(),
            "fallback-to-cpu" => s().fallback_to_cpu.to_value(),
            "max-in-flight" => s().max_in_flight.to_value(),
            "sessions" => s().sessions.to_value(),
            "batch-size" => s().batch_size.to_value(),
            "model-cache-dir" => s().model_cache_dir.to_value(),
            "fp16" => s().fp16.to_value(),
            "late-frames" => s().late_frames.to_value(),
            "output" => s().output.to_value(),
            "auto-bypass" => s().auto_bypass.to_value(),
            "rain-threshold" => s().rain_threshold.to_value(),
            "bypass-check-interval" => s().bypass_check_interval.to_value(),
            "message-interval" => s().message_interval.to_value(),
            "bypass" => s().bypass.to_value(),
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
        let provider: nlcl::runtime::Provider = settings.provider.into();
        if let (_, Some(msg)) = nlcl::runtime::bound_threads(settings.threads as usize) {
            self.post_warning(&format!("{msg} (property threads)"));
        }
        let total_threads = total_threads(settings.threads);
        let batch_size = settings.batch_size.max(1) as usize;
        let sessions = session_count(
            settings.sessions,
            provider,
            total_threads,
            settings.max_in_flight,
            batch_size,
        );
        let options = SessionOptions {
            provider,
            device_id: settings.device_id,
            // One session keeps ONNX Runtime's own choice for threads=0; several split them.
            threads: if sessions > 1 {
                (total_threads / sessions).max(1)
            } else {
                settings.threads as usize
            },
            strict_provider: !settings.fallback_to_cpu,
            cache_dir: (!settings.model_cache_dir.is_empty())
                .then(|| settings.model_cache_dir.clone().into()),
            fp16: settings.fp16,
            ..SessionOptions::default()
        };
        let source = settings.model_source();
        // Read once, opened once per session.
        let (bytes, origin) = source
            .bytes()
            .map_err(|e| self.model_error(&settings.model_file, e))?;
        let open = || {
            Model::from_bytes(&bytes, &origin, &options)
                .map_err(|e| self.model_error(&settings.model_file, e))
        };
        let spawn_failed = |e: std::io::Error| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ["Could not start the inference threads: {}", e]
            )
        };
        let (worker, gpu_path_failure) =
            match self.open_gpu_worker(&bytes, &origin, &options, sessions) {
                Ok(w) => (w, None),
                Err(reason) => (None, reason),
            };
        let worker = match worker {
            Some(w) => w,
            None => {
                let mut models = vec![open()?];
                for _ in 1..sessions {
                    models.push(open()?);
                }
                InferenceWorker::spawn_pool(models, "nlclderain-infer").map_err(spawn_failed)?
            }
        };
        let model = worker.info();
        if let Some(reason) = gpu_path_failure
            && model.provider == nlcl::runtime::Provider::Cuda
        {
            let msg = format!(
                "CUDA frame path unavailable ({reason}); frames are converted on the CPU and \
                 copied to the GPU for inference"
            );
            self.post_warning(&msg);
        }
        if let Some(reason) = &model.fallback {
            self.post_warning(reason);
        }
        let conversion = if worker.runs_frames() { "gpu" } else { "cpu" };
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}) on {}, conversion on the {conversion}",
            model.origin,
            model
                .meta(nlcl::onnx::meta::ARCH)
                .unwrap_or("unknown architecture"),
            model.provider
        );
        *lock(&self.stats) = Stats {
            provider: model.provider.name(),
            conversion,
            ..Stats::default()
        };
        *lock(&self.timing) = Timing::default();
        if let Some(fixed) = model.fixed_batch
            && fixed != batch_size
        {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                [
                    "Model '{}' takes batches of exactly {} frames; set batch-size={} or \
                     export it with a dynamic batch",
                    model.origin,
                    fixed,
                    fixed
                ]
            ));
        }
        let size_multiple = model.size_multiple;
        let in_flight_limit = in_flight_limit(settings.max_in_flight, sessions, batch_size);
        gst::info!(
            CAT,
            imp = self,
            "{sessions} session(s) of {} thread(s), batch size {batch_size}, up to \
             {in_flight_limit} frames in flight",
            options.threads
        );
        lock(&self.timing).in_flight_limit = in_flight_limit;
        *lock(&self.state) = Some(State {
            worker,
            size_multiple,
            batch_size,
            in_flight_limit,
            info: None,
            pending: VecDeque::new(),
            in_flight: 0,
            filling: None,
            jobs_out: 0,
            job_shapes: VecDeque::new(),
            collected: None,
            generation: 0,
            meter: RainMeter::new(DEFAULT_RAIN_THRESHOLD, DRY_RUN, 1),
            meter_params: (f64::NAN, 0),
            rain_sum: 0.0,
            rain_count: 0,
            pool: Vec::new(),
            alpha: Vec::new(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the worker joins its threads after the jobs they are running.
        *lock(&self.state) = None;
        lock(&self.timing).in_flight_limit = 0;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) => self.discard_pending(),
            // Frames in flight belong before any serialized event (new caps, new segment, EOS).
            _ if event.is_serialized() => {
                if let Err(e) = self.drain() {
                    gst::debug!(CAT, imp = self, "drain before {:?}: {e:?}", event.type_());
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Qos(q) = event.view() {
            let (_, _, diff, timestamp) = q.get();
            if let Some(ts) = timestamp {
                // As GstBaseTransform: a frame later than this running time is too late;
                // when late, leave room for twice the lateness.
                let earliest = if diff > 0 {
                    ts.checked_add(gst::ClockTime::from_nseconds(2 * diff as u64))
                } else {
                    ts.checked_sub(gst::ClockTime::from_nseconds(diff.unsigned_abs()))
                };
                lock(&self.timing).earliest = earliest;
            }
        }
        self.parent_src_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let res = BaseTransformImplExt::parent_query(self, direction, query);
        if direction == gst::PadDirection::Src
            && res
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let (live, min, max) = q.result();
            let ours = self.added_latency();
            q.set(
                live,
                min.saturating_add(ours),
                max.map(|m| m.saturating_add(ours)),
            );
        }
        res
    }

    fn submit_input_buffer(
        &self,
        _is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = lock(&self.settings).per_frame();
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let arrived = Instant::now();
        if settings.bypass {
            lock(&self.stats).bypassed += 1;
            return self.push_untouched(state, inbuf, arrived);
        }
        let action = self.auto_bypass_action(state, &settings);
        if action == FrameAction::PassThrough {
            lock(&self.stats).auto_bypassed += 1;
            return self.push_untouched(state, inbuf, arrived);
        }
        if self.obj().is_qos() && self.is_late(&inbuf) {
            match settings.late_frames {
                LateFrames::Drop => {
                    lock(&self.stats).late_dropped += 1;
                    self.post_qos_drop(&inbuf);
                    return Ok(gst::FlowSuccess::Ok);
                }
                LateFrames::PassThrough => {
                    lock(&self.stats).late_passed += 1;
                    return self.push_untouched(state, inbuf, arrived);
                }
                LateFrames::Process => lock(&self.stats).late_processed += 1,
            }
        }
        let info = state.info.clone().ok_or_else(|| {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ["No caps before data"]);
            gst::FlowError::NotNegotiated
        })?;
        let (th, tw) = convert::padded_size(
            info.height() as usize,
            info.width() as usize,
            state.size_multiple,
        );
        let batch_size = state.batch_size;
        let format = pixel_format(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let encoding = stream_encoding(&info)?;
        let spec = state.worker.runs_frames().then(|| FrameSpec {
            format,
            width: info.width() as usize,
            height: info.height() as usize,
            encoding,
        });
        let packed = match &spec {
            Some(s) => convert::tight_frame_len(s.format, s.width, s.height)
                .ok_or(gst::FlowError::NotSupported)?,
            None => 0,
        };
        // A batch of other frames cannot take this one (caps changes drain first, so this is
        // only a safeguard): another tensor size, or on the GPU path another format, size or
        // matrix.
        if state
            .filling
            .as_ref()
            .is_some_and(|f| (f.th, f.tw) != (th, tw) || f.spec != spec)
        {
            self.submit_partial_batch(state)?;
        }
        let filling = state.filling.get_or_insert_with(|| Filling {
            bufs: state.pool.pop().unwrap_or_default(),
            frames: 0,
            th,
            tw,
            spec,
        });
        let slot = filling.frames;
        {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &info)
                .map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    [
                        "Buffer of {} bytes does not hold a {}x{} {:?} frame",
                        inbuf.size(),
                        info.width(),
                        info.height(),
                        info.format()
                    ]
                );
                gst::FlowError::Error
            })?;
            let view = frame_view(&frame)?;
            let result = if packed > 0 {
                // GPU frame path: only a copy here, the conversion runs on the GPU.
                let bytes = &mut filling.bufs.frames_in;
                bytes.resize((slot + 1) * packed, 0);
                convert::tight_frame_mut(
                    format,
                    view.width,
                    view.height,
                    &mut bytes[slot * packed..],
                )
                .and_then(|mut dst| convert::copy_frame(&view, &mut dst))
            } else {
                let per_frame = 3 * th * tw;
                let input = &mut filling.bufs.input;
                input.resize((slot + 1) * per_frame, 0.0);
                convert::frame_to_tensor(
                    &view,
                    encoding,
                    state.size_multiple,
                    &mut input[slot * per_frame..],
                )
                .map(|_| ())
            };
            result.map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ["Frame conversion: {}", e]
                );
                gst::FlowError::Error
            })?;
        }
        filling.frames += 1;
        let full = filling.frames >= batch_size;
        state.in_flight += 1;
        state.pending.push_back(Pending {
            buffer: inbuf,
            arrived,
            work: Some(FrameWork {
                info,
                packed,
                th,
                tw,
                check_only: action == FrameAction::Check,
            }),
        });
        if full {
            self.submit_partial_batch(state)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        // Block only when the element is full: that is what keeps memory flat.
        let limit = state.in_flight_limit;
        let full = state.in_flight >= limit || state.pending.len() > 4 * limit;
        match self.next_output(state, full)? {
            Some(buf) => Ok(GenerateOutputSuccess::Buffer(buf)),
            None => Ok(GenerateOutputSuccess::NoOutput),
        }
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
        if let Err(reason) = yuv_encoding(in_info) {
            gst::element_imp_error!(self, gst::StreamError::Format, ["{}", reason]);
            return Err(gst::loggable_error!(CAT, "{}", reason));
        }
        gst::debug!(CAT, imp = self, "negotiated {incaps}");
        if let Some(state) = lock(&self.state).as_mut() {
            // A model with a fixed input size is checked now, not on the first frame.
            let size = (in_info.width() as usize, in_info.height() as usize);
            if let Err(reason) = state.worker.info().check_frame_size(size.0, size.1) {
                gst::element_imp_error!(self, gst::StreamError::Format, ["{}", reason]);
                return Err(gst::loggable_error!(CAT, "{}", reason));
            }
            state.info = Some(in_info.clone());
        }
        let fps = in_info.fps();
        lock(&self.timing).frame_duration = (fps.numer() > 0)
            .then(|| gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64))
            .flatten();
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}

/// Threads to share among the sessions: the `threads` property (bounded, see
/// [`nlcl::runtime::bound_threads`]), or the machine's for 0.
fn total_threads(threads: u32) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => nlcl::runtime::bound_threads(t as usize).0,
    }
}

/// Sessions to open: the `sessions` property, or for 0 on a CPU two when two threads and two
/// batches in flight allow it (two single-threaded sessions on alternate frames outrun one
/// two-threaded session: `nlcl bench --sessions 0,1` measured 1.11 against 0.97 of the bare
/// session for the default model at 640x360), and one on a GPU, which batches instead.
fn session_count(
    requested: u32,
    provider: nlcl::runtime::Provider,
    threads: usize,
    max_in_flight: u32,
    batch_size: usize,
) -> usize {
    match requested {
        0 if provider == nlcl::runtime::Provider::Cpu => threads
            .min(max_in_flight as usize / batch_size.max(1))
            .clamp(1, 2),
        0 => 1,
        n => n as usize,
    }
}

/// Frames the element may hold: `max-in-flight`, raised to what a full batch in every session
/// needs (only when `batch-size` or `sessions` ask for more).
fn in_flight_limit(max_in_flight: u32, sessions: usize, batch_size: usize) -> usize {
    (max_in_flight.max(1) as usize).max(sessions * batch_size)
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

/// The YUV matrix and range of a stream, from its colorimetry (what `videoconvert` would use):
/// an unknown matrix is GStreamer's default for the height, an unknown range is limited
/// (`gst_video_color_range_offsets`). A matrix the engine does not know is an error naming it,
/// never silently another matrix. RGB formats need no encoding.
fn yuv_encoding(info: &gst_video::VideoInfo) -> Result<YuvEncoding, String> {
    if !info.is_yuv() {
        return Ok(YuvEncoding::default());
    }
    use gst_video::VideoColorMatrix as M;
    let colorimetry = info.colorimetry();
    let matrix = match colorimetry.matrix() {
        M::Bt601 => ColorMatrix::Bt601,
        M::Bt709 => ColorMatrix::Bt709,
        M::Bt2020 => ColorMatrix::Bt2020,
        M::Smpte240m => ColorMatrix::Smpte240m,
        M::Fcc => ColorMatrix::Fcc,
        M::Unknown => ColorMatrix::gst_default_for_height(info.height() as usize),
        other => {
            return Err(format!(
                "Unsupported colour matrix {other:?} of a YUV stream (colorimetry={colorimetry}): \
                 nlclderain reads BT.601, BT.709, BT.2020, SMPTE 240M and FCC; put videoconvert \
                 before it to convert to RGB"
            ));
        }
    };
    let range = match colorimetry.range() {
        gst_video::VideoColorRange::Range0_255 => ColorRange::Full,
        _ => ColorRange::Limited,
    };
    Ok(YuvEncoding::new(matrix, range))
}

/// [`yuv_encoding`] in the streaming thread, where caps were checked by `set_info` already.
fn stream_encoding(info: &gst_video::VideoInfo) -> Result<YuvEncoding, gst::FlowError> {
    yuv_encoding(info).map_err(|_| gst::FlowError::NotNegotiated)
}

fn strides_of(strides: &[i32]) -> Result<[usize; 3], gst::FlowError> {
    let mut out = [0usize; 3];
    for (dst, &s) in out.iter_mut().zip(strides.iter()) {
        *dst = usize::try_from(s).map_err(|_| gst::FlowError::NotSupported)?;
    }
    Ok(out)
}

fn frame_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Result<FrameRef<'a>, gst::FlowError> {
    let format = pixel_format(frame.format()).ok_or(gst::FlowError::NotNegotiated)?;
    let planes = frame.planes_data();
    Ok(FrameRef {
        format,
        width: frame.width() as usize,
        height: frame.height() as usize,
        planes: [planes[0], planes[1], planes[2]],
        strides: strides_of(frame.plane_stride())?,
    })
}

/// Maps `buffer` (made writable) as a `format` frame of `info` and lets `write` fill it; the
/// outer error is a mapping failure, the inner one `write`'s.
fn write_frame(
    buffer: &mut gst::Buffer,
    info: &gst_video::VideoInfo,
    format: PixelFormat,
    write: impl FnOnce(&mut FrameMut) -> Result<(), convert::ConvertError>,
) -> Result<Result<(), convert::ConvertError>, gst::FlowError> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
        .map_err(|_| gst::FlowError::Error)?;
    let strides = strides_of(frame.plane_stride())?;
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let [p0, p1, p2, _] = frame.planes_data_mut();
    let mut out = FrameMut {
        format,
        width,
        height,
        planes: [p0, p1, p2],
        strides,
    };
    Ok(write(&mut out))
}

impl NlclDerain {
    /// Logs `msg` and posts it as a warning message on the bus.
    fn post_warning(&self, msg: &str) {
        gst::warning!(CAT, imp = self, "{msg}");
        self.obj()
            .post_message(
                gst::message::Warning::builder(gst::CoreError::Failed, msg)
                    .src(&*self.obj())
                    .build(),
            )
            .ok();
    }

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
            RuntimeError::NamedModelNotFound { .. } => {
                gst::error_msg!(gst::ResourceError::NotFound, ["{} (property model)", e])
            }
            RuntimeError::NoDefaultModel => gst::error_msg!(
                gst::ResourceError::NotFound,
                [
                    "No model: this build of nlclderain has no built-in default model; set \
                     model-file=PATH to an NLCL ONNX model"
                ]
            ),
            RuntimeError::LibraryNotFound { .. } => {
                gst::error_msg!(gst::LibraryError::Init, ["{}", e])
            }
            RuntimeError::ProviderUnavailable { .. } => gst::error_msg!(
                gst::LibraryError::Init,
                ["{} (property execution-provider)", e]
            ),
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

    /// Whether `buf` would arrive downstream after the earliest time QoS asked for.
    fn is_late(&self, buf: &gst::BufferRef) -> bool {
        let Some(earliest) = lock(&self.timing).earliest else {
            return false;
        };
        let Some(pts) = buf.pts() else {
            return false;
        };
        let segment = self.obj().segment();
        let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
            return false;
        };
        let end = pts + buf.duration().unwrap_or(gst::ClockTime::ZERO);
        match segment.to_running_time(end) {
            Some(rt) => rt <= earliest,
            None => false,
        }
    }

    fn post_qos_drop(&self, buf: &gst::BufferRef) {
        let segment = self.obj().segment();
        let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
            return;
        };
        let running_time = buf.pts().and_then(|p| segment.to_running_time(p));
        let stream_time = buf.pts().and_then(|p| segment.to_stream_time(p));
        let stats = lock(&self.stats);
        let msg = gst::message::Qos::builder(false)
            .running_time(running_time)
            .stream_time(stream_time)
            .timestamp(buf.pts())
            .duration(buf.duration())
            .stats(
                gst::format::Buffers::from_u64(stats.processed),
                gst::format::Buffers::from_u64(stats.late_dropped),
            )
            .src(&*self.obj())
            .build();
        drop(stats);
        let _ = self.obj().post_message(msg);
    }

    /// Latency added by holding up to the in-flight limit of frames: one frame interval each
    /// beyond the first, plus the median session run.
    fn added_latency(&self) -> gst::ClockTime {
        let (frame, max) = {
            let t = lock(&self.timing);
            let max = match t.in_flight_limit {
                // Not started yet: what the settings will give.
                0 => {
                    let s = lock(&self.settings);
                    let batch = s.batch_size.max(1) as usize;
                    let sessions = session_count(
                        s.sessions,
                        s.provider.into(),
                        total_threads(s.threads),
                        s.max_in_flight,
                        batch,
                    );
                    in_flight_limit(s.max_in_flight, sessions, batch)
                }
                n => n,
            } as u64;
            (t.frame_duration.unwrap_or(gst::ClockTime::ZERO), max)
        };
        let inference = lock(&self.stats).inference.percentile_ms(50.0);
        frame * (max - 1) + gst::ClockTime::from_nseconds((inference * 1e6) as u64)
    }

    /// The next frame ready to leave, waiting for it when `block` is set.
    fn next_output(
        &self,
        state: &mut State,
        block: bool,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let Some(front) = state.pending.front() else {
            return Ok(None);
        };
        if front.work.is_none() {
            let p = state.pending.pop_front().ok_or(gst::FlowError::Error)?;
            lock(&self.stats).latency.record(p.arrived.elapsed());
            return Ok(Some(p.buffer));
        }
        let worker_failed = |e: nlcl::worker::WorkerGone| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["{}", e]);
            gst::FlowError::Error
        };
        while state.collected.is_none() {
            if state.jobs_out == 0 {
                // The front frame is still in the batch being filled: run it as it is when
                // someone waits for it (downstream, a drain), else let it fill up.
                if !block {
                    return Ok(None);
                }
                if state.filling.is_none() {
                    // Nothing converted is left although a frame waits: bookkeeping bug.
                    return Err(gst::FlowError::Error);
                }
                state.submit_filling().map_err(worker_failed)?;
            }
            let next = if block {
                state.worker.recv().map(Some)
            } else {
                state.worker.try_recv()
            };
            let Some(done) = next.map_err(worker_failed)? else {
                return Ok(None);
            };
            state.jobs_out -= 1;
            let (frames, th, tw) = state.job_shapes.pop_front().ok_or(gst::FlowError::Error)?;
            if done.tag != state.generation {
                // Frames discarded by a flush.
                state.pool.push(JobBuffers::from(done));
                continue;
            }
            if let Err(msg) = &done.result {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ["Inference failed: {}", msg]
                );
                state.pool.push(JobBuffers::from(done));
                // The job's frames leave with it, so later frames still meet their own results
                // (a batch's frames are contiguous: pass-through frames submit the batch first).
                for _ in 0..frames {
                    if state.pending.front().is_none_or(|p| p.work.is_none()) {
                        break;
                    }
                    state.pending.pop_front();
                    state.in_flight = state.in_flight.saturating_sub(1);
                }
                return Err(gst::FlowError::Error);
            }
            state.collected = Some(Collected {
                done,
                frames,
                taken: 0,
                th,
                tw,
            });
        }
        let p = state.pending.pop_front().ok_or(gst::FlowError::Error)?;
        state.in_flight = state.in_flight.saturating_sub(1);
        let mut c = state.collected.take().ok_or(gst::FlowError::Error)?;
        let result = self.finish(state, p, &mut c);
        c.taken += 1;
        if c.taken < c.frames {
            state.collected = Some(c);
        } else {
            state.pool.push(JobBuffers::from(c.done));
        }
        result.map(Some)
    }

    /// Writes frame `c.taken` of a finished job back into its frame's buffer (or leaves it
    /// untouched: an auto-bypass check, a model output that is not finite), after measuring
    /// the rain the model removed.
    fn finish(
        &self,
        state: &mut State,
        pending: Pending,
        c: &mut Collected,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let settings = lock(&self.settings).per_frame();
        let work = pending.work.as_ref().ok_or(gst::FlowError::Error)?;
        if (work.th, work.tw) != (c.th, c.tw) {
            gst::element_imp_error!(
                self,
                gst::CoreError::Failed,
                ["Frame and inference result sizes differ"]
            );
            return Err(gst::FlowError::Error);
        }
        let info = &work.info;
        let format = pixel_format(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let (width, height) = (info.width() as usize, info.height() as usize);
        let mut buffer = pending.buffer;
        let result = if work.packed > 0 {
            // GPU frame path: the result is the finished frame, tightly packed.
            if c.done.invalid_frames.contains(&c.taken) {
                // The GPU path already gave the input frame back; the buffer is untouched.
                self.record_invalid_output();
                return Ok(buffer);
            }
            let size = work.packed;
            let range = c.taken * size..(c.taken + 1) * size;
            let frames_in = c
                .done
                .frames_in
                .get(range.clone())
                .ok_or(gst::FlowError::Error)?;
            let packed = c
                .done
                .frames_out
                .get_mut(range)
                .ok_or(gst::FlowError::Error)?;
            if let Some(intensity) = rain_meter::bytes_intensity(frames_in, packed) {
                self.record_intensity(state, intensity, &settings);
            }
            if work.check_only {
                self.record_check(&pending.arrived);
                return Ok(buffer);
            }
            let input = convert::tight_frame(format, width, height, frames_in);
            let output = convert::tight_frame_mut(format, width, height, packed);
            if let (Ok(input), Ok(mut output)) = (input, output) {
                output_view::apply_to_frame(settings.output, &input, &mut output)
                    .map_err(|_| gst::FlowError::Error)?;
            }
            write_frame(&mut buffer, info, format, |out| {
                convert::tight_frame(format, out.width, out.height, packed)
                    .and_then(|src| convert::copy_frame(&src, out))
            })?
        } else {
            let per_frame = 3 * c.th * c.tw;
            let range = c.taken * per_frame..(c.taken + 1) * per_frame;
            let input = c
                .done
                .input
                .get(range.clone())
                .ok_or(gst::FlowError::Error)?;
            let output = c.done.output.get_mut(range).ok_or(gst::FlowError::Error)?;
            // A broken model (or one pushed outside its range) can return NaN, which would
            // come out as a black frame: keep the input frame instead, and say so once.
            if output.iter().any(|v| !v.is_finite()) {
                self.record_invalid_output();
                return Ok(buffer);
            }
            if let Some(intensity) =
                rain_meter::tensor_intensity(input, output, c.th, c.tw, height, width)
            {
                self.record_intensity(state, intensity, &settings);
            }
            if work.check_only {
                self.record_check(&pending.arrived);
                return Ok(buffer);
            }
            output_view::apply_to_tensor(settings.output, input, output, c.th, c.tw, height, width);
            let output = &*output;
            // Only RGBA/BGRA carry real alpha, which the write-back would otherwise overwrite.
            let keep_alpha = matches!(format, PixelFormat::Rgba | PixelFormat::Bgra);
            if keep_alpha {
                let frame =
                    gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
                        .map_err(|_| gst::FlowError::Error)?;
                state.alpha.clear();
                state
                    .alpha
                    .extend_from_slice(frame.plane_data(0).map_err(|_| gst::FlowError::Error)?);
            }
            let alpha = &state.alpha;
            let encoding = stream_encoding(info)?;
            write_frame(&mut buffer, info, format, |out| {
                let alpha_view = keep_alpha.then(|| FrameRef {
                    format,
                    width: out.width,
                    height: out.height,
                    planes: [&alpha[..], &[], &[]],
                    strides: out.strides,
                });
                convert::tensor_to_frame(output, c.th, c.tw, encoding, alpha_view.as_ref(), out)
            })?
        };
        result.map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Format, ["Frame conversion: {}", e]);
            gst::FlowError::Error
        })?;
        self.record_processed(c, &pending.arrived);
        Ok(buffer)
    }

    /// Counts a frame whose model output was not finite; the first one of a run is also
    /// posted as a warning (the count is in `stats`).
    fn record_invalid_output(&self) {
        let first = {
            let mut stats = lock(&self.stats);
            stats.invalid_output += 1;
            stats.invalid_output == 1
        };
        if first {
            self.post_warning(
                "The model returned NaN or infinite values for a frame: it was passed through \
                 untouched. Later such frames are counted in stats (frames-invalid-output).",
            );
        }
    }

    /// An auto-bypass check leaves untouched: counted as auto-bypassed, its session run timed.
    fn record_check(&self, arrived: &Instant) {
        let mut stats = lock(&self.stats);
        stats.auto_bypassed += 1;
        stats.latency.record(arrived.elapsed());
    }

    fn record_processed(&self, c: &Collected, arrived: &Instant) {
        let mut stats = lock(&self.stats);
        stats.processed += 1;
        if c.taken == 0
            && let Ok(d) = c.done.result
        {
            // One session run per job, however many frames it holds.
            stats.inference.record(d);
        }
        stats.latency.record(arrived.elapsed());
    }

    /// The GPU frame path's worker, when `execution-provider=cuda` and this build has the
    /// `cuda` feature. `Ok(None)`: not asked for; `Err(Some(reason))`: asked for but
    /// unavailable (the caller falls back to CPU conversion).
    #[allow(unused_variables)]
    fn open_gpu_worker(
        &self,
        bytes: &[u8],
        origin: &str,
        options: &SessionOptions,
        sessions: usize,
    ) -> Result<Option<InferenceWorker>, Option<String>> {
        if options.provider != nlcl::runtime::Provider::Cuda {
            return Ok(None);
        }
        #[cfg(feature = "cuda")]
        {
            let mut gpu = Vec::with_capacity(sessions);
            for _ in 0..sessions {
                let s = nlcl::cuda::GpuSession::open(Some(bytes), origin, options)
                    .map_err(|e| Some(e.to_string()))?;
                gpu.push(s);
            }
            InferenceWorker::spawn_gpu_pool(gpu, "nlclderain-infer")
                .map(Some)
                .map_err(|e| Some(e.to_string()))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (bytes, origin, sessions);
            Err(Some(
                "this build of the plugin has no `cuda` feature".to_string(),
            ))
        }
    }

    /// Queues a frame that leaves untouched, behind the frames before it (a partly filled
    /// batch is submitted first, so batches stay contiguous).
    fn push_untouched(
        &self,
        state: &mut State,
        buffer: gst::Buffer,
        arrived: Instant,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.submit_partial_batch(state)?;
        state.pending.push_back(Pending {
            buffer,
            arrived,
            work: None,
        });
        Ok(gst::FlowSuccess::Ok)
    }

    /// What auto-bypass does with the next frame (always derain when it is off).
    fn auto_bypass_action(&self, state: &mut State, settings: &FrameSettings) -> FrameAction {
        let params = (settings.rain_threshold, settings.bypass_check_interval);
        if !settings.auto_bypass {
            if state.meter.bypassing() {
                state.meter = RainMeter::new(params.0, DRY_RUN, params.1 as usize);
                lock(&self.stats).auto_bypass_active = false;
            }
            return FrameAction::Derain;
        }
        if params != state.meter_params {
            // New settings start a fresh decision (the next frames are derained and measured).
            state.meter = RainMeter::new(params.0, DRY_RUN, params.1 as usize);
            state.meter_params = params;
        }
        state.meter.next_frame()
    }

    /// Records the rain intensity measured on a frame: stats, auto-bypass, `nlcl-rain`.
    fn record_intensity(&self, state: &mut State, intensity: f64, settings: &FrameSettings) {
        let was = state.meter.bypassing();
        if settings.auto_bypass {
            state.meter.observe(intensity);
        }
        let now = state.meter.bypassing();
        if was != now {
            gst::info!(
                CAT,
                imp = self,
                "auto-bypass {} (rain intensity {intensity:.2} levels)",
                if now { "on: dry" } else { "off: rain" }
            );
        }
        {
            let mut stats = lock(&self.stats);
            stats.rain_intensity = intensity;
            stats.auto_bypass_active = now;
        }
        if settings.message_interval == 0 {
            return;
        }
        state.rain_sum += intensity;
        state.rain_count += 1;
        if state.rain_count >= settings.message_interval {
            let mean = state.rain_sum / f64::from(state.rain_count);
            let s = gst::Structure::builder("nlcl-rain")
                .field("intensity", mean)
                .field("last", intensity)
                .field("frames", state.rain_count)
                .field("threshold", settings.rain_threshold)
                .field("raining", mean >= settings.rain_threshold)
                .field("auto-bypass-active", now)
                .build();
            state.rain_sum = 0.0;
            state.rain_count = 0;
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
    }

    /// Hands a partly filled batch to the worker (nothing to do when none is filling).
    fn submit_partial_batch(&self, state: &mut State) -> Result<(), gst::FlowError> {
        state.submit_filling().map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["{}", e]);
            gst::FlowError::Error
        })
    }

    /// Pushes every frame still inside the element, in order.
    fn drain(&self) -> Result<(), gst::FlowError> {
        loop {
            let buf = {
                let mut guard = lock(&self.state);
                let Some(state) = guard.as_mut() else {
                    return Ok(());
                };
                match self.next_output(state, true)? {
                    Some(b) => b,
                    None => return Ok(()),
                }
            };
            // Pushed without holding the state lock: downstream may call back into us.
            self.obj().src_pad().push(buf)?;
        }
    }

    /// Forgets the frames in flight (flushing seek); their results are discarded on arrival.
    fn discard_pending(&self) {
        if let Some(state) = lock(&self.state).as_mut() {
            let discarded = state.pending.len();
            state.in_flight = 0;
            state.pending.clear();
            state.generation += 1;
            if let Some(f) = state.filling.take() {
                state.pool.push(f.bufs);
            }
            if let Some(c) = state.collected.take() {
                state.pool.push(JobBuffers::from(c.done));
            }
            if discarded > 0 {
                gst::debug!(CAT, imp = self, "flush discarded {discarded} frames");
            }
        }
        lock(&self.timing).earliest = None;
    }

    fn stats_structure(&self) -> gst::Structure {
        let stats = lock(&self.stats);
        gst::Structure::builder("nlclderain-stats")
            .field("frames-processed", stats.processed)
            .field("frames-bypassed", stats.bypassed)
            .field("frames-late-dropped", stats.late_dropped)
            .field("frames-late-passed", stats.late_passed)
            .field("frames-late-processed", stats.late_processed)
            .field("frames-invalid-output", stats.invalid_output)
            .field("frames-auto-bypassed", stats.auto_bypassed)
            .field("rain-intensity", stats.rain_intensity)
            .field("auto-bypass-active", stats.auto_bypass_active)
            .field("inference-mean-ms", stats.inference.mean_ms())
            .field("inference-p50-ms", stats.inference.percentile_ms(50.0))
            .field("inference-p99-ms", stats.inference.percentile_ms(99.0))
            .field("latency-mean-ms", stats.latency.mean_ms())
            .field("latency-p99-ms", stats.latency.percentile_ms(99.0))
            .field("provider", stats.provider)
            .field("conversion", stats.conversion)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(colorimetry: gst_video::VideoColorimetry) -> gst_video::VideoInfo {
        gst::init().unwrap();
        gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 32, 16)
            .colorimetry(&colorimetry)
            .build()
            .unwrap()
    }

    #[test]
    fn yuv_encoding_follows_colorimetry_and_refuses_the_rgb_matrix() {
        use gst_video::{
            VideoColorMatrix as M, VideoColorPrimaries as P, VideoColorRange as R,
            VideoTransferFunction as T,
        };
        let of = |r, m| {
            yuv_encoding(&info(gst_video::VideoColorimetry::new(
                r,
                m,
                T::Unknown,
                P::Unknown,
            )))
        };
        assert_eq!(
            of(R::Range0_255, M::Bt601),
            Ok(YuvEncoding::new(ColorMatrix::Bt601, ColorRange::Full))
        );
        assert_eq!(
            of(R::Range16_235, M::Bt2020),
            Ok(YuvEncoding::new(ColorMatrix::Bt2020, ColorRange::Limited))
        );
        // Unknown range is limited, unknown matrix GStreamer's default for the height.
        assert_eq!(
            of(R::Unknown, M::Unknown),
            Ok(YuvEncoding::new(ColorMatrix::Bt601, ColorRange::Limited))
        );
        // The RGB matrix on a YUV stream (caps parsing replaces it, a VideoInfo built in code
        // can carry it) is refused by name, never read as another matrix.
        let error = of(R::Range0_255, M::Rgb).unwrap_err();
        assert!(
            error.contains("Rgb") && error.contains("videoconvert"),
            "{error}"
        );
    }
}
