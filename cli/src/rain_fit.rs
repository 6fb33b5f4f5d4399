//! Fits the renderer's streaks to a camera's rainy frames for `nlcl adapt`
//! ([`nlcl::rain_fit`]), keeps the fit in the run folder (`rain-fit.txt`: the ranges;
//! `rain-fit-styles.txt`: the joint fit, one style per line; both reused on resume) and writes
//! a sheet to look at: the camera's rainy crops above clean crops with the fitted rain.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use nlcl::rain_fit::{CROP, FitError, FitOptions, Planar, fit_rain, random_crop};
use nlcl::rng::Rng;
use nlcl::synthetic_rain::{StreakRanges, parse_streak_ranges_list, render_streaks};

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

/// What the fit hands the trainer: the ranges of each setting drawn independently, or the
/// joint fit's styles, one drawn whole per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FitForm {
    Ranges,
    Styles,
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

/// The rain fitted to `rainy` (rendered on `clean` to compare) in the `form` asked for (one
/// or more ranges, as `--rain-fit` takes them), kept in the run folder and read from there when
/// an earlier run of the same command wrote it. `None` (with a printed reason) when the frames
/// are too small to measure or show no prevailing streak direction.
pub fn fitted_rain(
    rainy: &[PathBuf],
    clean: &[PathBuf],
    streakiest: f32,
    form: FitForm,
    run: &Path,
) -> Result<Option<Vec<StreakRanges>>> {
    let saved = run.join("rain-fit.txt");
    let saved_styles = run.join("rain-fit-styles.txt");
    if saved.is_file() {
        let read = |path: &Path| -> Result<Vec<StreakRanges>> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_streak_ranges_list(&text)
                .with_context(|| format!("{} (delete it to fit again)", path.display()))
        };
        let ranges = read(&saved)?;
        eprintln!("rain fitted earlier ({}): {}", saved.display(), ranges[0]);
        if form == FitForm::Styles {
            if saved_styles.is_file() {
                return read(&saved_styles).map(Some);
            }
            eprintln!(
                "note: {} is missing (a fit of an earlier version): using the ranges",
                saved_styles.display()
            );
        }
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
    let styles: String = fit.styles.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(&saved_styles, styles)
        .with_context(|| format!("writing {}", saved_styles.display()))?;
    let chosen = match form {
        FitForm::Styles if !fit.styles.is_empty() => fit.styles,
        _ => vec![fit.ranges],
    };
    let mut rows = Vec::new();
    for (side, fitted) in [(&rainy, None), (&clean, Some(&chosen))] {
        let crops: Vec<RgbImage> = (0..side.len() * 4)
            .filter_map(|k| {
                let ranges = fitted.map(|list| &list[rng.below(list.len() as u64) as usize]);
                crop_image(&side[k % side.len()], ranges, &mut rng)
            })
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
    Ok(Some(chosen))
}
