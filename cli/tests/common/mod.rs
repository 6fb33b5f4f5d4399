//! Helpers shared by the command's test files.
// Not every test file that includes `common` uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `nlcl` binary under test.
pub fn nlcl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nlcl"))
}

/// Runs `cmd`: whether it succeeded, and its standard output and error together.
pub fn output_of(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("running nlcl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `nlcl-train` program that `nlcl train`, `export` and `adapt` hand over to; `cargo test
/// --workspace` builds it next to `nlcl`. Fails the test with what to do when it is missing.
pub fn require_trainer() -> PathBuf {
    let trainer = Path::new(env!("CARGO_BIN_EXE_nlcl")).with_file_name("nlcl-train");
    assert!(
        trainer.is_file(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        trainer.display()
    );
    trainer
}
