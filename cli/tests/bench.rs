#![cfg(feature = "gstreamer")]
//! `nlcl bench` end to end on a tiny model and tiny frames: the report's structure (every part
//! present, ratios finite and positive), never its speeds. Part (b) needs the Python
//! environment of scripts/setup-bench.sh; without it the command must skip (b) with a reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use nlcl::ModelSpec;
use nlcl::onnx::{ExportConfig, Weights, write_model};
use nlcl::spec::BACK_PREFIX;

fn tiny_model(dir: &Path) -> PathBuf {
    let spec = ModelSpec {
        width: 4,
        depth: 1,
        unshuffle: 2,
        global_residual: true,
        instance_norm: true,
        detail_radius: 0,
    };
    let weights = Weights::random_generator(&spec, BACK_PREFIX, 3, 1.0);
    let config = ExportConfig {
        spec,
        include_rain: false,
        metadata: vec![],
        dead_zone: 0.0,
    };
    let path = dir.join("tiny.onnx");
    std::fs::write(&path, write_model(&config, &weights).unwrap()).unwrap();
    path
}

#[path = "../../tests/support/skip.rs"]
mod skip_log;
use skip_log::skip;

fn venv_python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-bench/bin/python");
    p.exists().then_some(p)
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

fn finite_positive(v: &serde_json::Value, key: &str) {
    let x = number(v, key);
    assert!(x.is_finite() && x > 0.0, "{key} = {x} in {v}");
}

#[test]
fn bench_reports_every_part_with_finite_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let json = dir.path().join("report.json");
    let python = venv_python();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nlcl"));
    cmd.args([
        "bench",
        "--sizes",
        "64x48,32x32",
        "--frames",
        "6",
        "--rounds",
        "2",
    ])
    .args([
        "--soak",
        "300",
        "--soak-every",
        "50",
        "--soak-size",
        "32x32",
    ])
    .arg("--model")
    .arg(&model)
    .arg("--json")
    .arg(&json)
    // A fresh working directory: the command finds the repository's .venv-bench (the one
    // venv_python() looks at) through the path it was built from, or none.
    .current_dir(dir.path());
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nlcl bench failed:\n{text}");
    for heading in [
        "(a) element in a pipeline",
        "(c) conversion",
        "soak:",
        "claims:",
    ] {
        assert!(text.contains(heading), "no {heading:?} in:\n{text}");
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        report["model"]["source"]
            .as_str()
            .unwrap()
            .contains("tiny.onnx")
    );
    assert_eq!(report["model"]["architecture"], "w4d1s2r");

    // (a): one row per size and format (I420, RGBx by default).
    let a = report["a"].as_array().unwrap();
    assert_eq!(a.len(), 4, "{a:?}");
    for row in a {
        for key in [
            "element_fps",
            "bare_fps",
            "ratio",
            "element_peak_rss_mb",
            "bare_peak_rss_mb",
        ] {
            finite_positive(row, key);
        }
        assert_eq!(row["ratio_rounds"].as_array().unwrap().len(), 2);
    }

    // (b): rows when the Python environment exists, otherwise a reason.
    let b = &report["b"];
    match &python {
        Some(_) => {
            assert!(b["skipped"].is_null(), "{b}");
            let rows = b["rows"].as_array().unwrap();
            assert_eq!(rows.len(), 2, "{b}");
            for row in rows {
                for key in [
                    "element_fps",
                    "python_fps",
                    "ratio",
                    "element_peak_rss_mb",
                    "python_peak_rss_mb",
                ] {
                    finite_positive(row, key);
                }
            }
        }
        None => {
            let reason = b["skipped"]
                .as_str()
                .unwrap_or_else(|| panic!("(b) not skipped: {b}"));
            assert!(reason.contains("setup-bench.sh"), "{reason}");
            skip(
                "bench_reports_every_part_with_finite_ratios",
                &format!("part (b), the element against the Python loop: {reason}"),
            );
        }
    }

    // (c): RGBx, I420 and NV12 at each size, against a copy of the tensor's bytes.
    let c = report["c"].as_array().unwrap();
    assert_eq!(c.len(), 6, "{c:?}");
    for row in c {
        for key in [
            "to_tensor_ns",
            "to_frame_ns",
            "copy_tensor_bytes_ns",
            "to_tensor_vs_copy",
            "to_frame_vs_copy",
        ] {
            finite_positive(row, key);
        }
        assert_eq!(
            number(row, "tensor_bytes") as usize,
            3 * 4
                * row["size"]["width"].as_u64().unwrap() as usize
                * row["size"]["height"].as_u64().unwrap() as usize
        );
    }

    // Soak: a sample every 50 frames, flat.
    let soak = &report["soak"];
    assert_eq!(soak["frames"], 300);
    assert_eq!(soak["samples"].as_array().unwrap().len(), 6, "{soak}");
    assert_eq!(soak["pass"], true, "{soak}");

    // Claims at the first size, with their targets.
    let claims = report["claims"].as_array().unwrap();
    assert_eq!(
        claims.len(),
        if python.is_some() { 2 } else { 1 },
        "{claims:?}"
    );
    for claim in claims {
        finite_positive(claim, "value");
    }
}

/// Without `--model` the command benchmarks the built-in default model and says so in the
/// report; a build without one fails, saying what to pass instead.
#[test]
fn bench_without_a_model_uses_the_built_in_one_or_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nlcl"))
        .args(["bench", "--parts", "c", "--sizes", "32x32", "--rounds", "1"])
        .arg("--json")
        .arg(&json)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    match nlcl::DEFAULT_MODEL {
        Some(bytes) => {
            assert!(out.status.success(), "nlcl bench failed:\n{text}");
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            let model = &report["model"];
            assert!(
                model["source"]
                    .as_str()
                    .is_some_and(|s| s.contains("built-in default model")),
                "{model}"
            );
            // The model benchmarked is the built-in one.
            let meta = nlcl::onnx::read_metadata(bytes).unwrap();
            let arch = meta
                .iter()
                .find(|(k, _)| k == nlcl::onnx::meta::ARCH)
                .map(|(_, v)| v.as_str())
                .expect("the built-in model names its architecture");
            assert_eq!(model["architecture"], arch, "{model}");
            assert_eq!(report["c"].as_array().map(Vec::len), Some(3), "{report}");
        }
        None => {
            assert!(!out.status.success(), "{text}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("--model") && err.contains("--random-arch"),
                "{err}"
            );
        }
    }
}
