//! Part (a): the element in a pipeline against the bare ONNX Runtime session.

use anyhow::{Result, bail};

use nlcl::convert::PixelFormat;

use super::children::run_job;
use super::{Ctx, Job, Measured, RowA, bar, mb, median};

pub(super) fn part_a(ctx: &Ctx) -> Result<Vec<RowA>> {
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
