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
//! the engine's GPU frame sessions (`nlcl::cuda`): frames are only copied (tightly packed) on
//! the streaming thread, and conversion to and from tensors happens on the GPU. The engine
//! chooses ([`InferenceWorker::open`]); where that path cannot start (no NVRTC, say) the
//! element converts on the CPU and feeds ONNX Runtime's CUDA provider.
//!
//! QoS is handled here rather than by the base class so that `late-frames` can choose what
//! happens to a frame that is already late downstream.

use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use nlcl::rain_meter::FrameAction;
use nlcl::runtime::{RuntimeError, SessionOptions};
use nlcl::worker::{InferenceWorker, OpenError, PayloadKind};

use super::batching::{Failure, Host, State};
use super::frames;
use super::rain::Measured;
use super::settings::*;
use super::stats::Stats;
use super::{ExecutionProvider, LateFrames, NlclModel, Output};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nlclderain",
        gst::DebugColorFlags::empty(),
        Some("NLCL deraining filter"),
    )
});

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
                         standard, full or dehaze (installed by the set-up, or found in NLCL_MODEL_DIR)",
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
                         messages. Unset, the model's own threshold where it records one \
                         (nlcl.rain_threshold; the models of the family do), else 0.35; reads \
                         back what is in effect",
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
                glib::ParamSpecDouble::builder("temporal-smoothing")
                    .nick("Temporal smoothing")
                    .blurb(
                        "For a still camera: how much of the previous frame's change a sample \
                         keeps where the input has not moved (0 = off, up to 0.99), so the \
                         model's small frame-to-frame differences on still scenes do not \
                         flicker; moving rain, objects and pans are derained as before. 0.9 \
                         makes a dry still clip as steady as its input; can be switched while \
                         playing",
                    )
                    .minimum(0.0)
                    .maximum(f64::from(nlcl::temporal::MAX_CARRY))
                    .default_value(DEFAULT_TEMPORAL_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("motion-threshold")
                    .nick("Motion threshold")
                    .blurb(
                        "With temporal-smoothing: the change of an input sample from the \
                         previous frame, in 8-bit levels, at which it counts as half moved \
                         (above the camera's noise, below the contrast of the rain)",
                    )
                    .minimum(0.1)
                    .maximum(255.0)
                    .default_value(DEFAULT_MOTION_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "frames-processed, frames-bypassed, frames-late-dropped, \
                         frames-late-passed, frames-late-processed, batches-submitted, \
                         frames-invalid-output \
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
            "rain-threshold" => settings.rain_threshold = value.get().ok(),
            "bypass-check-interval" => {
                settings.bypass_check_interval =
                    value.get().unwrap_or(DEFAULT_BYPASS_CHECK_INTERVAL)
            }
            "message-interval" => {
                settings.message_interval = value.get().unwrap_or(DEFAULT_MESSAGE_INTERVAL)
            }
            "temporal-smoothing" => {
                settings.temporal_smoothing = value.get().unwrap_or(DEFAULT_TEMPORAL_SMOOTHING)
            }
            "motion-threshold" => {
                settings.motion_threshold = value.get().unwrap_or(DEFAULT_MOTION_THRESHOLD)
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
            "rain-threshold" => s().rain_threshold().to_value(),
            "bypass-check-interval" => s().bypass_check_interval.to_value(),
            "message-interval" => s().message_interval.to_value(),
            "temporal-smoothing" => s().temporal_smoothing.to_value(),
            "motion-threshold" => s().motion_threshold.to_value(),
            "bypass" => s().bypass.to_value(),
            "stats" => lock(&self.stats).to_structure().to_value(),
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
                .format_list(frames::video_formats())
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
        let (worker, gpu_path_failure) =
            InferenceWorker::open(&bytes, &origin, &options, sessions, "nlclderain-infer")
                .map_err(|e| match e {
                    OpenError::Model(e) => self.model_error(&settings.model_file, e),
                    OpenError::Spawn(e) => gst::error_msg!(
                        gst::CoreError::Failed,
                        ["Could not start the inference threads: {}", e]
                    ),
                })?;
        let model = worker.info();
        lock(&self.settings).model_rain_threshold = model.rain_threshold();
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
        let conversion = match worker.payload_kind() {
            PayloadKind::Frames => "gpu",
            PayloadKind::Tensors => "cpu",
        };
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
        let in_flight_limit = in_flight_limit(settings.max_in_flight, sessions, batch_size);
        gst::info!(
            CAT,
            imp = self,
            "{sessions} session(s) of {} thread(s), batch size {batch_size}, up to \
             {in_flight_limit} frames in flight",
            options.threads
        );
        lock(&self.timing).in_flight_limit = in_flight_limit;
        *lock(&self.state) = Some(State::new(worker, batch_size, in_flight_limit));
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
        let queued = match self.decide(state, &settings, &inbuf) {
            Decision::Drop => return Ok(gst::FlowSuccess::Ok),
            Decision::Untouched => state.push_untouched(inbuf, arrived),
            Decision::Derain { check_only } => state.push_for_inference(inbuf, arrived, check_only),
        };
        lock(&self.stats).batches_submitted = state.jobs_submitted();
        queued.map_err(|f| self.fail(f))?;
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        // Block only when the element is full: that is what keeps memory flat.
        let block = state.is_full();
        let next = state.next_output(block, self);
        lock(&self.stats).batches_submitted = state.jobs_submitted();
        match next.map_err(|f| self.fail(f))? {
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
        if frames::pixel_format(in_info.format()).is_none() {
            return Err(gst::loggable_error!(
                CAT,
                "Unsupported format {:?}",
                in_info.format()
            ));
        }
        if let Err(reason) = frames::yuv_encoding(in_info) {
            gst::element_imp_error!(self, gst::StreamError::Format, ["{}", reason]);
            return Err(gst::loggable_error!(CAT, "{}", reason));
        }
        gst::debug!(CAT, imp = self, "negotiated {incaps}");
        if let Some(state) = lock(&self.state).as_mut() {
            // A model with a fixed input size is checked now, not on the first frame.
            if let Err(reason) = state.set_info(in_info) {
                gst::element_imp_error!(self, gst::StreamError::Format, ["{}", reason]);
                return Err(gst::loggable_error!(CAT, "{}", reason));
            }
        }
        let fps = in_info.fps();
        lock(&self.timing).frame_duration = (fps.numer() > 0)
            .then(|| gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64))
            .flatten();
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
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

    /// Pushes every frame still inside the element, in order.
    fn drain(&self) -> Result<(), gst::FlowError> {
        loop {
            let buf = {
                let mut guard = lock(&self.state);
                let Some(state) = guard.as_mut() else {
                    return Ok(());
                };
                let next = state.next_output(true, self);
                lock(&self.stats).batches_submitted = state.jobs_submitted();
                match next.map_err(|f| self.fail(f))? {
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
            let discarded = state.discard();
            if discarded > 0 {
                gst::debug!(CAT, imp = self, "flush discarded {discarded} frames");
            }
        }
        lock(&self.timing).earliest = None;
    }

    /// What happens to an incoming frame: `bypass`, auto-bypass and QoS decide, in that order
    /// (each counted in `stats`).
    fn decide(
        &self,
        state: &mut State,
        settings: &FrameSettings,
        buf: &gst::BufferRef,
    ) -> Decision {
        if settings.bypass {
            lock(&self.stats).bypassed += 1;
            return Decision::Untouched;
        }
        let (action, bypass_ended) = state.rain.next_frame(settings);
        if bypass_ended {
            lock(&self.stats).auto_bypass_active = false;
        }
        if action == FrameAction::PassThrough {
            lock(&self.stats).auto_bypassed += 1;
            return Decision::Untouched;
        }
        if self.obj().is_qos() && self.is_late(buf) {
            match settings.late_frames {
                LateFrames::Drop => {
                    lock(&self.stats).late_dropped += 1;
                    self.post_qos_drop(buf);
                    return Decision::Drop;
                }
                LateFrames::PassThrough => {
                    lock(&self.stats).late_passed += 1;
                    return Decision::Untouched;
                }
                LateFrames::Process => lock(&self.stats).late_processed += 1,
            }
        }
        Decision::Derain {
            check_only: action == FrameAction::Check,
        }
    }

    /// Posts `failure` as an error message (when it has one) and returns its flow error.
    fn fail(&self, failure: Failure) -> gst::FlowError {
        match failure {
            Failure::Flow(e) => return e,
            Failure::NoCaps => {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ["No caps before data"]);
                return gst::FlowError::NotNegotiated;
            }
            Failure::Unreadable {
                size,
                width,
                height,
                format,
            } => gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                [
                    "Buffer of {} bytes does not hold a {}x{} {:?} frame",
                    size,
                    width,
                    height,
                    format
                ]
            ),
            Failure::Conversion(e) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ["Frame conversion: {}", e])
            }
            Failure::Worker(e) => gst::element_imp_error!(self, gst::CoreError::Failed, ["{}", e]),
            Failure::Inference(msg) => gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["Inference failed: {}", msg]
            ),
            Failure::ResultMismatch => gst::element_imp_error!(
                self,
                gst::CoreError::Failed,
                ["Frame and inference result sizes differ"]
            ),
        }
        gst::FlowError::Error
    }
}

/// What happens to an incoming frame.
enum Decision {
    /// Late: dropped (a QoS message says so).
    Drop,
    /// Leaves untouched, in order.
    Untouched,
    /// Goes through the model; `check_only`: an auto-bypass check, left untouched.
    Derain { check_only: bool },
}

/// The element's side of the pipeline: per-frame settings, stats and bus messages.
impl Host for NlclDerain {
    fn frame_settings(&self) -> FrameSettings {
        lock(&self.settings).per_frame()
    }

    fn left_untouched(&self, arrived: Instant) {
        lock(&self.stats).latency.record(arrived.elapsed());
    }

    /// Counts a frame whose model output was not finite; the first one of a run is also
    /// posted as a warning (the count is in `stats`).
    fn invalid_output(&self) {
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

    /// Records the rain intensity measured on a frame: stats, auto-bypass, `nlcl-rain`.
    fn rain_measured(&self, m: Measured) {
        if m.switched {
            gst::info!(
                CAT,
                imp = self,
                "auto-bypass {} (rain intensity {:.2} levels)",
                if m.bypassing { "on: dry" } else { "off: rain" },
                m.intensity
            );
        }
        {
            let mut stats = lock(&self.stats);
            stats.rain_intensity = m.intensity;
            stats.auto_bypass_active = m.bypassing;
        }
        if let Some(s) = m.message {
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
    }

    /// An auto-bypass check leaves untouched: counted as auto-bypassed, its session run timed.
    fn checked(&self, arrived: Instant) {
        let mut stats = lock(&self.stats);
        stats.auto_bypassed += 1;
        stats.latency.record(arrived.elapsed());
    }

    fn processed(&self, inference: Option<Duration>, arrived: Instant) {
        let mut stats = lock(&self.stats);
        stats.processed += 1;
        if let Some(d) = inference {
            stats.inference.record(d);
        }
        stats.latency.record(arrived.elapsed());
    }
}
