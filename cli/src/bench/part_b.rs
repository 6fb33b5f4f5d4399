//! Part (b): a file-to-file element pipeline against the Python loop.

use std::path::Path;

use anyhow::{Context, Result, bail};
use gst::prelude::*;

use super::child::{element, file_pipeline, launch, play_to_eos, source_caps};
use super::children::{run_job, run_python};
use super::{Ctx, Job, Measured, PYTHON_LOOP, PartB, RowB, Size, bar, find_python, mb, median};

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

pub(super) fn part_b(ctx: &Ctx, dir: &Path) -> Result<PartB> {
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
