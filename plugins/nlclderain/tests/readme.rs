//! Every `gst-launch-1.0` pipeline in the README runs: cameras, network streams and files are
//! swapped for generated ones (a short H.264 MP4 made here, `videotestsrc`), windows for
//! `fakesink`, model files for the built-in model's file, so the documented pipelines cannot rot.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The README's `gst-launch-1.0` command lines, continuation lines joined.
fn readme_pipelines() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let mut out = Vec::new();
    let mut in_code = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.trim();
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b.trim(), true),
            None => (line, false),
        };
        match current.as_mut() {
            Some(c) => {
                c.push(' ');
                c.push_str(body);
            }
            None => {
                // Commands may be prefixed with environment settings.
                if let Some(at) = body.find("gst-launch-1.0 ") {
                    current = Some(body[at + "gst-launch-1.0 ".len()..].to_string());
                }
            }
        }
        if !continues && let Some(c) = current.take() {
            out.push(c);
        }
    }
    out
}

/// A 10-frame 160x120 H.264 MP4 (with the decoder's usual caps).
fn make_clip(dir: &Path) -> PathBuf {
    let path = dir.join("clip.mp4");
    let p = pipeline(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,width=160,height=120,framerate=10/1 \
         ! x264enc ! h264parse ! mp4mux ! filesink location=\"{}\"",
        path.display()
    ));
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "making the clip: {:?}", r.error);
    path
}

/// The pipeline with its sources, sinks and files swapped for ones that exist here.
fn runnable(launch: &str, clip: &Path, model: &Path, out_dir: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for element in launch.split(" ! ") {
        let mut words: Vec<String> = element.split_whitespace().map(str::to_string).collect();
        let Some(name) = words.first().cloned() else {
            continue;
        };
        match name.as_str() {
            "filesrc" | "rtspsrc" => {
                words = vec!["filesrc".into(), format!("location=\"{}\"", clip.display())];
            }
            "v4l2src" => words = vec!["videotestsrc".into(), "num-buffers=10".into()],
            "videotestsrc" if !words.iter().any(|w| w.starts_with("num-buffers=")) => {
                words.push("num-buffers=10".into())
            }
            "autovideosink" | "xvimagesink" | "glimagesink" => words = vec!["fakesink".into()],
            "filesink" => {
                words = vec![
                    "filesink".into(),
                    format!("location=\"{}\"", out_dir.join("out.mp4").display()),
                ];
            }
            _ => {}
        }
        for w in &mut words {
            if w.starts_with("model-file=") {
                *w = format!("model-file=\"{}\"", model.display());
            } else if w.starts_with("model-cache-dir=") {
                *w = format!("model-cache-dir=\"{}\"", out_dir.join("cache").display());
            }
        }
        parts.push(words.join(" "));
    }
    parts.join(" ! ")
}

#[test]
fn every_readme_pipeline_runs_with_generated_sources() {
    init();
    let dir = temp_dir();
    let clip = make_clip(dir.path());
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.onnx");
    let pipelines = readme_pipelines();
    assert!(
        pipelines.len() >= 8,
        "the README's pipelines were not found: {pipelines:?}"
    );
    for launch in &pipelines {
        let run = runnable(launch, &clip, &model, dir.path());
        let p = pipeline(&run);
        let r = run_to_end(&p);
        assert!(
            r.error.is_none(),
            "README pipeline failed:\n  {launch}\nrun as\n  {run}\n{:?}",
            r.error
        );
    }
}
