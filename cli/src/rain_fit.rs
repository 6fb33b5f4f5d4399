//! Fits the renderer's streaks to a camera's rainy frames for `nlcl adapt`
//! ([`nlcl::rain_fit`]), keeps the fit in the run folder (`rain-fit.txt`: the ranges;
//! `rain-fit-styles.txt`: the joint fit, one style per line; both reused on resume) and writes
//! a sheet to look at: the camera's rainy crops above clean crops with the fitted rain.
//! On a still camera's clips the fit can measure what the frames add over their temporal
//! median instead of the frames themselves ([`nlcl::transients`]): faint streaks that the
//! scene's texture hides in one frame stand out there.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use nlcl::rain_fit::{CROP, FitError, FitOptions, Planar, fit_rain, random_crop};
use nlcl::rng::Rng;
use nlcl::synthetic_rain::{StreakRanges, parse_streak_ranges_list, render_streaks};
use nlcl::transients::{MIN_FRAMES, Transients, still_camera_transients};

use crate::images;

/// At most this many images of each side are measured (evenly spread over the footage).
const MAX_IMAGES: usize = 200;
/// At most this many frames of each clip are taken for its transients (evenly spread)...
const MAX_CLIP_FRAMES: usize = 64;
/// ...and at most this many pixels in all (64 frames of 640x360; 7 frames of 1920x1080), as
/// each frame is held three times over.
const MAX_CLIP_PIXELS: usize = 15_000_000;
/// Crops per frame measured on transients (they share the frame's streak direction).
const TRANSIENT_CROPS: usize = 8;
/// Gain on the sheet's transient crops: faint rain is a few levels, too dark to see as is.
const TRANSIENT_GAIN: f32 = 4.0;
/// Crops per row of the sheet.
const SHEET: usize = 4;
/// Widest spread of fitted angles (degrees) taken as a prevailing streak direction.
const MAX_ANGLE_SPREAD: f32 = 90.0;

/// Up to `max` images of `inputs`, evenly spread, as (planar, width, height).
fn load(inputs: &[PathBuf], max: usize) -> Result<Vec<(Vec<f32>, usize, usize)>> {
    load_files(&images::collect(inputs)?, max)
}

/// Up to `max` of `files`, evenly spread, as (planar, width, height).
fn load_files(files: &[PathBuf], max: usize) -> Result<Vec<(Vec<f32>, usize, usize)>> {
    let step = files.len().div_ceil(max).max(1);
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

/// What the fit measures: each frame on its own (`spatial`), what a still camera's frames add
/// over their temporal median (`temporal`), or `auto`: temporal when every rainy input is a
/// folder of one still camera's frames (a video is sampled into one), else spatial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FitSource {
    Auto,
    Spatial,
    Temporal,
}

/// The transients of every rainy input, each a still camera's clip, as images (rainy side:
/// what frames add; clean side: what they lose); `Err` with the reason when an input is not
/// such a clip.
fn clip_transients(rainy: &[PathBuf]) -> Result<Vec<Transients>> {
    let max = MAX_CLIP_FRAMES.min(MAX_IMAGES / rainy.len().max(1));
    rainy
        .iter()
        .map(|input| {
            if !input.is_dir() {
                anyhow::bail!(
                    "{} is not a clip (a folder of frames or a video)",
                    input.display()
                );
            }
            let files = images::collect(std::slice::from_ref(input))?;
            let pixels = match files.first().map(image::image_dimensions) {
                Some(Ok((w, h))) => (w as usize * h as usize).max(1),
                _ => 1,
            };
            let max = max.min(MAX_CLIP_PIXELS / pixels).max(MIN_FRAMES);
            let frames = load_files(&files, max)?;
            still_camera_transients(&views(&frames)).with_context(|| format!("{}", input.display()))
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

/// A `CROP`-square crop of an image as an 8-bit image, with `ranges` rendered on it if given,
/// its values times `gain`.
fn crop_image(
    img: &Planar,
    ranges: Option<&StreakRanges>,
    gain: f32,
    rng: &mut Rng,
) -> Option<RgbImage> {
    let mut crop = random_crop(img, rng)?;
    if let Some(r) = ranges {
        render_streaks(&mut crop, CROP, CROP, r, rng);
    }
    crop.iter_mut().for_each(|v| *v = (*v * gain).min(1.0));
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
    source: FitSource,
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
    let transients = match source {
        FitSource::Spatial => None,
        FitSource::Temporal => Some(clip_transients(rainy).context(
            "--fit-source temporal needs each rainy input to be one still camera's clip",
        )?),
        FitSource::Auto => match clip_transients(rainy) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("fitting each frame on its own (not a still camera's clip: {e:#})");
                None
            }
        },
    };
    let (rainy, clean) = match &transients {
        Some(_) => (Vec::new(), Vec::new()),
        None => (load(rainy, MAX_IMAGES)?, load(clean, MAX_IMAGES)?),
    };
    // Temporal: the rain is what frames add over their temporal median; candidates are drawn
    // on what they lose (noise, compression, motion), which holds no rain.
    let (rainy_views, clean_views): (Vec<Planar>, Vec<Planar>) = match &transients {
        Some(clips) => {
            let motion: Vec<String> = clips.iter().map(|c| format!("{:.2}", c.motion)).collect();
            eprintln!(
                "fitting what the frames add over their temporal median (a still camera; motion {} levels)",
                motion.join(", ")
            );
            (
                clips.iter().flat_map(Transients::brighter).collect(),
                clips.iter().flat_map(Transients::darker).collect(),
            )
        }
        None => (views(&rainy), views(&clean)),
    };
    let gain = if transients.is_some() {
        TRANSIENT_GAIN
    } else {
        1.0
    };
    let mut rng = Rng::new(1);
    let options = FitOptions {
        streakiest,
        // A still camera's transients: several crops of a frame share its rain's direction.
        frame_direction: transients.is_some(),
        crops_per_frame: if transients.is_some() {
            TRANSIENT_CROPS
        } else {
            FitOptions::default().crops_per_frame
        },
        ..FitOptions::default()
    };
    let fit = match fit_rain(&rainy_views, &clean_views, options, &mut rng) {
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
        let why = if transients.is_some() {
            "what the frames add over their temporal median shows no rain the fit can draw"
        } else {
            "the streaks are too faint against the scene's texture for the fit to find"
        };
        eprintln!(
            "rain not fitted: no prevailing streak direction ({why}); training on the general \
             renderer alone"
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
    for (side, fitted) in [(&rainy_views, None), (&clean_views, Some(&chosen))] {
        let crops: Vec<RgbImage> = (0..side.len() * 4)
            .filter_map(|k| {
                let ranges = fitted.map(|list| &list[rng.below(list.len() as u64) as usize]);
                crop_image(&side[k % side.len()], ranges, gain, &mut rng)
            })
            .take(SHEET)
            .collect();
        rows.push(images::side_by_side(&crops.iter().collect::<Vec<_>>()));
    }
    let sheet = run.join("rain-fit.png");
    images::write_rows(&rows, &sheet)?;
    let what = if transients.is_some() {
        " (what the frames add and lose over their temporal median, 4x brighter)"
    } else {
        ""
    };
    eprintln!(
        "{}: the camera's rain (top) and the fitted rain (bottom){what}",
        sheet.display()
    );
    Ok(Some(chosen))
}
