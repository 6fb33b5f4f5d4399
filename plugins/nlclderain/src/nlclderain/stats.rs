//! Telemetry behind the `stats` property.

use nlcl::latency_window::Latencies;

/// Inference times kept for the percentiles of `stats`.
const LATENCY_WINDOW: usize = 1024;

/// Telemetry behind the `stats` property; survives `stop()` so it can be read after EOS.
#[derive(Debug)]
pub(super) struct Stats {
    pub processed: u64,
    pub bypassed: u64,
    pub late_dropped: u64,
    pub late_passed: u64,
    pub late_processed: u64,
    /// Jobs handed to the inference worker (a batch counting once).
    pub batches_submitted: u64,
    /// Frames whose model output held NaN or infinity: passed through untouched.
    pub invalid_output: u64,
    /// Frames auto-bypass passed through untouched (its checks included).
    pub auto_bypassed: u64,
    /// Rain intensity of the last frame the model ran on (levels), -1 before the first.
    pub rain_intensity: f64,
    /// Whether auto-bypass is passing frames through now.
    pub auto_bypass_active: bool,
    pub inference: Latencies,
    /// Time from a frame's arrival to its departure (queueing included).
    pub latency: Latencies,
    /// Provider the running session uses (`none` before the first start).
    pub provider: &'static str,
    /// Where frames are converted to and from tensors: `cpu`, or `gpu` (CUDA frame path).
    pub conversion: &'static str,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            processed: 0,
            bypassed: 0,
            late_dropped: 0,
            late_passed: 0,
            late_processed: 0,
            batches_submitted: 0,
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

impl Stats {
    /// The value of the `stats` property.
    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder("nlclderain-stats")
            .field("frames-processed", self.processed)
            .field("frames-bypassed", self.bypassed)
            .field("frames-late-dropped", self.late_dropped)
            .field("frames-late-passed", self.late_passed)
            .field("frames-late-processed", self.late_processed)
            .field("batches-submitted", self.batches_submitted)
            .field("frames-invalid-output", self.invalid_output)
            .field("frames-auto-bypassed", self.auto_bypassed)
            .field("rain-intensity", self.rain_intensity)
            .field("auto-bypass-active", self.auto_bypass_active)
            .field("inference-mean-ms", self.inference.mean_ms())
            .field("inference-p50-ms", self.inference.percentile_ms(50.0))
            .field("inference-p99-ms", self.inference.percentile_ms(99.0))
            .field("latency-mean-ms", self.latency.mean_ms())
            .field("latency-p99-ms", self.latency.percentile_ms(99.0))
            .field("provider", self.provider)
            .field("conversion", self.conversion)
            .build()
    }
}
