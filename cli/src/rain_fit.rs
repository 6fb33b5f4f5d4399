//! Fits the renderer's streaks to a camera's rainy frames for `nlcl adapt`
//! ([`nlcl::rain_fit`]), keeps the fit in the run folder (`rain-fit.txt`, reused on resume) and
//! writes a sheet to look at: the camera's rainy crops above clean crops with the fitted rain.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use nlcl::rain_fit::{CROP, FitError, FitOptions, Planar, fit_rain, random_crop};
use nlcl::rng::Rng;
use nlcl::synthetic_rain::{StreakRanges, render_streaks};

use crate::images;

/// At most this many images of each side are measured (evenly spread over the footage).
const MAX_IMAGES: usize = 200;
/// Crops per row of the sheet.
const SHEET: usize = 4;
/// Widest spread of fitted angles (degrees) taken as a prevailing streak direction.
const MAX_ANGLE_SPREAD: f32 = 90.0;

/// Up to [`MAX_IMAGES`] images of `inputs`, evenly spread, as (planar, width, height).
fn load(inputs: &[PathBuf]) -> Result<Vec<(Vec<f32>, usize, usize)>> {
    let files = images::collect(inputs)?;
    let step = files.len().div_ceil(MAX_IMAGES).max(1);
    files
        .iter()
        .step_by(step)
        .map(|f| {
            let img = images::load_rgb(f)?;
            Ok((
                images::to_planar(&img),
                img.width() as usize,
                img.height() as usize,
            ))
        })
        .collect()
}

fn views(images: &[(Vec<f32>, usize, usize)]) -> Vec<Planar<'_>> {
    images
        .iter()
        .map(|(p, w, h)| Planar {
            planes: p,
            width: *w,
            height: *h,
        })
        .collect()
}

/// A `CROP`-square crop of an image as an 8-bit image, with `ranges` rendered on it if given.
fn crop_image(
    (p, w, h): &(Vec<f32>, usize, usize),
    ranges: Option<&StreakRanges>,
    rng: &mut Rng,
) -> Option<RgbImage> {
    let img = Planar {
        planes: p,
        width: *w,
        height: *h,
    };
    let mut crop = random_crop(&img, rng)?;
    if let Some(r) = ranges {
        render_streaks(&mut crop, CROP, CROP, r, rng);
    }
    Some(images::from_planar(&crop, CROP, CROP))
}

/// The rain fitted to `rainy` (rendered on `clean` to compare), kept in `run/rain-fit.txt`:
/// read from there when an earlier run of the same command wrote it. `None` (with a printed
/// reason) when the frames are too small to measure.
pub fn fitted_rain(
    rainy: &[PathBuf],
    clean: &[PathBuf],
    streakiest: f32,
    run: &Path,
) -> Result<Option<StreakRanges>> {
    let saved = run.join("rain-fit.txt");
    if saved.is_file() {
        let text = std::fs::read_to_string(&saved)
            .with_context(|| format!("reading {}", saved.display()))?;
        let ranges: StreakRanges = text
            .trim()
            .parse()
            .with_context(|| format!("{} (delete it to fit again)", saved.display()))?;
        eprintln!("rain fitted earlier ({}): {ranges}", saved.display());
        return Ok(Some(ranges));
    }
    let (rainy, clean) = (load(rainy)?, load(clean)?);
    let mut rng = Rng::new(1);
    let options = FitOptions {
        streakiest,
        ..FitOptions::default()
    };
    let fit = match fit_rain(&views(&rainy), &views(&clean), options, &mut rng) {
        Ok(fit) => fit,
        Err(e @ FitError::TooSmall { .. }) => {
            eprintln!("rain not fitted: {e}; training on the general renderer alone");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "rain measured on {} crops: {} (streak pixels: {:.1} % of the rainy crops, {:.1} % of the clean ones)",
        fit.crops,
        fit.ranges,
        100.0 * fit.streak_share.0,
        100.0 * fit.streak_share.1
    );
    // Streaks share a direction within a frame and mostly across footage; crops whose
    // angles spread over more than 90 degrees show scene texture, not rain the fit can use.
    if fit.ranges.angle.1 - fit.ranges.angle.0 > MAX_ANGLE_SPREAD {
        eprintln!(
            "rain not fitted: no prevailing streak direction (the streaks are too faint against \
             the scene's texture for the fit to find); training on the general renderer alone"
        );
        return Ok(None);
    }
    if fit.streak_share.0 < 1.5 * fit.streak_share.1 {
        eprintln!(
            "note: the rainy footage shows few more thin bright streaks than the clean images; \
             compare the sheet's two rows before trusting the fit"
        );
    }
    std::fs::write(&saved, format!("{}\n", fit.ranges))
        .with_context(|| format!("writing {}", saved.display()))?;
    let mut rows = Vec::new();
    for (side, ranges) in [(&rainy, None), (&clean, Some(&fit.ranges))] {
        let crops: Vec<RgbImage> = (0..side.len() * 4)
            .filter_map(|k| crop_image(&side[k % side.len()], ranges, &mut rng))
            .take(SHEET)
            .collect();
        rows.push(images::side_by_side(&crops.iter().collect::<Vec<_>>()));
    }
    let sheet = run.join("rain-fit.png");
    images::write_rows(&rows, &sheet)?;
    eprintln!(
        "{}: the camera's rain (top) and the fitted rain (bottom)",
        sheet.display()
    );
    Ok(Some(fit.ranges))
}
