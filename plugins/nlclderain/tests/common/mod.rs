//! Shared helpers: plugin registration, model files with known weights, pipelines.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;

use gst::prelude::*;
use nlcl::ModelSpec;
use nlcl::onnx::{ExportConfig, Weights, meta, write_model};
use nlcl::spec::BACK_PREFIX;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst init");
        gstnlcl::plugin_register_static().expect("register nlcl plugin");
    });
}

/// A small architecture that is cheap enough for per-frame tests.
pub const SMALL: ModelSpec = ModelSpec {
    width: 4,
    depth: 1,
    unshuffle: 2,
    global_residual: true,
    instance_norm: true,
    detail_radius: 0,
};

/// A full-resolution variant (no size constraint).
pub const SMALL_FULL_RES: ModelSpec = ModelSpec {
    width: 4,
    depth: 1,
    unshuffle: 1,
    global_residual: true,
    instance_norm: true,
    detail_radius: 0,
};

#[path = "../../../../tests/support/skip.rs"]
mod skip_log;
// Not every test file that includes `common` skips anything.
#[allow(unused_imports)]
pub use skip_log::skip;

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes an NLCL model with deterministic random weights; returns its path and weights.
pub fn write_random_model(
    dir: &Path,
    name: &str,
    spec: ModelSpec,
    seed: u64,
) -> (PathBuf, Weights) {
    let weights = Weights::random_generator(&spec, BACK_PREFIX, seed, 0.5);
    let bytes = write_model(
        &ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![(meta::TASK.into(), "derain".into())],
            dead_zone: 0.0,
        },
        &weights,
    )
    .expect("write model");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write model file");
    (path, weights)
}

/// A model whose `clean` output equals its input.
pub fn write_identity_model(dir: &Path, spec: ModelSpec) -> PathBuf {
    let path = dir.join(format!("identity-{}.onnx", spec.tag()));
    std::fs::write(&path, nlcl::onnx::identity_model(spec).unwrap()).unwrap();
    path
}

/// Outcome of running a pipeline to EOS or error.
#[derive(Debug)]
pub struct RunResult {
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// Runs `pipeline` until EOS or an error (with a timeout so a hang fails the test).
pub fn run_to_end(pipeline: &gst::Pipeline) -> RunResult {
    let bus = pipeline.bus().expect("bus");
    let mut warnings = Vec::new();
    // A failed state change also posts an error message, which the loop below reports.
    let _ = pipeline.set_state(gst::State::Playing);
    let mut error = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            error = Some("timeout: no EOS or error within 60 s".into());
            break;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(remaining.as_millis() as u64))
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    RunResult { error, warnings }
}

/// Parses a launch line into a pipeline.
pub fn pipeline(launch: &str) -> gst::Pipeline {
    gst::parse::launch(launch)
        .expect("parse pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

/// The bytes of every buffer that passed a pad, in order.
pub struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Recorded {
    /// What was recorded so far (and forgets it).
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Records every buffer passing `pad` of `element`. On a sink pad the probe runs before the
/// element writes into the buffer, so it sees the input.
pub fn record_buffers(element: &gst::Element, pad: &str) -> Recorded {
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = frames.clone();
    element
        .static_pad(pad)
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buf) = info.buffer() {
                f.lock()
                    .unwrap()
                    .push(buf.map_readable().unwrap().as_slice().to_vec());
            }
            gst::PadProbeReturn::Ok
        })
        .unwrap();
    Recorded(frames)
}
