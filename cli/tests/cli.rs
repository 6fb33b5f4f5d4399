//! The `nlcl` command end to end, on images the test makes itself (and, when present, on the
//! shared Rain100L evaluation pairs).

use std::path::{Path, PathBuf};
use std::process::Command;

use nlcl::ModelSpec;

fn nlcl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nlcl"))
}

/// A model whose output equals its input.
fn identity_model(dir: &Path) -> PathBuf {
    let spec = ModelSpec {
        width: 4,
        depth: 1,
        unshuffle: 2,
        global_residual: true,
        instance_norm: true,
    };
    let p = dir.join("identity.onnx");
    std::fs::write(&p, nlcl::onnx::identity_model(spec).unwrap()).unwrap();
    p
}

fn gradient(w: u32, h: u32, seed: u8) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 + y) as u8 ^ seed,
            (y * 5) as u8,
            (x * 3 + y * 2) as u8,
        ])
    })
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn derain_writes_same_sized_images_and_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let src = dir.path().join("in");
    std::fs::create_dir(&src).unwrap();
    let img = gradient(37, 21, 3);
    img.save(src.join("a.png")).unwrap();
    std::fs::write(src.join("broken.png"), b"not a png").unwrap();
    let out = dir.path().join("out");
    let text = run_ok(
        nlcl()
            .args(["derain", "--side-by-side", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("--model")
            .arg(&model),
    );
    assert!(text.contains("1 skipped"), "{text}");
    assert!(text.contains("broken.png"), "{text}");
    let res = image::open(out.join("a.png")).unwrap().to_rgb8();
    // Identity model: exactly the input back.
    assert_eq!(res, img);
    let sheet = image::open(out.join("a-side-by-side.png")).unwrap();
    assert_eq!(sheet.width(), 37 * 2 + 4);
}

#[test]
fn eval_of_identity_model_scores_input_equal_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let pairs = dir.path().join("pairs");
    for sub in ["rain", "norain"] {
        std::fs::create_dir_all(pairs.join(sub)).unwrap();
    }
    for i in 0..3u8 {
        let clean = gradient(40, 30, i);
        let mut rainy = clean.clone();
        for (k, p) in rainy.pixels_mut().enumerate() {
            if k % 13 == 0 {
                p.0 = [255, 255, 255];
            }
        }
        clean
            .save(pairs.join("norain").join(format!("{i}.png")))
            .unwrap();
        rainy
            .save(pairs.join("rain").join(format!("{i}.png")))
            .unwrap();
    }
    let out = dir.path().join("eval");
    let text = run_ok(
        nlcl()
            .args(["eval", "--model"])
            .arg(&model)
            .arg("--pairs")
            .arg(&pairs)
            .arg("--clean")
            .arg(pairs.join("norain"))
            .arg("-o")
            .arg(&out),
    );
    let csv = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(
            f[3], f[5],
            "identity: output PSNR equals input PSNR: {line}"
        );
    }
    assert!(out.join("pairs-sheet.png").exists());
    // Do-no-harm of the identity is perfect (capped at 100 dB), without a colour cast.
    assert!(text.contains("Y 100.00 dB"), "{text}");
    assert!(
        text.contains("colour shift R +0.00 G +0.00 B +0.00 levels"),
        "{text}"
    );
    let harm = std::fs::read_to_string(out.join("norain-do-no-harm.csv")).unwrap();
    assert!(
        harm.starts_with("image,psnr_y,psnr_rgb,shift_r,shift_g,shift_b\n"),
        "{harm}"
    );
}

/// With the identity model the output scores are the input's, so this reproduces the
/// published input score of Rain100L (26.90 dB / 0.8384 on Y) with the project's metrics.
#[test]
fn rain100l_input_score_matches_published_value() {
    let pairs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/paired/Rain100L");
    if !pairs.exists() {
        println!(
            "skipped: {} is absent (shared evaluation data not present)",
            pairs.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let text = run_ok(
        nlcl()
            .args(["eval", "--model"])
            .arg(&model)
            .arg("--pairs")
            .arg(&pairs)
            .arg("-o")
            .arg(dir.path()),
    );
    assert!(
        text.contains("input  Y-PSNR 26.90 dB  SSIM 0.838"),
        "{text}"
    );
}

#[test]
fn info_shows_architecture_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let text = run_ok(nlcl().arg("info").arg(&model));
    assert!(
        text.contains("w4d1s2r") && text.contains("nlcl.size_multiple: 2"),
        "{text}"
    );
}

#[test]
fn missing_model_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    gradient(8, 8, 1).save(dir.path().join("a.png")).unwrap();
    let out = nlcl()
        .args(["derain", "--model", "/nonexistent/m.onnx", "-o"])
        .arg(dir.path().join("o"))
        .arg(dir.path().join("a.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/m.onnx"), "{err}");
}

/// The built-in model keeps the quality stated in models/MODELS.md: Rain100L at least 28.0 dB
/// with SSIM above the input's, and rain-free Kodak24 photos within 38 dB (Y) of the input.
#[test]
fn built_in_model_meets_its_stated_quality() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let (pairs, clean) = (data.join("paired/Rain100L"), data.join("clean/Kodak24"));
    if !pairs.exists() || !clean.exists() {
        println!(
            "skipped: {} is absent (shared evaluation data not present)",
            data.display()
        );
        return;
    }
    if nlcl::DEFAULT_MODEL.is_none() {
        println!("skipped: this build has no built-in model");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = run_ok(
        nlcl()
            .args(["eval", "--pairs"])
            .arg(&pairs)
            .arg("--clean")
            .arg(&clean)
            .arg("-o")
            .arg(dir.path()),
    );
    let number_after = |key: &str| -> f64 {
        let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (psnr, ssim, harm) = (
        number_after("output Y-PSNR"),
        number_after("SSIM"),
        number_after("x), x) Y"),
    );
    // The first "SSIM" is the input's; the output's follows "output Y-PSNR ... dB  SSIM".
    let out_line = text.lines().find(|l| l.contains("output Y-PSNR")).unwrap();
    let out_ssim: f64 = out_line
        .split("SSIM")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(psnr >= 28.0, "Rain100L output {psnr} dB\n{text}");
    assert!(
        out_ssim > ssim,
        "output SSIM {out_ssim} vs input {ssim}\n{text}"
    );
    assert!(harm >= 38.0, "do-no-harm {harm} dB\n{text}");
}
