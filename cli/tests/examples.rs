#![cfg(feature = "gstreamer")]
//! The command-line examples run: `examples/dashcam_folder.sh` derains a card dump of videos
//! in sub-folders into a mirror folder and resumes without redoing finished clips.

use std::path::Path;
use std::process::Command;

fn make_clip(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=8",
            "!",
            "video/x-raw,width=160,height=120,framerate=10/1",
            "!",
            "x264enc",
            "!",
            "h264parse",
            "!",
            "mp4mux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", path.display()))
        .status()
        .expect("gst-launch-1.0");
    assert!(status.success());
}

#[test]
fn dashcam_folder_example_mirrors_the_card_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card");
    make_clip(&card.join("DCIM/100/a.mp4"));
    make_clip(&card.join("DCIM/101/b.mp4"));
    let out = dir.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dashcam_folder.sh");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_nlcl"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = || {
        let o = Command::new("bash")
            .arg(&script)
            .arg(&card)
            .arg(&out)
            .env("PATH", &path)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{text}");
        text
    };
    let first = run();
    for clip in ["DCIM/100/a.mp4", "DCIM/101/b.mp4"] {
        assert!(out.join(clip).is_file(), "{clip} missing:\n{first}");
        assert!(first.contains(clip), "{first}");
    }
    let modified = std::fs::metadata(out.join("DCIM/100/a.mp4"))
        .unwrap()
        .modified()
        .unwrap();
    let second = run();
    assert!(second.contains("2 existing output(s) kept"), "{second}");
    assert_eq!(
        std::fs::metadata(out.join("DCIM/100/a.mp4"))
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "a finished clip was redone"
    );
}
