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
//! * `--soak N`: resident memory of a long pipeline, sampled every `--soak-every` frames.
//!
//! Every pipeline and loop of (a), (b) and the soak runs in its own child process (this
//! executable again, with the hidden `--variant` argument, or the venv's Python), so each has
//! its own peak resident memory (`ru_maxrss`) and nothing one leaves behind slows the next.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use nlcl::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat};
use nlcl::latency_window::Latencies;
use nlcl::runtime::{Model, SessionOptions};

/// The Python loop of part (b), written next to the clips at run time.
const PYTHON_LOOP: &str = include_str!("../../bench/python_loop.py");
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
// Child side

fn run_child(job_json: &str) -> Result<()> {
    let job: Job = serde_json::from_str(job_json).context("bad --variant job")?;
    let measured = match &job {
        Job::Element {
            model,
            threads,
            sessions,
            size,
            format,
            frames,
        } => element_job(model, *threads, *sessions, *size, format, *frames)?,
        Job::Bare {
            model,
            threads,
            size,
            frames,
        } => bare_job(model, *threads, *size, *frames)?,
        Job::File {
            model,
            threads,
            size,
            clip,
            output,
        } => file_job(model, *threads, *size, clip, output)?,
        Job::Soak {
            model,
            threads,
            size,
            frames,
            every,
        } => soak_job(model, *threads, *size, *frames, *every)?,
    };
    let measured = Measured {
        peak_rss_kb: peak_rss_kb(),
        ..measured
    };
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// Peak resident memory of this process in KiB (`getrusage(RUSAGE_SELF).ru_maxrss`).
fn peak_rss_kb() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own; no other memory is touched.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0 {
            u64::try_from(usage.ru_maxrss).unwrap_or(0)
        } else {
            0
        }
    }
}

/// Current resident memory of this process in KiB (`/proc/self/statm`).
fn current_rss_kb() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page / 1024)
}

fn init_gst() -> Result<()> {
    gst::init().context("initialising GStreamer")?;
    gstnlcl::plugin_register_static().context("registering the nlcl plugin")?;
    Ok(())
}

fn launch(desc: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(desc)
        .with_context(|| format!("building pipeline {desc}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("{desc} is not a pipeline"))
}

fn element(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element> {
    pipeline
        .by_name(name)
        .with_context(|| format!("pipeline has no element {name}"))
}

fn pad(element: &gst::Element, name: &str) -> Result<gst::Pad> {
    element
        .static_pad(name)
        .with_context(|| format!("{} has no pad {name}", element.name()))
}

/// Sets the element's model and threads.
fn configure_derain(
    pipeline: &gst::Pipeline,
    model: &Path,
    threads: usize,
) -> Result<gst::Element> {
    let derain = element(pipeline, "derain")?;
    derain.set_property(
        "model-file",
        model.to_str().context("model path is not UTF-8")?,
    );
    derain.set_property("threads", u32::try_from(threads).context("threads")?);
    Ok(derain)
}

/// Plays the pipeline to EOS; returns when the EOS message arrived.
fn play_to_eos(pipeline: &gst::Pipeline) -> Result<Instant> {
    let bus = pipeline.bus().context("pipeline without a bus")?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .context("pipeline would not start")?;
        loop {
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::NONE,
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                bail!("bus closed before EOS");
            };
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(Instant::now()),
                gst::MessageView::Error(e) => bail!(
                    "{}: {} ({})",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Arrival times of buffers at a pad: the first, the last and how many.
#[derive(Default)]
struct Clock {
    first: Option<Instant>,
    last: Option<Instant>,
    count: u64,
}

fn clock_on(pad: &gst::Pad) -> Arc<Mutex<Clock>> {
    let clock = Arc::new(Mutex::new(Clock::default()));
    let c = clock.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let now = Instant::now();
        let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
        c.first.get_or_insert(now);
        c.last = Some(now);
        c.count += 1;
        gst::PadProbeReturn::Ok
    });
    clock
}

/// Per-frame latency through the element: buffer in at its sink pad to out at its source,
/// matched by timestamp, so it includes any frame the element holds while the next one is
/// converted (and a frame it drops leaves no stale entry behind).
fn latency_on(derain: &gst::Element) -> Result<Arc<Mutex<Latencies>>> {
    let lat = Arc::new(Mutex::new(Latencies::new(100_000)));
    let pending = Arc::new(Mutex::new(
        VecDeque::<(Option<gst::ClockTime>, Instant)>::new(),
    ));
    let p = pending.clone();
    pad(derain, "sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let pts = info.buffer().and_then(|b| b.pts());
        let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= 64 {
            p.pop_front();
        }
        p.push_back((pts, Instant::now()));
        gst::PadProbeReturn::Ok
    });
    let l = lat.clone();
    pad(derain, "src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let pts = info.buffer().and_then(|b| b.pts());
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = p.iter().position(|(t, _)| *t == pts)
            && let Some((_, started)) = p.remove(i)
        {
            l.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(started.elapsed());
        }
        gst::PadProbeReturn::Ok
    });
    Ok(lat)
}

fn with_latency(m: Measured, lat: &Mutex<Latencies>) -> Measured {
    let lat = lat.lock().unwrap_or_else(|e| e.into_inner());
    Measured {
        latency_p50_ms: Some(lat.percentile_ms(50.0)),
        latency_p99_ms: Some(lat.percentile_ms(99.0)),
        ..m
    }
}

fn source_caps(format: &str, size: Size) -> String {
    format!(
        "video/x-raw,format={format},width={},height={},framerate={FPS}/1",
        size.width, size.height
    )
}

/// (a), element side: `frames + 1` buffers; the clock runs from the first buffer reaching the
/// sink (its inference is the warm-up) to the last, so `frames` intervals are timed.
fn element_job(
    model: &Path,
    threads: usize,
    sessions: u32,
    size: Size,
    format: &str,
    frames: usize,
) -> Result<Measured> {
    init_gst()?;
    let pipeline = launch(&format!(
        "videotestsrc num-buffers={} pattern=smpte ! {} ! queue max-size-buffers=2 ! nlclderain name=derain ! \
         fakesink name=sink sync=false",
        frames + 1,
        source_caps(format, size)
    ))?;
    let derain = configure_derain(&pipeline, model, threads)?;
    derain.set_property("sessions", sessions);
    let lat = latency_on(&derain)?;
    let clock = clock_on(&pad(&element(&pipeline, "sink")?, "sink")?);
    play_to_eos(&pipeline)?;
    let c = clock.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(first), Some(last)) = (c.first, c.last) else {
        bail!("no frame reached the sink");
    };
    let timed = c.count.saturating_sub(1);
    let seconds = (last - first).as_secs_f64();
    Ok(with_latency(
        Measured {
            frames: timed,
            seconds,
            fps: timed as f64 / seconds.max(1e-9),
            ..Measured::default()
        },
        &lat,
    ))
}

/// A deterministic, textured test frame in `format` (tightly packed planes).
struct TestFrame {
    format: PixelFormat,
    size: Size,
    planes: Vec<Vec<u8>>,
    strides: [usize; 3],
}

impl TestFrame {
    fn new(format: PixelFormat, size: Size) -> Result<TestFrame> {
        let (w, h) = (size.width, size.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let pattern = |n: usize, k: usize| -> Vec<u8> {
            (0..n).map(|i| ((i * k + i / 7) % 251) as u8).collect()
        };
        let (planes, strides) = match format {
            PixelFormat::I420 => (
                vec![pattern(w * h, 3), pattern(cw * ch, 5), pattern(cw * ch, 7)],
                [w, cw, cw],
            ),
            PixelFormat::Nv12 => (
                vec![pattern(w * h, 3), pattern(2 * cw * ch, 5)],
                [w, 2 * cw, 0],
            ),
            f => {
                let bpp = f.bytes_per_pixel().context("packed format")?;
                (vec![pattern(w * h * bpp, 3)], [w * bpp, 0, 0])
            }
        };
        Ok(TestFrame {
            format,
            size,
            planes,
            strides,
        })
    }

    fn bytes(&self) -> usize {
        self.planes.iter().map(Vec::len).sum()
    }

    fn view(&self) -> FrameRef<'_> {
        let p = |i: usize| self.planes.get(i).map_or(&[][..], |v| &v[..]);
        FrameRef {
            format: self.format,
            width: self.size.width,
            height: self.size.height,
            planes: [p(0), p(1), p(2)],
            strides: self.strides,
        }
    }

    fn view_mut(&mut self) -> FrameMut<'_> {
        let (format, width, height, strides) =
            (self.format, self.size.width, self.size.height, self.strides);
        let mut it = self.planes.iter_mut();
        let mut next = || it.next().map_or(&mut [][..], |v| &mut v[..]);
        let planes = [next(), next(), next()];
        FrameMut {
            format,
            width,
            height,
            planes,
            strides,
        }
    }
}

/// (a), bare side: one warm-up run, then `frames` timed runs of the session on one tensor
/// converted beforehand.
fn bare_job(model: &Path, threads: usize, size: Size, frames: usize) -> Result<Measured> {
    let options = SessionOptions {
        threads,
        ..SessionOptions::default()
    };
    let mut model = Model::open(model, &options)?;
    let m = model.info().size_multiple;
    let frame = TestFrame::new(PixelFormat::Rgbx, size)?;
    let mut input = vec![0.0f32; convert::tensor_len(size.height, size.width, m)];
    let (ph, pw) = convert::frame_to_tensor(&frame.view(), ColorMatrix::Bt601, m, &mut input)?;
    let mut output = vec![0.0f32; input.len()];
    model.run(&input, 1, ph, pw, &mut output, None)?;
    let mut lat = Latencies::new(frames.max(1));
    let started = Instant::now();
    for _ in 0..frames {
        let t = Instant::now();
        model.run(&input, 1, ph, pw, &mut output, None)?;
        lat.record(t.elapsed());
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measured {
        frames: frames as u64,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        latency_p50_ms: Some(lat.percentile_ms(50.0)),
        latency_p99_ms: Some(lat.percentile_ms(99.0)),
        ..Measured::default()
    })
}

/// The MPEG-4 part 2 bitrate (and tolerance) OpenCV's FFmpeg writer sets for `mp4v`
/// (`1.5 * fps * width * height`), so both sides of (b) encode alike.
fn mpeg4_bitrate(size: Size) -> usize {
    (3 * FPS * size.width * size.height / 2).min(i32::MAX as usize / 2)
}

/// The pipeline of (b), as printed in the report.
fn file_pipeline(size: Size) -> String {
    format!(
        "filesrc name=in ! matroskademux ! h264parse ! avdec_h264 ! queue max-size-buffers=3 ! \
         nlclderain name=derain ! queue max-size-buffers=3 ! avenc_mpeg4 bitrate={0} bitrate-tolerance={0} ! mp4mux ! \
         filesink name=out",
        mpeg4_bitrate(size)
    )
}

/// (b), element side: clock from the first frame entering `nlclderain` (decoded) to EOS (file
/// complete), the span the Python loop times too.
fn file_job(
    model: &Path,
    threads: usize,
    size: Size,
    clip: &Path,
    output: &Path,
) -> Result<Measured> {
    init_gst()?;
    let pipeline = launch(&file_pipeline(size))?;
    element(&pipeline, "in")?.set_property("location", clip.to_str().context("clip path")?);
    element(&pipeline, "out")?.set_property("location", output.to_str().context("output path")?);
    let derain = configure_derain(&pipeline, model, threads)?;
    let lat = latency_on(&derain)?;
    let clock = clock_on(&pad(&derain, "sink")?);
    let eos = play_to_eos(&pipeline)?;
    let c = clock.lock().unwrap_or_else(|e| e.into_inner());
    let first = c.first.context("no frame reached nlclderain")?;
    let seconds = (eos - first).as_secs_f64();
    Ok(with_latency(
        Measured {
            frames: c.count,
            seconds,
            fps: c.count as f64 / seconds.max(1e-9),
            ..Measured::default()
        },
        &lat,
    ))
}

/// The soak: resident memory sampled every `every` frames at the sink; progress on stderr.
fn soak_job(model: &Path, threads: usize, size: Size, frames: u64, every: u64) -> Result<Measured> {
    init_gst()?;
    let pipeline = launch(&format!(
        "videotestsrc num-buffers={frames} pattern=smpte ! {} ! nlclderain name=derain ! fakesink name=sink sync=false",
        source_caps("I420", size)
    ))?;
    configure_derain(&pipeline, model, threads)?;
    let samples = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let s = samples.clone();
    let every = every.max(1);
    let count = std::sync::atomic::AtomicU64::new(0);
    pad(&element(&pipeline, "sink")?, "sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let count = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if count.is_multiple_of(every) || count == frames {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((count, current_rss_kb()));
            eprintln!("{PROGRESS_PREFIX}{count} {frames}");
        }
        gst::PadProbeReturn::Ok
    });
    let started = Instant::now();
    play_to_eos(&pipeline)?;
    let seconds = started.elapsed().as_secs_f64();
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let done = samples.last().map_or(0, |s| s.0);
    Ok(Measured {
        frames: done,
        seconds,
        fps: done as f64 / seconds.max(1e-9),
        rss_samples: samples,
        ..Measured::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Parent side: running children

/// Runs a child to completion, feeding its `@progress` lines to `bar`; returns its stdout.
fn run_process(mut cmd: Command, bar: Option<&ProgressBar>) -> Result<String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let stderr = child.stderr.take().context("child stderr")?;
    let bar = bar.cloned();
    let reader = std::thread::spawn(move || {
        let mut other = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match line.strip_prefix(PROGRESS_PREFIX) {
                Some(p) => {
                    if let (Some(bar), Some(done)) = (
                        &bar,
                        p.split_whitespace().next().and_then(|d| d.parse().ok()),
                    ) {
                        bar.set_position(done);
                    }
                }
                None => other.push(line),
            }
        }
        other
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .context("child stdout")?
        .read_to_string(&mut stdout)?;
    let status = child.wait()?;
    let stderr_lines = reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr_lines
            .iter()
            .rev()
            .take(15)
            .rev()
            .map(String::as_str)
            .collect();
        bail!("{what} failed ({status}):\n{}", tail.join("\n"));
    }
    Ok(stdout)
}

fn run_job(job: &Job, bar: Option<&ProgressBar>) -> Result<Measured> {
    let mut cmd = Command::new(std::env::current_exe().context("locating this executable")?);
    cmd.arg("bench")
        .arg("--variant")
        .arg(serde_json::to_string(job)?);
    let stdout = run_process(cmd, bar)?;
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .with_context(|| format!("{job:?} printed no result:\n{stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

fn run_python(
    python: &Path,
    script: &Path,
    model: &Path,
    threads: usize,
    clip: &Path,
    output: &Path,
) -> Result<Measured> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg("--model")
        .arg(model)
        .arg("--input")
        .arg(clip)
        .arg("--output")
        .arg(output)
        .arg("--threads")
        .arg(threads.to_string());
    let stdout = run_process(cmd, None)?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("the Python loop printed no JSON line:\n{stdout}"))?;
    Ok(serde_json::from_str(line)?)
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

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Machine {
        cpu: field("model name"),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        avx512: field("flags").split_whitespace().any(|f| f == "avx512f"),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
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
        if !p.exists()
            && let Some(name) = p.to_str().and_then(nlcl::family::ModelName::from_name)
        {
            let (bytes, origin) = nlcl::family::ModelSource::Named(name).bytes()?;
            let path = dir.join(name.file_name());
            std::fs::write(&path, &bytes)?;
            return Ok((path, origin));
        }
        if !p.exists() {
            bail!("model file {} not found", p.display());
        }
        return Ok((p.clone(), format!("file {}", p.display())));
    }
    if let Some(tag) = &args.random_arch {
        let spec = nlcl::ModelSpec::from_tag(tag)?;
        let weights = nlcl::onnx::Weights::random_generator(&spec, nlcl::spec::BACK_PREFIX, 1, 1.0);
        let config = nlcl::onnx::ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![],
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
// The benchmarks

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

fn part_a(ctx: &Ctx) -> Result<Vec<RowA>> {
    let args = ctx.args;
    for f in &args.formats {
        if PixelFormat::from_name(f).is_none() {
            bail!(
                "--formats: unknown format {f:?} (expected GStreamer names such as I420, NV12, RGBx)"
            );
        }
    }
    // Element variants: every format with every sessions value, labelled for the table.
    let element_variants: Vec<(String, u32, String)> = args
        .formats
        .iter()
        .flat_map(|f| {
            args.sessions.iter().map(move |&s| {
                let label = if s == 0 {
                    f.clone()
                } else {
                    format!("{f} s={s}")
                };
                (f.clone(), s, label)
            })
        })
        .collect();
    let variants = 1 + element_variants.len();
    let bar = bar((args.sizes.len() * args.rounds * variants) as u64, "(a)");
    let mut rows = Vec::new();
    for &size in &args.sizes {
        // Per variant (0 = bare, 1.. = element per format), one result per round.
        let mut results: Vec<Vec<Measured>> = vec![Vec::new(); variants];
        for round in 0..args.rounds {
            for k in 0..variants {
                // Rotate the order each round so drift hits every variant alike.
                let v = (k + round) % variants;
                let job = if v == 0 {
                    Job::Bare {
                        model: ctx.model.clone(),
                        threads: args.threads,
                        size,
                        frames: args.frames,
                    }
                } else {
                    Job::Element {
                        model: ctx.model.clone(),
                        threads: args.threads,
                        sessions: element_variants[v - 1].1,
                        size,
                        format: element_variants[v - 1].0.clone(),
                        frames: args.frames,
                    }
                };
                let name = if v == 0 {
                    "bare session".to_string()
                } else {
                    format!("element {}", element_variants[v - 1].2)
                };
                bar.set_message(format!("{size} round {} {name}", round + 1));
                let m = run_job(&job, None)?;
                ctx.log(
                    &bar,
                    format!(
                        "(a) {size} round {}: {name:<14} {:7.2} fps  p50 {:6.2} ms  peak {:6.1} MiB",
                        round + 1,
                        m.fps,
                        m.latency_p50_ms.unwrap_or(f64::NAN),
                        mb(m.peak_rss_kb)
                    ),
                );
                results[v].push(m);
                bar.inc(1);
            }
        }
        let bare = &results[0];
        for (i, (_, _, format)) in element_variants.iter().enumerate() {
            let el = &results[i + 1];
            let ratio_rounds: Vec<f64> = el.iter().zip(bare).map(|(e, b)| e.fps / b.fps).collect();
            let fps = |v: &[Measured]| median(&v.iter().map(|m| m.fps).collect::<Vec<_>>());
            let p50 = |v: &[Measured]| {
                median(
                    &v.iter()
                        .filter_map(|m| m.latency_p50_ms)
                        .collect::<Vec<_>>(),
                )
            };
            let peak = |v: &[Measured]| mb(v.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0));
            rows.push(RowA {
                size,
                format: format.clone(),
                element_fps: fps(el),
                bare_fps: fps(bare),
                ratio: median(&ratio_rounds),
                ratio_rounds,
                element_latency_p50_ms: p50(el),
                bare_latency_p50_ms: p50(bare),
                element_peak_rss_mb: peak(el),
                bare_peak_rss_mb: peak(bare),
            });
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Encodes the H.264 test clip of (b) (not timed). Matroska, not MP4: GStreamer 1.22's
/// `avenc_mpeg4` emits untimestamped packets (and `mp4mux` an empty file) for frames decoded
/// from an `x264enc ! mp4mux` file, whose edit list starts the segment after zero.
fn make_clip(size: Size, frames: usize, path: &Path) -> Result<()> {
    let pipeline = launch(&format!(
        "videotestsrc num-buffers={frames} pattern=smpte horizontal-speed=4 ! {} ! \
         x264enc speed-preset=veryfast key-int-max=60 ! h264parse ! matroskamux ! filesink name=out",
        source_caps("I420", size)
    ))?;
    element(&pipeline, "out")?.set_property("location", path.to_str().context("clip path")?);
    play_to_eos(&pipeline).context("encoding the test clip (needs x264enc, matroskamux)")?;
    Ok(())
}

fn part_b(ctx: &Ctx, dir: &Path) -> Result<PartB> {
    let args = ctx.args;
    let mut part = PartB {
        element_pipeline: file_pipeline(args.sizes[0])
            .replace("name=in", "location=CLIP")
            .replace("name=out", "location=OUT.mp4")
            .replace(
                " name=derain",
                &format!(" model-file=MODEL threads={}", args.threads),
            ),
        python_loop: format!(
            "bench/python_loop.py: cv2.VideoCapture (FFmpeg H.264 decode to BGR), cvtColor + numpy \
             to float32 NCHW RGB in [-1,1], InferenceSession(intra_op_num_threads={}).run, clip + \
             round to uint8, cvtColor, cv2.VideoWriter mp4v (FFmpeg MPEG-4 part 2, bitrate \
             1.5*fps*w*h)",
            args.threads
        ),
        ..PartB::default()
    };
    let python = match find_python(args)? {
        Ok(p) => p,
        Err(reason) => {
            ctx.out.say(format!("(b) skipped: {reason}"));
            part.skipped = Some(reason);
            return Ok(part);
        }
    };
    gst::init()?;
    let script = dir.join("python_loop.py");
    std::fs::write(&script, PYTHON_LOOP)?;
    let bar = bar((args.sizes.len() * args.rounds * 2) as u64, "(b)");
    for &size in &args.sizes {
        bar.set_message(format!("{size} encoding the test clip"));
        let clip = dir.join(format!("clip-{size}.mkv"));
        make_clip(size, args.frames, &clip)?;
        let (mut el, mut py) = (Vec::new(), Vec::new());
        let el_out = dir.join(format!("element-{size}.mp4"));
        let py_out = dir.join(format!("python-{size}.mp4"));
        for round in 0..args.rounds {
            for k in 0..2 {
                let element_side = (k + round) % 2 == 0;
                let (name, m) = if element_side {
                    bar.set_message(format!("{size} round {} element", round + 1));
                    let job = Job::File {
                        model: ctx.model.clone(),
                        threads: args.threads,
                        size,
                        clip: clip.clone(),
                        output: el_out.clone(),
                    };
                    ("element", run_job(&job, None)?)
                } else {
                    bar.set_message(format!("{size} round {} python", round + 1));
                    let m = run_python(&python, &script, &ctx.model, args.threads, &clip, &py_out)?;
                    ("python loop", m)
                };
                ctx.log(
                    &bar,
                    format!(
                        "(b) {size} round {}: {name:<12} {:7.2} fps  peak {:6.1} MiB  ({} frames)",
                        round + 1,
                        m.fps,
                        mb(m.peak_rss_kb),
                        m.frames
                    ),
                );
                if m.frames != args.frames as u64 {
                    bail!(
                        "(b) {name} processed {} frames of {}",
                        m.frames,
                        args.frames
                    );
                }
                if element_side {
                    el.push(m)
                } else {
                    py.push(m)
                }
                bar.inc(1);
            }
        }
        let ratio_rounds: Vec<f64> = el.iter().zip(&py).map(|(e, p)| e.fps / p.fps).collect();
        let fps = |v: &[Measured]| median(&v.iter().map(|m| m.fps).collect::<Vec<_>>());
        let peak = |v: &[Measured]| mb(v.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0));
        let kb = |p: &Path| std::fs::metadata(p).map_or(f64::NAN, |m| m.len() as f64 / 1024.0);
        part.rows.push(RowB {
            size,
            element_fps: fps(&el),
            python_fps: fps(&py),
            ratio: median(&ratio_rounds),
            ratio_rounds,
            element_peak_rss_mb: peak(&el),
            python_peak_rss_mb: peak(&py),
            element_output_kb: kb(&el_out),
            python_output_kb: kb(&py_out),
        });
    }
    bar.finish_and_clear();
    Ok(part)
}

/// Batches per measurement of (c); the fastest batch is kept (noise only ever adds time).
const C_BATCHES: usize = 30;

/// How many calls of `f` make a batch of about 2 ms (at least one).
fn batch_len(mut f: impl FnMut() -> Result<()>) -> Result<usize> {
    f()?;
    let t = Instant::now();
    f()?;
    let one = t.elapsed().max(Duration::from_nanos(50));
    Ok((Duration::from_millis(2).as_nanos() / one.as_nanos()).clamp(1, 1_000_000) as usize)
}

/// Nanoseconds per call of one batch of `n` calls.
fn batch_ns(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t.elapsed().as_nanos() as f64 / n as f64)
}

fn part_c(ctx: &Ctx) -> Result<Vec<RowC>> {
    let formats = [PixelFormat::Rgbx, PixelFormat::I420, PixelFormat::Nv12];
    let bar = bar((ctx.args.sizes.len() * formats.len()) as u64, "(c)");
    let mut rows = Vec::new();
    for &size in &ctx.args.sizes {
        for format in formats {
            bar.set_message(format!("{size} {}", format.name()));
            let input = TestFrame::new(format, size)?;
            let mut output = TestFrame::new(format, size)?;
            let (h, w) = (size.height, size.width);
            let mut tensor = vec![0.0f32; 3 * h * w];
            convert::frame_to_tensor(&input.view(), ColorMatrix::Bt601, 1, &mut tensor)?;
            let frame_bytes = input.bytes();
            let tensor_bytes = tensor.len() * 4;
            let (src_f, mut dst_f) = (vec![7u8; frame_bytes], vec![0u8; frame_bytes]);
            let (src_t, mut dst_t) = (vec![7u8; tensor_bytes], vec![0u8; tensor_bytes]);
            let mut scratch = vec![0.0f32; tensor.len()];
            let mut to_tensor = || -> Result<()> {
                convert::frame_to_tensor(&input.view(), ColorMatrix::Bt601, 1, &mut scratch)?;
                std::hint::black_box(&scratch);
                Ok(())
            };
            let mut to_frame = || -> Result<()> {
                convert::tensor_to_frame(
                    &tensor,
                    h,
                    w,
                    ColorMatrix::Bt601,
                    None,
                    &mut output.view_mut(),
                )?;
                std::hint::black_box(&output.planes);
                Ok(())
            };
            let mut copy_frame = || -> Result<()> {
                dst_f.copy_from_slice(std::hint::black_box(&src_f));
                std::hint::black_box(&dst_f);
                Ok(())
            };
            let mut copy_tensor = || -> Result<()> {
                dst_t.copy_from_slice(std::hint::black_box(&src_t));
                std::hint::black_box(&dst_t);
                Ok(())
            };
            let n = [
                batch_len(&mut to_tensor)?,
                batch_len(&mut to_frame)?,
                batch_len(&mut copy_frame)?,
                batch_len(&mut copy_tensor)?,
            ];
            // Interleave the four measurements batch by batch; keep each one's fastest batch.
            let mut best = [f64::INFINITY; 4];
            for _ in 0..C_BATCHES {
                best[0] = best[0].min(batch_ns(n[0], &mut to_tensor)?);
                best[1] = best[1].min(batch_ns(n[1], &mut to_frame)?);
                best[2] = best[2].min(batch_ns(n[2], &mut copy_frame)?);
                best[3] = best[3].min(batch_ns(n[3], &mut copy_tensor)?);
            }
            let [to_t, to_f, cf, ct] = best;
            rows.push(RowC {
                size,
                format: format.name().into(),
                frame_bytes,
                tensor_bytes,
                to_tensor_ns: to_t,
                to_frame_ns: to_f,
                copy_frame_bytes_ns: cf,
                copy_tensor_bytes_ns: ct,
                to_tensor_vs_copy: to_t / ct,
                to_frame_vs_copy: to_f / ct,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

fn soak(ctx: &Ctx, frames: u64) -> Result<Soak> {
    let args = ctx.args;
    let bar = bar(frames, "soak");
    bar.set_message(format!("{} I420", args.soak_size));
    let job = Job::Soak {
        model: ctx.model.clone(),
        threads: args.threads,
        size: args.soak_size,
        frames,
        every: args.soak_every,
    };
    let m = run_job(&job, Some(&bar))?;
    bar.finish_and_clear();
    let samples = m.rss_samples;
    let &(last_frames, last_kb) = samples.last().context("the soak took no sample")?;
    // The baseline is the sample at 1,000 frames (start-up allocations done), or at a fifth of
    // a shorter run.
    let from = 1000.min(last_frames / 5);
    let &(baseline_frames, baseline_kb) =
        samples.iter().find(|s| s.0 >= from).unwrap_or(&samples[0]);
    let growth_kb = last_kb as i64 - baseline_kb as i64;
    let bound_kb = ((baseline_kb as f64 * SOAK_BOUND_FRACTION) as i64).min(SOAK_BOUND_KB);
    Ok(Soak {
        size: args.soak_size,
        frames: m.frames,
        fps: m.fps,
        samples,
        baseline_frames,
        baseline_kb,
        last_kb,
        growth_kb,
        bound_kb,
        pass: growth_kb <= bound_kb,
    })
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

fn claims(report: &mut Report, args: &BenchArgs) {
    let size = args.sizes[0];
    if let Some(r) = report.a.iter().find(|r| r.size == size) {
        report.claims.push(Claim {
            what: format!("(a) element / bare session, {size} {}", r.format),
            value: r.ratio,
            target: TARGET_A,
            met: r.ratio >= TARGET_A,
        });
    }
    if let Some(r) = report
        .b
        .iter()
        .flat_map(|b| &b.rows)
        .find(|r| r.size == size)
    {
        report.claims.push(Claim {
            what: format!("(b) element pipeline / Python loop, {size}"),
            value: r.ratio,
            target: TARGET_B,
            met: r.ratio >= TARGET_B,
        });
    }
}

fn print_report(out: &Out, r: &Report, args: &BenchArgs) {
    if !r.a.is_empty() {
        out.say(format!(
            "\n(a) element in a pipeline (videotestsrc ! queue ! nlclderain threads={} ! fakesink) vs bare \
             session (Model::run on a pre-converted tensor), median of {} rounds",
            r.threads, r.rounds
        ));
        out.say(format!(
            "{:<10} {:<10} {:>11} {:>11} {:>7}  {:>10} {:>10}  {:>10} {:>10}",
            "size",
            "format",
            "element fps",
            "bare fps",
            "ratio",
            "el p50 ms",
            "bare p50",
            "el peakMiB",
            "bare peak"
        ));
        for a in &r.a {
            out.say(format!(
                "{:<10} {:<10} {:>11.2} {:>11.2} {:>7.3}  {:>10.2} {:>10.2}  {:>10.1} {:>10.1}",
                a.size.to_string(),
                a.format,
                a.element_fps,
                a.bare_fps,
                a.ratio,
                a.element_latency_p50_ms,
                a.bare_latency_p50_ms,
                a.element_peak_rss_mb,
                a.bare_peak_rss_mb
            ));
        }
    }
    if let Some(b) = &r.b {
        out.say(
            "\n(b) file to file: element pipeline vs the Python loop, same clip, model and threads",
        );
        match &b.skipped {
            Some(reason) => out.say(format!("skipped: {reason}")),
            None => {
                out.say(format!("  element: {}", b.element_pipeline));
                out.say(format!("  python:  {}", b.python_loop));
                out.say(format!(
                    "{:<10} {:>11} {:>10} {:>7}  {:>10} {:>10}  {:>10} {:>10}",
                    "size",
                    "element fps",
                    "python fps",
                    "ratio",
                    "el peakMiB",
                    "py peakMiB",
                    "el out KiB",
                    "py out KiB"
                ));
                for row in &b.rows {
                    out.say(format!(
                        "{:<10} {:>11.2} {:>10.2} {:>7.3}  {:>10.1} {:>10.1}  {:>10.0} {:>10.0}",
                        row.size.to_string(),
                        row.element_fps,
                        row.python_fps,
                        row.ratio,
                        row.element_peak_rss_mb,
                        row.python_peak_rss_mb,
                        row.element_output_kb,
                        row.python_output_kb
                    ));
                }
            }
        }
    }
    if !r.c.is_empty() {
        out.say(
            "\n(c) conversion vs a memory copy of the tensor's bytes (ratio = conversion time / copy time; fastest of 30 interleaved ~2 ms batches)",
        );
        out.say(format!(
            "{:<10} {:<6} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
            "size",
            "format",
            "to tensor us",
            "to frame us",
            "copy frm us",
            "copy tns us",
            "to t/cpy",
            "to f/cpy"
        ));
        for c in &r.c {
            out.say(format!(
                "{:<10} {:<6} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>9.2} {:>9.2}",
                c.size.to_string(),
                c.format,
                c.to_tensor_ns / 1e3,
                c.to_frame_ns / 1e3,
                c.copy_frame_bytes_ns / 1e3,
                c.copy_tensor_bytes_ns / 1e3,
                c.to_tensor_vs_copy,
                c.to_frame_vs_copy
            ));
        }
    }
    if let Some(s) = &r.soak {
        out.say(format!(
            "\nsoak: {} frames of {} I420 through nlclderain ({:.1} fps), resident memory every {} frames (MiB):",
            s.frames, s.size, s.fps, args.soak_every
        ));
        let line: Vec<String> = s
            .samples
            .iter()
            .map(|(f, kb)| format!("{f}:{:.1}", mb(*kb)))
            .collect();
        for chunk in line.chunks(8) {
            out.say(format!("  {}", chunk.join("  ")));
        }
        out.say(format!(
            "  growth from frame {} to {}: {:+.2} MiB (bound {:.1} MiB: 5% of the baseline or 20 MiB, \
             whichever is smaller): {}",
            s.baseline_frames,
            s.frames,
            s.growth_kb as f64 / 1024.0,
            s.bound_kb as f64 / 1024.0,
            if s.pass { "flat" } else { "GROWING" }
        ));
        if s.frames < 10_000 {
            out.say("  (shorter than the 10,000 frames of the committed long-run check)");
        }
    }
    if !r.claims.is_empty() {
        out.say("\nclaims:");
        for c in &r.claims {
            out.say(format!(
                "  {}: {:.3} (target >= {}): {}",
                c.what,
                c.value,
                c.target,
                if c.met { "met" } else { "MISSED" }
            ));
        }
    }
}
