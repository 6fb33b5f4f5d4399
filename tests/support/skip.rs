//! Shared by the test crates of the workspace (included with `#[path]`): how a test that
//! cannot run a check here says so.

/// Records that `test` skipped a check, and why: printed (the test harness captures that) and,
/// when `NLCL_SKIP_LOG` names a file (scripts/test.sh sets it), appended to it as one line, so
/// the test command lists every skipped check after the results instead of showing a plain "ok".
pub fn skip(test: &str, reason: &str) {
    let line = format!(
        "{}::{}::{test}: {}\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_CRATE_NAME"),
        reason.replace('\n', " ")
    );
    print!("skipped: {line}");
    if let Some(path) = std::env::var_os("NLCL_SKIP_LOG") {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot append to NLCL_SKIP_LOG {path:?}: {e}"));
    }
}
