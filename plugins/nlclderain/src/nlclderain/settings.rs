//! The element's properties as values, and what they give at start (sessions, frames in
//! flight).

use nlcl::family::ModelSource;
use nlcl::output_view::OutputView;

use super::{ExecutionProvider, LateFrames, NlclModel, Output};

pub(super) const DEFAULT_MODEL_FILE: &str = "";
pub(super) const DEFAULT_DEVICE_ID: i32 = 0;
pub(super) const DEFAULT_THREADS: u32 = 0;
pub(super) const DEFAULT_BYPASS: bool = false;
pub(super) const DEFAULT_FALLBACK: bool = true;
pub(super) const DEFAULT_MAX_IN_FLIGHT: u32 = 2;
/// 0 = automatic (see [`session_count`]).
pub(super) const DEFAULT_SESSIONS: u32 = 0;
pub(super) const DEFAULT_BATCH_SIZE: u32 = 1;
pub(super) const DEFAULT_FP16: bool = false;
pub(super) const DEFAULT_AUTO_BYPASS: bool = false;
/// Levels of mean |input - output| below which a frame counts as dry, for models that do not
/// record their own (`nlcl.rain_threshold`, which the models of the family do; README, "Rain
/// meter").
pub(super) const DEFAULT_RAIN_THRESHOLD: f64 = 0.35;
pub(super) const DEFAULT_BYPASS_CHECK_INTERVAL: u32 = 10;
pub(super) const DEFAULT_MESSAGE_INTERVAL: u32 = 0;
/// Off: a moving camera gains nothing from it (README, "Temporal smoothing").
pub(super) const DEFAULT_TEMPORAL_SMOOTHING: f64 = 0.0;
pub(super) const DEFAULT_MOTION_THRESHOLD: f64 = nlcl::temporal::DEFAULT_MOTION_LEVELS as f64;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub model_file: String,
    pub model: NlclModel,
    pub provider: ExecutionProvider,
    pub device_id: i32,
    pub threads: u32,
    pub bypass: bool,
    pub fallback_to_cpu: bool,
    pub max_in_flight: u32,
    pub sessions: u32,
    pub batch_size: u32,
    pub model_cache_dir: String,
    pub fp16: bool,
    pub late_frames: LateFrames,
    pub output: Output,
    pub auto_bypass: bool,
    /// `rain-threshold` when set; else the running model's own, else the default.
    pub rain_threshold: Option<f64>,
    /// The threshold the model last started recorded (`nlcl.rain_threshold`).
    pub model_rain_threshold: Option<f64>,
    pub bypass_check_interval: u32,
    pub message_interval: u32,
    pub temporal_smoothing: f64,
    pub motion_threshold: f64,
}

/// The settings read for every frame (a copy, so the lock is held briefly and nothing allocates).
#[derive(Clone, Copy)]
pub(super) struct FrameSettings {
    pub bypass: bool,
    pub late_frames: LateFrames,
    pub output: OutputView,
    pub auto_bypass: bool,
    pub rain_threshold: f64,
    pub bypass_check_interval: u32,
    pub message_interval: u32,
    /// `temporal-smoothing` and `motion-threshold` (see [`nlcl::temporal::ChangeSmoother`]).
    pub temporal: (f32, f32),
}

impl Settings {
    pub fn per_frame(&self) -> FrameSettings {
        FrameSettings {
            bypass: self.bypass,
            late_frames: self.late_frames,
            output: self.output.into(),
            auto_bypass: self.auto_bypass,
            rain_threshold: self.rain_threshold(),
            bypass_check_interval: self.bypass_check_interval,
            message_interval: self.message_interval,
            temporal: (self.temporal_smoothing as f32, self.motion_threshold as f32),
        }
    }

    /// The rain threshold in effect: the property when set, else the model's own, else the
    /// default.
    pub fn rain_threshold(&self) -> f64 {
        self.rain_threshold
            .or(self.model_rain_threshold)
            .unwrap_or(DEFAULT_RAIN_THRESHOLD)
    }

    /// The model to run: `model-file` when set, else the named model.
    pub fn model_source(&self) -> ModelSource {
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
            rain_threshold: None,
            model_rain_threshold: None,
            bypass_check_interval: DEFAULT_BYPASS_CHECK_INTERVAL,
            message_interval: DEFAULT_MESSAGE_INTERVAL,
            temporal_smoothing: DEFAULT_TEMPORAL_SMOOTHING,
            motion_threshold: DEFAULT_MOTION_THRESHOLD,
        }
    }
}

/// Threads to share among the sessions: the `threads` property (bounded, see
/// [`nlcl::runtime::bound_threads`]), or the machine's for 0.
pub(super) fn total_threads(threads: u32) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => nlcl::runtime::bound_threads(t as usize).0,
    }
}

/// Sessions to open: the `sessions` property, or for 0 on a CPU two when two threads and two
/// batches in flight allow it (two single-threaded sessions on alternate frames outrun one
/// two-threaded session: `nlcl bench --sessions 0,1` measured 1.11 against 0.97 of the bare
/// session for the default model at 640x360), and one on a GPU, which batches instead.
pub(super) fn session_count(
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
pub(super) fn in_flight_limit(max_in_flight: u32, sessions: usize, batch_size: usize) -> usize {
    (max_in_flight.max(1) as usize).max(sessions * batch_size)
}
