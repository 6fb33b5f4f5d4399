//! `nlcl adapt` end to end on footage the test makes itself: a short H.264 video (frames sampled
//! through GStreamer), starting from the built-in `lite` model. Training runs in the
//! `nlcl-train` program, which `cargo test --workspace` builds next to `nlcl` (and which needs
//! libtorch on the library path: `source scripts/torch-env.sh`, as scripts/test.sh does).

mod common;

#[cfg(feature = "gstreamer")]
use std::path::Path;
use std::process::Command;

use common::{nlcl, output_of};

/// 40 frames of 96x64 H.264 in MP4, made with GStreamer's own elements.
#[cfg(feature = "gstreamer")]
fn make_video(path: &Path) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=40",
            "pattern=ball",
            "!",
            "video/x-raw,width=96,height=64,framerate=20/1",
            "!",
            "x264enc",
            "!",
            "mp4mux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", path.display()))
        .status()
        .expect("gst-launch-1.0 (scripts/setup.sh installs it)");
    assert!(status.success(), "could not make the test video");
}

// Frames are sampled from the video with GStreamer.
#[cfg(feature = "gstreamer")]
#[test]
fn adapt_samples_video_frames_trains_resumes_and_exports() {
    common::require_trainer();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("rainy.mp4");
    make_video(&video);
    let out = dir.path().join("camera.onnx");
    let adapt = || {
        let mut c = nlcl();
        c.args(["adapt", "--model", "lite", "--rainy"])
            .arg(&video)
            .args([
                "--minutes",
                "0.05",
                "--frame-rate",
                "10",
                "--max-frames",
                "6",
            ])
            .arg("-o")
            .arg(&out)
            .env("OMP_NUM_THREADS", "1");
        c
    };
    let (ok, text) = output_of(&mut adapt());
    assert!(ok, "{text}");
    let frames = dir.path().join("camera-run/frames/rainy/00-000");
    let n = std::fs::read_dir(&frames).unwrap().count();
    assert!((1..=6).contains(&n), "{n} frames in {}", frames.display());
    // Without dry footage the model's own outputs are the clean side.
    assert_eq!(
        std::fs::read_dir(dir.path().join("camera-run/frames/pseudo-clean"))
            .unwrap()
            .count(),
        n
    );
    assert!(out.is_file(), "{text}");
    let (ok, info) = output_of(nlcl().arg("info").arg(&out));
    assert!(ok && info.contains("w16d4s2r"), "{info}");

    // A second run resumes from the first one's checkpoint instead of starting again.
    let (ok, text) = output_of(&mut adapt());
    assert!(ok, "{text}");
    assert!(text.contains("resumed"), "{text}");

    // The adapted model derains.
    let img = image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
    });
    let src = dir.path().join("frame.png");
    img.save(&src).unwrap();
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&src)
            .arg("-o")
            .arg(dir.path().join("derained"))
            .arg("-m")
            .arg(&out),
    );
    assert!(ok, "{text}");
}

#[test]
fn adapt_refuses_missing_footage_and_non_nlcl_models() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = output_of(
        nlcl()
            .args(["adapt", "--rainy", "/nonexistent/rain.mp4", "-o"])
            .arg(dir.path().join("m.onnx")),
    );
    assert!(!ok);
    assert!(text.contains("/nonexistent/rain.mp4"), "{text}");

    let img = dir.path().join("a.png");
    image::RgbImage::new(32, 32).save(&img).unwrap();
    let bogus = dir.path().join("bogus.onnx");
    std::fs::write(&bogus, b"not a model").unwrap();
    let (ok, text) = output_of(
        nlcl()
            .args(["adapt", "--model"])
            .arg(&bogus)
            .arg("--rainy")
            .arg(&img)
            .arg("-o")
            .arg(dir.path().join("m.onnx")),
    );
    assert!(!ok);
    assert!(text.contains("bogus.onnx"), "{text}");
}

/// 160x160 scenes (smooth shading and an edge), with straight streaks 20 degrees from vertical
/// drawn on them when `rain` is set.
fn write_scenes(dir: &std::path::Path, count: u32, rain: bool) {
    use nlcl::synthetic_rain::{StreakRanges, render_streaks};
    std::fs::create_dir_all(dir).unwrap();
    let ranges = StreakRanges {
        angle: (18.0, 22.0),
        length: (30.0, 40.0),
        coverage: (0.04, 0.06),
        brightness: (0.5, 0.7),
        blur: (0, 1),
    };
    let mut rng = nlcl::rng::Rng::new(u64::from(count) + u64::from(rain));
    let n = 160 * 160;
    for k in 0..count {
        let mut p = vec![0f32; 3 * n];
        for c in 0..3 {
            for i in 0..n {
                let (x, y) = ((i % 160) as f32, (i / 160) as f32);
                let edge = if x > 40.0 + 10.0 * k as f32 {
                    0.15
                } else {
                    0.0
                };
                p[c * n + i] = 0.15 + 0.4 * (y / 160.0) + 0.1 * c as f32 + edge;
            }
        }
        if rain {
            render_streaks(&mut p, 160, 160, &ranges, &mut rng);
        }
        let img = image::RgbImage::from_fn(160, 160, |x, y| {
            let i = (y * 160 + x) as usize;
            image::Rgb(std::array::from_fn(|c| {
                (p[c * n + i] * 255.0).round() as u8
            }))
        });
        img.save(dir.join(format!("{k:03}.png"))).unwrap();
    }
}

#[test]
fn adapt_fits_the_renderer_to_the_cameras_rain_and_reuses_the_fit_on_resume() {
    common::require_trainer();
    let dir = tempfile::tempdir().unwrap();
    let (rainy, clean) = (dir.path().join("rainy"), dir.path().join("dry"));
    write_scenes(&rainy, 8, true);
    write_scenes(&clean, 8, false);
    let out = dir.path().join("cam.onnx");
    let adapt = || {
        let mut c = nlcl();
        c.args(["adapt", "--model", "lite", "--rainy"])
            .arg(&rainy)
            .arg("--clean")
            .arg(&clean)
            .args(["--minutes", "0.02", "--fit-source", "spatial", "-o"])
            .arg(&out)
            .env("OMP_NUM_THREADS", "1");
        c
    };
    let (ok, text) = output_of(&mut adapt());
    assert!(ok, "{text}");
    assert!(text.contains("rain measured on"), "{text}");
    let run = dir.path().join("cam-run");
    let fit: nlcl::synthetic_rain::StreakRanges = std::fs::read_to_string(run.join("rain-fit.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mid = 0.5 * (fit.angle.0 + fit.angle.1);
    assert!((mid - 20.0).abs() < 6.0, "{fit}");
    assert!(image::open(run.join("rain-fit.png")).is_ok());
    // The trainer was given the fit, and records it.
    let (ok, info) = output_of(nlcl().arg("info").arg(&out));
    assert!(ok && info.contains("rain_fit=[angle="), "{info}");
    assert!(
        info.contains("pair_identity=0.2") && info.contains("rain_fit_share=0.9"),
        "{info}"
    );

    // Resuming reuses the fit instead of measuring again; the share of dry pairs and the
    // joint fit's styles reach the trainer.
    let (ok, text) = output_of(adapt().args(["--dry-share", "0.3", "--fit-form", "styles"]));
    assert!(ok, "{text}");
    assert!(text.contains("rain fitted earlier"), "{text}");
    let (ok, info) = output_of(nlcl().arg("info").arg(&out));
    assert!(
        ok && info.contains("pair_identity=0.3") && info.contains("; angle="),
        "{info}"
    );

    for (flag, bad) in [("--fit-share", "1.5"), ("--dry-share", "1")] {
        let (ok, text) = output_of(adapt().args([flag, bad]));
        assert!(!ok && text.contains(&format!("{flag} {bad}")), "{text}");
    }
}

/// `n` frames of one still camera (a textured street-like scene with sensor noise), each with
/// its own faint thin streaks at 20 degrees when `rain`, into `dir`; frame `odd` (if any) at
/// another size.
fn write_still_clip(dir: &std::path::Path, n: usize, rain: bool, odd: Option<usize>) {
    use nlcl::synthetic_rain::{StreakRanges, render_streaks};
    std::fs::create_dir_all(dir).unwrap();
    let faint = StreakRanges {
        angle: (18.0, 22.0),
        length: (20.0, 40.0),
        coverage: (0.02, 0.04),
        brightness: (0.06, 0.1),
        blur: (0, 0),
    };
    let mut rng = nlcl::rng::Rng::new(7);
    for k in 0..n {
        let (w, h) = if odd == Some(k) { (96, 96) } else { (192, 160) };
        let plane = w * h;
        let mut p = vec![0f32; 3 * plane];
        for c in 0..3 {
            for i in 0..plane {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let texture = 0.12 * ((x * 0.9).sin() * (y * 0.37).cos()).signum();
                p[c * plane + i] =
                    0.35 + 0.2 * (y / h as f32) + texture + 0.05 * c as f32 + 0.006 * rng.normal();
            }
        }
        if rain {
            render_streaks(&mut p, w, h, &faint, &mut rng);
        }
        let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let i = (y as usize) * w + x as usize;
            image::Rgb(std::array::from_fn(|c| {
                (p[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8
            }))
        });
        img.save(dir.join(format!("{k:03}.png"))).unwrap();
    }
}

/// On a still camera's clip the fit measures what the frames add over their temporal median
/// (auto), and finds the faint streaks' direction; `--fit-source temporal` on frames that are
/// not one camera's clip is refused with the reason.
#[test]
fn adapt_fits_a_still_cameras_faint_rain_from_its_transients() {
    common::require_trainer();
    let dir = tempfile::tempdir().unwrap();
    let (rainy, clean) = (dir.path().join("rainy"), dir.path().join("dry"));
    write_still_clip(&rainy, 10, true, None);
    write_scenes(&clean, 8, false);
    let adapt = |out: &str, rainy: &std::path::Path, extra: &[&str]| {
        let mut c = nlcl();
        c.args(["adapt", "--model", "lite", "--rainy"])
            .arg(rainy)
            .arg("--clean")
            .arg(&clean)
            .args(["--minutes", "0.01", "-o"])
            .arg(dir.path().join(out))
            .args(extra)
            .env("OMP_NUM_THREADS", "1");
        output_of(&mut c)
    };
    let (ok, text) = adapt("cam.onnx", &rainy, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("over their temporal median (a still camera"),
        "{text}"
    );
    let fit: nlcl::synthetic_rain::StreakRanges =
        std::fs::read_to_string(dir.path().join("cam-run/rain-fit.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let mid = 0.5 * (fit.angle.0 + fit.angle.1);
    assert!((mid - 20.0).abs() < 6.0, "{fit}");
    assert!(fit.brightness.0 < 0.2, "{fit}");

    let odd = dir.path().join("odd");
    write_still_clip(&odd, 8, true, Some(3));
    let (ok, text) = adapt("odd.onnx", &odd, &["--fit-source", "temporal"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("--fit-source temporal") && text.contains("frame 3 is 96x96"),
        "{text}"
    );
    // Auto falls back to fitting each frame on its own, saying why.
    let (ok, text) = adapt("odd-auto.onnx", &odd, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("fitting each frame on its own"), "{text}");
}
