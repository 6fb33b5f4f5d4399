//! Child side: one measured variant per process (the hidden `--variant` argument).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use gst::prelude::*;

use nlcl::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat};
use nlcl::latency_window::Latencies;
use nlcl::runtime::{Model, SessionOptions};

use super::{FPS, Job, Measured, PROGRESS_PREFIX, RESULT_PREFIX, Size};

pub(super) fn run_child(job_json: &str) -> Result<()> {
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

pub(super) fn launch(desc: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(desc)
        .with_context(|| format!("building pipeline {desc}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("{desc} is not a pipeline"))
}

pub(super) fn element(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element> {
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
pub(super) fn play_to_eos(pipeline: &gst::Pipeline) -> Result<Instant> {
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

pub(super) fn source_caps(format: &str, size: Size) -> String {
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
pub(super) struct TestFrame {
    format: PixelFormat,
    size: Size,
    pub(super) planes: Vec<Vec<u8>>,
    strides: [usize; 3],
}

impl TestFrame {
    pub(super) fn new(format: PixelFormat, size: Size) -> Result<TestFrame> {
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

    pub(super) fn bytes(&self) -> usize {
        self.planes.iter().map(Vec::len).sum()
    }

    pub(super) fn view(&self) -> FrameRef<'_> {
        let p = |i: usize| self.planes.get(i).map_or(&[][..], |v| &v[..]);
        FrameRef {
            format: self.format,
            width: self.size.width,
            height: self.size.height,
            planes: [p(0), p(1), p(2)],
            strides: self.strides,
        }
    }

    pub(super) fn view_mut(&mut self) -> FrameMut<'_> {
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
pub(super) fn file_pipeline(size: Size) -> String {
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
