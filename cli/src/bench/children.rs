//! Parent side: running children (this executable again, or the Python loop) and reading
//! their results.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::{Job, Measured, PROGRESS_PREFIX, RESULT_PREFIX};

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

pub(super) fn run_job(job: &Job, bar: Option<&ProgressBar>) -> Result<Measured> {
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

pub(super) fn run_python(
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
