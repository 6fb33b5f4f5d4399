//! `nlcl int8`: writes the INT8 variant of a model (integer convolutions on the CPU, a third
//! of the file), calibrated on images like those it will see: the ranges of its activations
//! are measured by running the float model on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nlcl::family::ModelSource;
use nlcl::onnx::int8::{self, Histogram, Range};
use nlcl::runtime::{Model, SessionOptions};

use crate::images;

/// Calibration crops are at most this many pixels on a side: the ranges need the variety of
/// many scenes more than whole large frames.
const MAX_SIDE: u32 = 512;

/// Converts `model` (a name or a file; the built-in `lite` when absent), calibrated on the
/// images of `calibration` over the central `percentile` % of each activation's values, and
/// writes `out`.
pub fn run(
    model: Option<&str>,
    calibration: &[PathBuf],
    percentile: f64,
    out: &Path,
) -> Result<()> {
    if !(50.0..=100.0).contains(&percentile) {
        bail!("--percentile {percentile}: must be in [50, 100]");
    }
    let source = model.map(ModelSource::parse).unwrap_or_default();
    let (bytes, origin) = source.bytes()?;
    let (probe, names) =
        int8::with_calibration_outputs(&bytes).with_context(|| format!("converting {origin}"))?;
    let files = images::collect(calibration)?;
    if files.is_empty() {
        bail!("no calibration images in {calibration:?}");
    }
    let mut session = Model::from_bytes(&probe, &origin, &SessionOptions::default())?;
    let m = session.info().size_multiple as u32;
    // Two passes: each tensor's full range, then where its values fall within it.
    let mut full: BTreeMap<String, Range> =
        names.iter().map(|n| (n.clone(), Range::EMPTY)).collect();
    let mut histograms: BTreeMap<String, Histogram> = BTreeMap::new();
    let bar = images::progress(2 * files.len() as u64, "calibrating");
    for pass in 0..2 {
        if pass == 1 {
            histograms = full
                .iter()
                .map(|(n, r)| (n.clone(), Histogram::new(*r)))
                .collect();
        }
        for f in &files {
            let (input, w, h) = calibration_input(f, m)?;
            let values = session
                .run_named(&input, 1, h, w, &names)
                .with_context(|| format!("calibrating on {}", f.display()))?;
            for (name, v) in names.iter().zip(&values) {
                if pass == 0 {
                    full.entry(name.clone()).or_insert(Range::EMPTY).include(v);
                } else if let Some(hist) = histograms.get_mut(name) {
                    hist.add(v);
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let tail = (100.0 - percentile) / 100.0;
    let ranges: BTreeMap<String, Range> = histograms
        .iter()
        .map(|(n, h)| (n.clone(), h.central(tail)))
        .collect();
    let quantized =
        int8::to_int8(&bytes, &ranges).with_context(|| format!("converting {origin}"))?;
    std::fs::write(out, &quantized).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({:.1} KiB, INT8 variant of {origin}, {:.1} KiB; {} activations calibrated on {} images, central {percentile} %)",
        out.display(),
        quantized.len() as f64 / 1024.0,
        bytes.len() as f64 / 1024.0,
        names.len(),
        files.len()
    );
    Ok(())
}

/// A calibration image as the model's input: its centre, at most [`MAX_SIDE`] on a side and cut
/// to the model's size multiple, in [-1, 1]; with its width and height.
fn calibration_input(file: &Path, multiple: u32) -> Result<(Vec<f32>, usize, usize)> {
    let img = images::load_rgb(file)?;
    let (w, h) = (
        img.width().min(MAX_SIDE) / multiple * multiple,
        img.height().min(MAX_SIDE) / multiple * multiple,
    );
    if w == 0 || h == 0 {
        bail!("{}: too small to calibrate on", file.display());
    }
    let crop = image::imageops::crop_imm(&img, (img.width() - w) / 2, (img.height() - h) / 2, w, h)
        .to_image();
    let input = images::to_planar(&crop)
        .into_iter()
        .map(|v| v * 2.0 - 1.0)
        .collect();
    Ok((input, w as usize, h as usize))
}
