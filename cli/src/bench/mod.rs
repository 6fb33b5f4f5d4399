//! `nlcl bench`: the project's committed benchmarks (DESIGN.md section 5, "Measuring").
//!
//! Speeds are only ever claimed as ratios of two things measured side by side, interleaved in
//! one run, because the machines are shared and noisy; absolute frames per second are printed
//! alongside for orientation only.
//!
//! * (a) the `nlclderain` element in a real pipeline (`videotestsrc ! queue ! nlclderain ! fakesink`)
//!   against the bare ONNX Runtime session ([`Model::run`]) on a pre-converted tensor, same
//!   model and thread count: how close the element gets to the limit the model sets.
//! * (b) a file-to-file pipeline (H.264 MP4 in, MPEG-4 part 2 MP4 out) against the Python loop
//!   a user would otherwise write (`bench/python_loop.py`: OpenCV decode, numpy normalisation,
//!   `onnxruntime.InferenceSession.run`, OpenCV encode) on the same clip, model and threads.
//! * (c) frame <-> tensor conversion against a plain memory copy of the tensor's bytes.
//! * (d) the bare session of the model against that of each `--versus` model (its INT8
//!   variant, another model of the family), interleaved.
//! * `--soak N`: resident memory of a long pipeline, sampled every `--soak-every` frames.
//!
//! Every pipeline and loop of (a), (b) and the soak runs in its own child process (this
//! executable again, with the hidden `--variant` argument, or the venv's Python), so each has
//! its own peak resident memory (`ru_maxrss`) and nothing one leaves behind slows the next.

mod child;
mod children;
mod part_a;
mod part_b;
mod part_c;
mod part_d;
mod report;
mod soak;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use nlcl::runtime::{Model, SessionOptions};

use child::run_child;
use part_a::part_a;
use part_b::part_b;
use part_c::part_c;
use part_d::part_d;
use report::{claims, machine, print_report};
use soak::soak;

/// The Python loop of part (b), written next to the clips at run time.
const PYTHON_LOOP: &str = include_str!("../../../bench/python_loop.py");
/// Marks the line on which a child process reports its measurement.
const RESULT_PREFIX: &str = "NLCL_BENCH_RESULT ";
/// Marks a child's progress lines on stderr (`@progress DONE TOTAL`).
const PROGRESS_PREFIX: &str = "@progress ";
/// Targets the committed claims are checked against (at the first size, normally 640x360).
const TARGET_A: f64 = 0.95;
const TARGET_B: f64 = 1.5;
/// Soak bound: resident memory may grow by at most this share of the baseline sample...
const SOAK_BOUND_FRACTION: f64 = 0.05;
/// ...and at most this many KiB, whichever is smaller.
const SOAK_BOUND_KB: i64 = 20 * 1024;
/// Frame rate of the synthetic sources and clips (it sets the encoders' bitrate).
const FPS: usize = 30;

/// Which benchmarks to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Element pipeline vs bare ONNX Runtime session.
    A,
    /// File pipeline vs the Python loop.
    B,
    /// Conversion vs memory copy.
    C,
    /// Bare session of --model vs bare sessions of the --versus models.
    D,
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Model: `lite` (built in, the default), `standard`, `full`, or an ONNX file.
    #[arg(long, short = 'm', conflicts_with = "random_arch")]
    pub model: Option<PathBuf>,
    /// Benchmark a model of this architecture with random weights instead (e.g. w16d4s2r).
    #[arg(long)]
    pub random_arch: Option<String>,
    /// ONNX Runtime intra-op threads, the same for every side.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Frame sizes, WIDTHxHEIGHT, comma-separated; claims are checked at the first.
    #[arg(long, value_delimiter = ',', default_value = "640x360,1280x720", value_parser = parse_size)]
    pub sizes: Vec<Size>,
    /// Timed frames per run of (a) and (b).
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    /// Interleaved rounds; medians over rounds are reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Which benchmarks to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "a,b,c")]
    pub parts: Vec<Part>,
    /// Models to compare with --model in part (d), bare sessions side by side: names of the
    /// family or ONNX files (repeatable), e.g. the model's INT8 variant.
    #[arg(long)]
    pub versus: Vec<PathBuf>,
    /// Pixel formats of (a)'s element pipelines, as in GStreamer caps.
    #[arg(long, value_delimiter = ',', default_value = "I420,RGBx")]
    pub formats: Vec<String>,
    /// The element's `sessions` values to run (a) with, each with every format; 0 = the
    /// element's automatic choice. E.g. `0,1` shows what parallel sessions add.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub sessions: Vec<u32>,
    /// Python with onnxruntime, numpy and OpenCV for (b); default .venv-bench/bin/python
    /// (scripts/setup-bench.sh). (b) is skipped, with the reason, when there is none.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Also run a pipeline of this many frames and check that resident memory stays flat.
    #[arg(long)]
    pub soak: Option<u64>,
    /// Frame size of the soak pipeline.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    pub soak_size: Size,
    /// Sample resident memory every this many frames of the soak.
    #[arg(long, default_value_t = 500)]
    pub soak_every: u64,
    /// Write the report as JSON to this file (`--json` alone: to stdout, tables to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Exit non-zero when a claim at the first size misses its target ((a) >= 0.95 for the
    /// first format, (b) >= 1.5).
    #[arg(long)]
    pub check: bool,
    /// Internal: run one measured variant in this process (a JSON job) and print its result.
    #[arg(long, hide = true)]
    pub variant: Option<String>,
}

/// A frame size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    pub width: usize,
    pub height: usize,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

fn parse_size(s: &str) -> Result<Size, String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (2..=8192).contains(&n))
    };
    match (parse(w), parse(h)) {
        // Even sizes: the YUV test clips and I420 sources need them.
        (Some(width), Some(height)) if width % 2 == 0 && height % 2 == 0 => {
            Ok(Size { width, height })
        }
        _ => Err(format!(
            "{s:?}: width and height must be even numbers from 2 to 8192"
        )),
    }
}

/// One measured variant, run in a child process.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Job {
    /// `videotestsrc ! queue ! nlclderain ! fakesink`.
    Element {
        model: PathBuf,
        threads: usize,
        /// The element's `sessions` property (0 = automatic).
        #[serde(default)]
        sessions: u32,
        size: Size,
        format: String,
        frames: usize,
    },
    /// `Model::run` in a loop on one pre-converted tensor.
    Bare {
        model: PathBuf,
        threads: usize,
        size: Size,
        frames: usize,
    },
    /// `filesrc ! matroskademux ! h264parse ! avdec_h264 ! nlclderain ! avenc_mpeg4 ! mp4mux ! filesink`.
    File {
        model: PathBuf,
        threads: usize,
        size: Size,
        clip: PathBuf,
        output: PathBuf,
    },
    /// A long `videotestsrc ! nlclderain ! fakesink`, sampling resident memory.
    Soak {
        model: PathBuf,
        threads: usize,
        size: Size,
        frames: u64,
        every: u64,
    },
}

/// What a child measured. The Python loop prints the same fields (extra ones are ignored).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(default)]
struct Measured {
    /// Frames timed.
    frames: u64,
    seconds: f64,
    fps: f64,
    /// Peak resident memory of the process (`ru_maxrss`), KiB.
    peak_rss_kb: u64,
    /// Per-frame latency (element: sink pad in to source pad out; bare: one `run`).
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    /// (frames done, resident KiB) samples of a soak.
    rss_samples: Vec<(u64, u64)>,
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Serialize, Debug, Default)]
struct Report {
    machine: Machine,
    model: ModelDesc,
    threads: usize,
    frames: usize,
    rounds: usize,
    a: Vec<RowA>,
    b: Option<PartB>,
    c: Vec<RowC>,
    d: Vec<RowD>,
    soak: Option<Soak>,
    claims: Vec<Claim>,
}

#[derive(Serialize, Debug, Default)]
struct Machine {
    cpu: String,
    logical_cpus: usize,
    avx512: bool,
    load_average: String,
}

#[derive(Serialize, Debug, Default)]
struct ModelDesc {
    /// Where it came from.
    source: String,
    architecture: Option<String>,
    macs_per_pixel: Option<usize>,
    size_multiple: usize,
}

#[derive(Serialize, Debug)]
struct RowA {
    size: Size,
    format: String,
    element_fps: f64,
    bare_fps: f64,
    /// Median over rounds of element fps / bare fps measured in the same round.
    ratio: f64,
    ratio_rounds: Vec<f64>,
    element_latency_p50_ms: f64,
    bare_latency_p50_ms: f64,
    element_peak_rss_mb: f64,
    bare_peak_rss_mb: f64,
}

#[derive(Serialize, Debug, Default)]
struct PartB {
    skipped: Option<String>,
    element_pipeline: String,
    python_loop: String,
    rows: Vec<RowB>,
}

#[derive(Serialize, Debug)]
struct RowB {
    size: Size,
    element_fps: f64,
    python_fps: f64,
    ratio: f64,
    ratio_rounds: Vec<f64>,
    element_peak_rss_mb: f64,
    python_peak_rss_mb: f64,
    element_output_kb: f64,
    python_output_kb: f64,
}

#[derive(Serialize, Debug)]
struct RowC {
    size: Size,
    format: String,
    frame_bytes: usize,
    tensor_bytes: usize,
    to_tensor_ns: f64,
    to_frame_ns: f64,
    copy_frame_bytes_ns: f64,
    copy_tensor_bytes_ns: f64,
    /// to_tensor_ns / copy_tensor_bytes_ns.
    to_tensor_vs_copy: f64,
    /// to_frame_ns / copy_tensor_bytes_ns.
    to_frame_vs_copy: f64,
}

#[derive(Serialize, Debug)]
struct RowD {
    size: Size,
    /// The model compared with --model.
    versus: String,
    versus_fps: f64,
    model_fps: f64,
    /// Median over rounds of versus fps / model fps measured in the same round.
    ratio: f64,
    ratio_rounds: Vec<f64>,
}

#[derive(Serialize, Debug)]
struct Soak {
    size: Size,
    frames: u64,
    fps: f64,
    /// (frames, resident KiB).
    samples: Vec<(u64, u64)>,
    baseline_frames: u64,
    baseline_kb: u64,
    last_kb: u64,
    growth_kb: i64,
    bound_kb: i64,
    pass: bool,
}

#[derive(Serialize, Debug)]
struct Claim {
    what: String,
    value: f64,
    target: f64,
    met: bool,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
/// Human-readable output: stdout, or stderr when the JSON report goes to stdout.
struct Out {
    to_stderr: bool,
}

impl Out {
    fn say(&self, s: impl fmt::Display) {
        if self.to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// The model every side runs, as a file: `--model`, random weights for `--random-arch`, or the
/// built-in default model's bytes.
fn model_file(args: &BenchArgs, dir: &Path) -> Result<(PathBuf, String)> {
    if let Some(p) = &args.model {
        return model_path(p, dir, "");
    }
    if let Some(tag) = &args.random_arch {
        let spec = nlcl::ModelSpec::from_tag(tag)?;
        let weights = nlcl::onnx::Weights::random_generator(&spec, nlcl::spec::BACK_PREFIX, 1, 1.0);
        let config = nlcl::onnx::ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![],
            dead_zone: 0.0,
        };
        let path = dir.join(format!("random-{tag}.onnx"));
        nlcl::onnx::write_model_file(&config, &weights, &path)?;
        return Ok((path, format!("random weights (seed 1), architecture {tag}")));
    }
    let bytes = nlcl::DEFAULT_MODEL.context(
        "this build has no built-in default model (models/default.onnx was absent when it was \
         compiled): pass --model PATH, or --random-arch w16d4s2r for random weights",
    )?;
    let path = dir.join("default.onnx");
    std::fs::write(&path, bytes)?;
    Ok((path, "built-in default model (models/default.onnx)".into()))
}

/// A model given by name (written into `dir`, its file name after `prefix`) or as a file.
fn model_path(p: &Path, dir: &Path, prefix: &str) -> Result<(PathBuf, String)> {
    if !p.exists()
        && let Some(name) = p.to_str().and_then(nlcl::family::ModelName::from_name)
    {
        let (bytes, origin) = nlcl::family::ModelSource::Named(name).bytes()?;
        let path = dir.join(format!("{prefix}{}", name.file_name()));
        std::fs::write(&path, &bytes)?;
        return Ok((path, origin));
    }
    if !p.exists() {
        bail!("model file {} not found", p.display());
    }
    Ok((p.to_path_buf(), format!("file {}", p.display())))
}

/// The venv's Python for (b): `Ok(Err(reason))` to skip (b) when there is none.
fn find_python(args: &BenchArgs) -> Result<std::result::Result<PathBuf, String>> {
    let check = |p: &Path| -> std::result::Result<(), String> {
        let out = Command::new(p)
            .args(["-c", "import cv2, numpy, onnxruntime"])
            .output()
            .map_err(|e| format!("{}: {e}", p.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} cannot import cv2, numpy and onnxruntime: {}",
                p.display(),
                err.lines().last().unwrap_or("")
            ))
        }
    };
    if let Some(p) = &args.python {
        check(p).map_err(anyhow::Error::msg)?;
        return Ok(Ok(p.clone()));
    }
    let mut candidates = vec![PathBuf::from(".venv-bench/bin/python")];
    // The repository this binary was built from.
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-bench/bin/python"));
    for c in &candidates {
        if c.exists() {
            return Ok(check(c).map(|()| c.clone()));
        }
    }
    Ok(Err(
        "no Python environment for the Python loop: run scripts/setup-bench.sh (it creates \
         .venv-bench) or pass --python PATH"
            .into(),
    ))
}
// ---------------------------------------------------------------------------------------------
// What the benchmarks share

struct Ctx<'a> {
    args: &'a BenchArgs,
    model: PathBuf,
    out: Out,
}

impl Ctx<'_> {
    fn log(&self, bar: &ProgressBar, s: impl fmt::Display) {
        bar.suspend(|| eprintln!("{s}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(job) = &args.variant {
        return run_child(job);
    }
    if args.frames < 2 || args.rounds == 0 || args.sizes.is_empty() {
        bail!("--frames must be at least 2, --rounds at least 1, and --sizes not empty");
    }
    let out = Out {
        to_stderr: args.json.as_deref() == Some(Path::new("-")),
    };
    let dir = tempfile::Builder::new().prefix("nlcl-bench-").tempdir()?;
    let (model_path, source) = model_file(args, dir.path())?;
    let info = Model::open(
        &model_path,
        &SessionOptions {
            threads: args.threads,
            ..SessionOptions::default()
        },
    )?
    .info()
    .clone();
    let arch = info.meta(nlcl::onnx::meta::ARCH).map(str::to_string);
    let mut report = Report {
        machine: machine(),
        model: ModelDesc {
            source,
            macs_per_pixel: arch
                .as_deref()
                .and_then(|t| nlcl::ModelSpec::from_tag(t).ok())
                .map(|s| s.macs_per_pixel()),
            architecture: arch,
            size_multiple: info.size_multiple,
        },
        threads: args.threads,
        frames: args.frames,
        rounds: args.rounds,
        ..Report::default()
    };
    let m = &report.machine;
    out.say(format!(
        "machine: {} ({} logical CPUs, AVX-512 {}), load average {}",
        m.cpu,
        m.logical_cpus,
        if m.avx512 { "yes" } else { "no" },
        m.load_average
    ));
    out.say(format!(
        "model: {} ({}, {} MAC/pixel); ONNX Runtime intra-op threads {}; {} frames x {} interleaved rounds",
        report.model.source,
        report.model.architecture.as_deref().unwrap_or("unknown architecture"),
        report.model.macs_per_pixel.map_or("?".into(), |n| n.to_string()),
        args.threads,
        args.frames,
        args.rounds
    ));
    let ctx = Ctx {
        args,
        model: model_path,
        out,
    };
    if args.parts.contains(&Part::A) {
        report.a = part_a(&ctx)?;
    }
    if args.parts.contains(&Part::B) {
        report.b = Some(part_b(&ctx, dir.path())?);
    }
    if args.parts.contains(&Part::C) {
        report.c = part_c(&ctx)?;
    }
    if args.parts.contains(&Part::D) {
        report.d = part_d(&ctx, dir.path())?;
    }
    if let Some(frames) = args.soak {
        report.soak = Some(soak(&ctx, frames)?);
    }
    claims(&mut report, args);
    print_report(&ctx.out, &report, args);

    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        if path == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(s) = &report.soak
        && !s.pass
    {
        bail!(
            "soak: resident memory grew by {:.1} MiB (bound {:.1} MiB)",
            s.growth_kb as f64 / 1024.0,
            s.bound_kb as f64 / 1024.0
        );
    }
    if args.check
        && let Some(c) = report.claims.iter().find(|c| !c.met)
    {
        bail!(
            "claim missed: {} = {:.3}, target {}",
            c.what,
            c.value,
            c.target
        );
    }
    Ok(())
}
