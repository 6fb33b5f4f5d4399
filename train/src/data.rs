//! Unpaired image folders, random crops and flips, and procedurally generated clean images for
//! tests and demos.

use std::path::{Path, PathBuf};

use image::{RgbImage, imageops};
use tch::{Kind, Tensor};

use nlcl::haze::{HazeStyle, render_haze};
use nlcl::rng::Rng;
use nlcl::synthetic_rain::{RainStyle, render_rain};

/// File extensions read as images; other files in a folder are ignored silently.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// A file that looked like an image but could not be read.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file (or folder).
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// Images of one domain, decoded once and kept in memory (8-bit RGB).
#[derive(Debug, Default)]
pub struct ImageSet {
    /// Decoded images.
    pub images: Vec<RgbImage>,
    /// Where each came from.
    pub paths: Vec<PathBuf>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(Skipped {
                path: dir.to_path_buf(),
                reason: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Sorted so that runs are reproducible whatever order the file system lists.
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_files(&p, out, skipped);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
}

/// Reads a hold-out list: one path per line, `folder/file.jpg` or a bare file name (`#` starts a
/// comment). Files whose paths end with an entry are left out of training (the validation set).
pub fn read_holdout(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// True when `path` ends with an entry of the hold-out list (whole path components).
pub fn held_out(path: &Path, holdout: &[String]) -> bool {
    holdout.iter().any(|h| path.ends_with(h))
}

/// Loads every image under `dirs` (recursively; a path may also name one image file).
/// Images whose longer side exceeds `max_side` are downscaled to it (0 = never), which keeps
/// memory bounded and brings multi-megapixel web photos nearer the scale of video frames.
/// Unreadable files are returned in the second list, never a panic.
pub fn load_images(dirs: &[PathBuf], max_side: u32) -> (ImageSet, Vec<Skipped>) {
    load_images_except(dirs, max_side, &[])
}

/// [`load_images`] without the files named in `holdout`.
pub fn load_images_except(
    dirs: &[PathBuf],
    max_side: u32,
    holdout: &[String],
) -> (ImageSet, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for d in dirs {
        if d.is_file() {
            files.push(d.clone());
        } else if d.is_dir() {
            collect_files(d, &mut files, &mut skipped);
        } else {
            skipped.push(Skipped {
                path: d.clone(),
                reason: "no such file or folder".into(),
            });
        }
    }
    files.retain(|f| !held_out(f, holdout));
    let mut set = ImageSet::default();
    for f in files {
        match image::open(&f) {
            Ok(img) => {
                let mut img = img.to_rgb8();
                let (w, h) = img.dimensions();
                if w == 0 || h == 0 {
                    skipped.push(Skipped {
                        path: f,
                        reason: "empty image".into(),
                    });
                    continue;
                }
                if max_side > 0 && w.max(h) > max_side {
                    let s = max_side as f32 / w.max(h) as f32;
                    let nw = ((w as f32 * s).round() as u32).max(1);
                    let nh = ((h as f32 * s).round() as u32).max(1);
                    img = imageops::resize(&img, nw, nh, imageops::FilterType::Triangle);
                }
                set.images.push(img);
                set.paths.push(f);
            }
            Err(e) => skipped.push(Skipped {
                path: f,
                reason: e.to_string(),
            }),
        }
    }
    (set, skipped)
}

/// A random `crop` x `crop` window of `img` (upscaled first when smaller than the crop), flipped
/// horizontally with probability 1/2. Returns planar RGB in [0, 1].
pub fn random_crop(img: &RgbImage, crop: u32, flip: bool, rng: &mut Rng) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let up;
    let src = if w < crop || h < crop {
        // Upscale (keeping the aspect ratio) so that the shorter side covers the crop.
        let s = crop as f32 / w.min(h) as f32;
        let nw = ((w as f32 * s).ceil() as u32).max(crop);
        let nh = ((h as f32 * s).ceil() as u32).max(crop);
        up = imageops::resize(img, nw, nh, imageops::FilterType::Triangle);
        &up
    } else {
        img
    };
    let (w, h) = src.dimensions();
    let x0 = rng.below(u64::from(w - crop + 1)) as u32;
    let y0 = rng.below(u64::from(h - crop + 1)) as u32;
    let flip = flip && rng.chance(0.5);
    let n = (crop * crop) as usize;
    let mut out = vec![0f32; 3 * n];
    for y in 0..crop {
        for x in 0..crop {
            let sx = if flip { x0 + crop - 1 - x } else { x0 + x };
            let p = src.get_pixel(sx, y0 + y);
            let i = (y * crop + x) as usize;
            for c in 0..3 {
                out[c * n + i] = f32::from(p[c]) / 255.0;
            }
        }
    }
    out
}

/// Planar RGB in [0, 1] (concatenated for a batch) -> `[N, 3, crop, crop]` in [-1, 1].
pub fn to_tensor(planes: &[f32], n: usize, crop: u32) -> Tensor {
    let c = i64::from(crop);
    Tensor::from_slice(planes)
        .to_kind(Kind::Float)
        .view([n as i64, 3, c, c])
        * 2.0
        - 1.0
}

/// What the synthetic samples get rendered on them.
#[derive(Debug, Clone)]
pub enum Degradation {
    /// Rain of a style (deraining models).
    Rain(RainStyle),
    /// Haze (dehazing models).
    Haze(HazeStyle),
}

impl Degradation {
    /// Renders onto planar RGB `planes` (`3 * h * w`, [0, 1]) in place.
    pub fn render(&self, planes: &mut [f32], w: usize, h: usize, rng: &mut Rng) {
        match self {
            Degradation::Rain(style) => render_rain(planes, w, h, style, rng),
            Degradation::Haze(style) => {
                render_haze(planes, w, h, style, rng);
            }
        }
    }
}

/// Where rainy-domain samples come from.
#[derive(Debug)]
pub struct Domains {
    /// Real rainy images.
    pub rainy: ImageSet,
    /// Clean images (the target domain of the discriminator).
    pub clean: ImageSet,
    /// Clean images to render rain on, on the fly (`--render-rain-on`).
    pub render_on: ImageSet,
    /// Probability of a rendered sample when both real and rendered rain are available.
    pub render_prob: f32,
    /// What is rendered on clean crops: rain (deraining) or haze (dehazing).
    pub degradation: Degradation,
    /// Fraction of synthetic pairs left dry (clean in, clean out), so the model learns to leave
    /// rain-free frames alone.
    pub pair_identity: f32,
    /// Fraction of synthetic pairs whose two sides are JPEG-compressed (quality 30-90), like
    /// the frames of compressed video: the model sees rain under compression artefacts and
    /// learns to keep the artefacts of the scene.
    pub pair_jpeg: f32,
    /// Largest standard deviation, in 8-bit levels, of the Gaussian noise added to the rainy
    /// side of each pair (drawn per pair; 0 = none), which the model is taught to remove.
    pub pair_noise: f32,
    /// Fraction of synthetic pairs whose clean crop is softened before rain is rendered on it
    /// (see [`soften`]), like upscaled or out-of-focus video: so that soft, low-contrast
    /// scenes appear among the dry pairs and under the rain, not only sharp photos.
    pub pair_soften: f32,
    /// Soften only the dry pairs: the rainy pairs keep their sharp photos.
    pub pair_soften_dry_only: bool,
    /// Fraction of synthetic pairs whose clean crop gets thin straight lines drawn across it
    /// (see [`draw_lines`]) before rain is rendered, on both sides of the pair: wires, poles,
    /// window frames and ceiling grids are scene structure the model must keep.
    pub pair_lines: f32,
}

/// A batch of synthetic pairs, planar [0, 1]: rain rendered on a clean crop, and that crop.
#[derive(Debug)]
pub struct PairBatch {
    /// Rendered rainy crops (or the clean crop itself for identity samples).
    pub rainy: Vec<f32>,
    /// The clean crops.
    pub clean: Vec<f32>,
}

impl Domains {
    /// A batch of rainy-domain crops, planar [0, 1].
    pub fn rainy_batch(&self, batch: usize, crop: u32, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * 3 * (crop * crop) as usize);
        for _ in 0..batch {
            let rendered = if self.rainy.is_empty() {
                true
            } else if self.render_on.is_empty() {
                false
            } else {
                rng.chance(self.render_prob)
            };
            if rendered {
                let i = rng.below(self.render_on.len() as u64) as usize;
                let mut planes = random_crop(&self.render_on.images[i], crop, true, rng);
                self.degradation
                    .render(&mut planes, crop as usize, crop as usize, rng);
                out.extend(planes);
            } else {
                let i = rng.below(self.rainy.len() as u64) as usize;
                out.extend(random_crop(&self.rainy.images[i], crop, true, rng));
            }
        }
        out
    }

    /// A batch of synthetic pairs from the `--render-rain-on` images (which must not be empty).
    pub fn pair_batch(&self, batch: usize, crop: u32, rng: &mut Rng) -> PairBatch {
        let len = batch * 3 * (crop * crop) as usize;
        let (mut rainy, mut clean) = (Vec::with_capacity(len), Vec::with_capacity(len));
        for _ in 0..batch {
            let i = rng.below(self.render_on.len() as u64) as usize;
            let mut c = random_crop(&self.render_on.images[i], crop, true, rng);
            // Drawn only when asked for, so runs without it keep their random streams.
            let soften_by = (self.pair_soften > 0.0 && rng.chance(self.pair_soften))
                .then(|| rng.range(1.5, 3.0));
            let dry = rng.chance(self.pair_identity);
            if let Some(factor) = soften_by
                && (dry || !self.pair_soften_dry_only)
            {
                c = soften(&c, crop, factor);
            }
            // Drawn only when asked for, so runs without it keep their random streams.
            if self.pair_lines > 0.0 && rng.chance(self.pair_lines) {
                draw_lines(&mut c, crop, rng);
            }
            let mut o = c.clone();
            if !dry {
                self.degradation
                    .render(&mut o, crop as usize, crop as usize, rng);
            }
            // Drawn only when asked for, so runs without it keep their random streams.
            if self.pair_noise > 0.0 {
                add_noise(&mut o, rng.range(0.0, self.pair_noise) / 255.0, rng);
            }
            if self.pair_jpeg > 0.0 && rng.chance(self.pair_jpeg) {
                let quality = 30 + rng.below(61) as u8;
                let c = jpeg_round_trip(&c, crop, quality);
                rainy.extend(jpeg_round_trip(&o, crop, quality));
                clean.extend(c);
                continue;
            }
            rainy.extend(o);
            clean.extend(c);
        }
        PairBatch { rainy, clean }
    }

    /// A batch of clean-domain crops, planar [0, 1]. Drawn with its own random choices, so it is
    /// unpaired with the rainy batch of the same step even when both come from one folder.
    pub fn clean_batch(&self, batch: usize, crop: u32, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * 3 * (crop * crop) as usize);
        for _ in 0..batch {
            let i = rng.below(self.clean.len() as u64) as usize;
            out.extend(random_crop(&self.clean.images[i], crop, true, rng));
        }
        out
    }
}

/// Planar [0, 1] RGB crop of `side` x `side`, downscaled by `factor` (area-weighted) and
/// upscaled back (bilinear): the softness of video shown larger than it was recorded.
pub fn soften(planes: &[f32], side: u32, factor: f32) -> Vec<f32> {
    let n = (side * side) as usize;
    if planes.len() < 3 * n || factor <= 1.0 {
        return planes.to_vec();
    }
    let img = image::Rgb32FImage::from_fn(side, side, |x, y| {
        let i = (y * side + x) as usize;
        image::Rgb([planes[i], planes[n + i], planes[2 * n + i]])
    });
    let small_side = ((side as f32 / factor).round() as u32).max(1);
    let small = imageops::resize(&img, small_side, small_side, imageops::FilterType::Triangle);
    let back = imageops::resize(&small, side, side, imageops::FilterType::Triangle);
    let mut out = vec![0f32; 3 * n];
    for (i, p) in back.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = p.0[c].clamp(0.0, 1.0);
        }
    }
    out
}

/// Draws thin straight lines across a planar [0, 1] RGB crop of `side` x `side`, in place: one
/// or two families (a grid) of 1-6 parallel lines, 1-2.5 pixels wide and anti-aliased, bright or
/// dark, spaced 4-24 pixels apart, the first family half the time within 25 degrees of
/// vertical (where rain falls). They cross the whole crop at one intensity, as wires, poles,
/// window frames, lane markings and ceiling grids do, and rain streaks do not.
pub fn draw_lines(planes: &mut [f32], side: u32, rng: &mut Rng) {
    let n = (side * side) as usize;
    if planes.len() < 3 * n {
        return;
    }
    let families = if rng.chance(0.5) { 2 } else { 1 };
    let mut angle = if rng.chance(0.5) {
        std::f32::consts::FRAC_PI_2 + rng.range(-25.0, 25.0).to_radians()
    } else {
        rng.range(0.0, std::f32::consts::PI)
    };
    let centre = side as f32 / 2.0;
    for _ in 0..families {
        let count = 1 + rng.below(6) as i32;
        let spacing = rng.range(4.0, 24.0);
        let half_width = rng.range(1.0, 2.5) / 2.0;
        let strength = rng.range(0.3, 1.0);
        let level = if rng.chance(0.6) {
            rng.range(0.7, 1.0)
        } else {
            rng.range(0.0, 0.3)
        };
        let tint = [0, 1, 2].map(|_| (level + rng.range(-0.05, 0.05)).clamp(0.0, 1.0));
        // Lines k = first .. first + count - 1 of the family, at offsets k * spacing from the
        // crop's centre along the normal (cos, sin) of the lines' direction.
        let first = -(count / 2) + rng.below(3) as i32 - 1;
        let offset = rng.range(-spacing / 2.0, spacing / 2.0);
        let (nx, ny) = (angle.sin(), -angle.cos());
        for y in 0..side as usize {
            for x in 0..side as usize {
                let d = (x as f32 - centre) * nx + (y as f32 - centre) * ny - offset;
                let k = (d / spacing).round() as i32;
                if k < first || k >= first + count {
                    continue;
                }
                let r = (d - k as f32 * spacing).abs();
                let cover = (half_width + 0.5 - r).clamp(0.0, 1.0) * strength;
                if cover > 0.0 {
                    let i = y * side as usize + x;
                    for (c, t) in tint.iter().enumerate() {
                        let v = &mut planes[c * n + i];
                        *v += (t - *v) * cover;
                    }
                }
            }
        }
        // A grid's second family crosses the first at a right angle, give or take 10 degrees.
        angle += std::f32::consts::FRAC_PI_2 + rng.range(-10.0, 10.0).to_radians();
    }
}

/// Adds Gaussian noise of standard deviation `sigma` (in [0, 1] units) to every sample,
/// clamped to [0, 1].
pub fn add_noise(planes: &mut [f32], sigma: f32, rng: &mut Rng) {
    if sigma <= 0.0 {
        return;
    }
    for v in planes {
        *v = (*v + sigma * rng.normal()).clamp(0.0, 1.0);
    }
}

/// Planar [0, 1] RGB crop -> JPEG at `quality` -> planar [0, 1] (the crop unchanged if the
/// codec fails, which it does not for valid sizes).
pub fn jpeg_round_trip(planes: &[f32], side: u32, quality: u8) -> Vec<f32> {
    let n = (side * side) as usize;
    let img = RgbImage::from_fn(side, side, |x, y| {
        let i = (y * side + x) as usize;
        image::Rgb([0, 1, 2].map(|c| (planes[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8))
    });
    let mut bytes = Vec::new();
    let encoded =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(&img);
    let decoded = encoded
        .ok()
        .and_then(|()| image::load_from_memory(&bytes).ok())
        .map(|d| d.to_rgb8());
    match decoded {
        Some(d) if d.dimensions() == (side, side) => {
            let mut out = vec![0f32; 3 * n];
            for (i, px) in d.pixels().enumerate() {
                for c in 0..3 {
                    out[c * n + i] = f32::from(px[c]) / 255.0;
                }
            }
            out
        }
        _ => planes.to_vec(),
    }
}

/// A procedurally generated "clean photo": smooth gradients, a few flat shapes with edges and a
/// sinusoidal texture, so tests and demos have structured content without shipping images.
pub fn synthetic_clean(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::new(seed);
    let base: [f32; 3] = [
        rng.range(0.1, 0.6),
        rng.range(0.1, 0.6),
        rng.range(0.1, 0.6),
    ];
    let grad: [f32; 3] = [
        rng.range(-0.3, 0.3),
        rng.range(-0.3, 0.3),
        rng.range(-0.3, 0.3),
    ];
    let freq = rng.range(0.05, 0.3);
    let shapes: Vec<(f32, f32, f32, [f32; 3], bool)> = (0..6)
        .map(|_| {
            (
                rng.range(0.0, w as f32),
                rng.range(0.0, h as f32),
                rng.range(3.0, (w.min(h) as f32 / 3.0).max(4.0)),
                [rng.f32(), rng.f32(), rng.f32()],
                rng.chance(0.5),
            )
        })
        .collect();
    RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let t = yf / h.max(1) as f32;
        let tex = 0.05 * (xf * freq).sin() * (yf * freq * 0.7).cos();
        let mut px = [0f32; 3];
        for c in 0..3 {
            px[c] = base[c] + grad[c] * t + tex;
        }
        for (cx, cy, r, col, square) in &shapes {
            let inside = if *square {
                (xf - cx).abs() < *r && (yf - cy).abs() < *r
            } else {
                (xf - cx).powi(2) + (yf - cy).powi(2) < r * r
            };
            if inside {
                px = *col;
            }
        }
        image::Rgb(px.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}
