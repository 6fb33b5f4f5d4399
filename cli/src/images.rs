//! Image files: finding, loading, sheets, progress bars.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Image files named directly or found (not recursively) in the given folders, sorted by name.
pub fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading folder {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if input.exists() {
            files.push(input.clone());
        } else {
            anyhow::bail!("{} does not exist", input.display());
        }
    }
    Ok(files)
}

pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Loads any supported image as 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("reading image {}", path.display()))?
        .to_rgb8())
}

/// Planar RGB (`3 * height * width` values in [0, 1]) of an 8-bit image: what the renderers
/// and the rain fit work on.
pub fn to_planar(img: &RgbImage) -> Vec<f32> {
    let n = (img.width() * img.height()) as usize;
    let mut planes = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            planes[c * n + i] = f32::from(p.0[c]) / 255.0;
        }
    }
    planes
}

/// The 8-bit image of planar RGB in [0, 1] (rounded; values outside saturate).
pub fn from_planar(planes: &[f32], w: usize, h: usize) -> RgbImage {
    let n = w * h;
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (planes[c * n + i] * 255.0).round() as u8
        }))
    })
}

/// Images placed left to right with a 4-pixel white gap (heights may differ).
pub fn side_by_side(images: &[&RgbImage]) -> RgbImage {
    const GAP: u32 = 4;
    let width =
        images.iter().map(|i| i.width()).sum::<u32>() + GAP * images.len().saturating_sub(1) as u32;
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut sheet = RgbImage::from_pixel(width.max(1), height.max(1), image::Rgb([255, 255, 255]));
    let mut x = 0;
    for img in images {
        image::imageops::replace(&mut sheet, *img, x as i64, 0);
        x += img.width() + GAP;
    }
    sheet
}

/// Writes `rows` stacked top to bottom with a 4-pixel white gap (nothing when empty).
pub fn write_rows(rows: &[RgbImage], path: &Path) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows.iter().map(|r| r.width()).max().unwrap_or(1);
    let height = rows.iter().map(|r| r.height() + 4).sum::<u32>();
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut y = 0;
    for r in rows {
        image::imageops::replace(&mut sheet, r, 0, y as i64);
        y += r.height() + 4;
    }
    sheet
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// A progress bar with rate and ETA.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
