//! Part (d): the bare ONNX Runtime session of `--model` against that of each `--versus` model
//! (e.g. its INT8 variant, or another model of the family), same frame, size and threads,
//! interleaved: what a variant costs or saves.

use anyhow::{Result, bail};

use super::children::run_job;
use super::{Ctx, Job, Measured, RowD, bar, median, model_path};

pub(super) fn part_d(ctx: &Ctx, dir: &std::path::Path) -> Result<Vec<RowD>> {
    let args = ctx.args;
    if args.versus.is_empty() {
        bail!("part (d) compares --model with --versus MODEL (repeatable); none was given");
    }
    let mut models = vec![(ctx.model.clone(), ctx.model.display().to_string())];
    for (i, v) in args.versus.iter().enumerate() {
        let (path, source) = model_path(v, dir, &format!("versus-{i}-"))?;
        models.push((path, source));
    }
    let n = models.len();
    let bar = bar((args.sizes.len() * args.rounds * n) as u64, "(d)");
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let mut results: Vec<Vec<Measured>> = vec![Vec::new(); n];
        for round in 0..args.rounds {
            for k in 0..n {
                // Rotate the order each round so drift hits every model alike.
                let v = (k + round) % n;
                let job = Job::Bare {
                    model: models[v].0.clone(),
                    threads: args.threads,
                    size,
                    frames: args.frames,
                };
                bar.set_message(format!("{size} round {} model {v}", round + 1));
                let m = run_job(&job, None)?;
                ctx.log(
                    &bar,
                    format!(
                        "(d) {size} round {}: {:<40} {:7.2} fps",
                        round + 1,
                        models[v].1,
                        m.fps
                    ),
                );
                results[v].push(m);
                bar.inc(1);
            }
        }
        let fps = |v: &[Measured]| median(&v.iter().map(|m| m.fps).collect::<Vec<_>>());
        for v in 1..n {
            let ratio_rounds: Vec<f64> = results[v]
                .iter()
                .zip(&results[0])
                .map(|(a, b)| a.fps / b.fps)
                .collect();
            rows.push(RowD {
                size,
                versus: models[v].1.clone(),
                versus_fps: fps(&results[v]),
                model_fps: fps(&results[0]),
                ratio: median(&ratio_rounds),
                ratio_rounds,
            });
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}
