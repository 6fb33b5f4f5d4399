//! The plugin's example programs run: `derain_file` writes a playable MP4, `rain_alarm` reads
//! the rain meter's messages. Cargo builds the examples with the tests; they are found next to
//! the test binary (target/PROFILE/examples).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/PROFILE/deps/TEST -> target/PROFILE/examples/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder")
        .join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` without a target filter builds the examples (or run \
         `cargo build --release -p gst-plugin-nlcl --examples`)",
        path.display()
    );
    path
}

fn make_clip(dir: &Path) -> PathBuf {
    init();
    let path = dir.join("clip.mp4");
    let p = pipeline(&format!(
        "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 \
         ! x264enc ! h264parse ! mp4mux ! filesink location=\"{}\"",
        path.display()
    ));
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "making the clip: {:?}", r.error);
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start the example");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{stdout}\n{stderr}",
        out.status
    );
    stdout + &stderr
}

#[test]
fn derain_file_writes_a_playable_mp4() {
    let dir = temp_dir();
    let clip = make_clip(dir.path());
    let out = dir.path().join("clean.mp4");
    run(Command::new(example("derain_file")).arg(&clip).arg(&out));
    // It decodes again, with every frame.
    let p = pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! fakesink name=s",
        out.display()
    ));
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn rain_alarm_reports_rain_from_the_messages() {
    let dir = temp_dir();
    let clip = make_clip(dir.path());
    // Threshold 0: every measured frame counts as rain, so the alarm goes up at once.
    let text = run(Command::new(example("rain_alarm"))
        .arg(&clip)
        .args(["0", "4"]));
    assert!(text.contains("RAIN ALARM"), "{text}");
    assert!(text.contains("3 rain reports"), "{text}");
    // A threshold no frame reaches: dry.
    let text = run(Command::new(example("rain_alarm"))
        .arg(&clip)
        .args(["255", "4"]));
    assert!(text.contains(": dry") && !text.contains("ALARM"), "{text}");
}
