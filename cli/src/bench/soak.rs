//! `--soak N`: resident memory of a long pipeline.

use anyhow::{Context, Result};

use super::children::run_job;
use super::{Ctx, Job, SOAK_BOUND_FRACTION, SOAK_BOUND_KB, Soak, bar};

pub(super) fn soak(ctx: &Ctx, frames: u64) -> Result<Soak> {
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
