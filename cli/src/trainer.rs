//! Hands training over to the `nlcl-train` program (crate `nlcl-train`, which links libtorch),
//! so that `nlcl` itself starts and runs everywhere without libtorch.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Name of the trainer program.
const TRAINER: &str = "nlcl-train";

/// The trainer next to this program (how `cargo build` and installs lay them out), else on PATH.
fn trainer_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(TRAINER))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(TRAINER))
}

/// Runs `nlcl-train ARGS...` with this process's terminal, and fails with a hint when it could
/// not be started or could not load libtorch.
pub fn run<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let path = trainer_path();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let status = match Command::new(&path).args(&args).status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the trainer `{TRAINER}` was not found next to nlcl or on PATH: build it with \
             `cargo build --release -p nlcl-train` (libtorch: scripts/setup-train.sh, then \
             `source scripts/torch-env.sh`)"
        ),
        Err(e) => return Err(e).with_context(|| format!("starting {}", path.display())),
    };
    match status.code() {
        Some(0) => Ok(()),
        // The dynamic loader's exit status when a library is missing.
        Some(127) => bail!(
            "{} could not start (exit status 127); if it reported a missing libtorch_cpu.so, \
             run `source scripts/torch-env.sh` (after scripts/setup-train.sh) first",
            path.display()
        ),
        _ => bail!("{} failed ({status})", path.display()),
    }
}
