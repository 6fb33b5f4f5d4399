//! Helpers shared by the command's test files.

use std::path::{Path, PathBuf};

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
