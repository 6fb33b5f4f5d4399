//! Fitting the rain renderer to one camera's footage, without ground truth.
//!
//! Each camera sees its own rain: thin faint streaks in compressed video, wide bright ones
//! under a street lamp, one wind direction. [`fit_rain`] measures the streaks of rainy frames
//! and finds the [`StreakRanges`] whose rendered rain measures alike on clean images. A crop's
//! bright thin structure is its morphological top-hat; its streak angle is the direction along
//! which line means of the top-hat keep the most energy (isotropic scene texture keeps the same
//! in every direction); the features are how many pixels line up along that direction more
//! than across it (by level), how much more energy it keeps, and the autocorrelation of that
//! structure along and across it (length and width). Candidates are drawn from broad ranges,
//! rendered on clean crops at the angle of a rainy crop and measured the same way; each rainy
//! crop takes its nearest candidates, and the fitted ranges span those neighbours, so footage
//! whose rain varies gets varied ranges. Scene texture is measured on both sides alike.
//! `nlcl adapt` then trains on rain rendered from the fit.

use crate::rng::Rng;
use crate::synthetic_rain::{StreakRanges, render_streaks};

/// Side of the square crops measured.
pub const CROP: usize = 128;
/// Top-hat radius: bright structure narrower than `2 * RADIUS + 1` pixels counts as streaks.
const RADIUS: usize = 3;
/// Top-hat thresholds (8-bit levels) of the coverage features.
const LEVELS: [f32; 6] = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
/// Lags (pixels) of the autocorrelation along and across the streaks.
const ALONG: [f32; 5] = [2.0, 4.0, 8.0, 16.0, 32.0];
const ACROSS: [f32; 3] = [1.0, 2.0, 3.0];
const FEATURES: usize = LEVELS.len() + 1 + ALONG.len() + ACROSS.len();

/// An image as planar RGB (`3 * height * width` values in [0, 1]).
#[derive(Debug, Clone, Copy)]
pub struct Planar<'a> {
    pub planes: &'a [f32],
    pub width: usize,
    pub height: usize,
}

/// How hard [`fit_rain`] searches.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Candidate rain settings rendered and measured.
    pub candidates: usize,
    /// Crops measured per rainy frame (at most).
    pub crops_per_frame: usize,
    /// Nearest candidates each rainy crop takes.
    pub neighbours: usize,
    /// Share of the rainy crops, the most anisotropic first, whose neighbours set the ranges
    /// (crops where streaks line up least are mostly scene texture).
    pub streakiest: f32,
    /// The crops of a frame share one streak direction, where the median of their profiles
    /// peaks, instead of each taking its own: for the transients of a still camera
    /// ([`crate::transients`]), where rain is most of what changes but an edge that moved
    /// can set one crop's angle. Wants several crops per frame.
    pub frame_direction: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            candidates: 1200,
            crops_per_frame: 2,
            neighbours: 4,
            // Chosen on the validation set (models/MODELS.md, "Adapting to one camera").
            streakiest: 0.5,
            frame_direction: false,
        }
    }
}

/// Most styles [`RainFit::styles`] keeps.
pub const MAX_STYLES: usize = 64;

/// Degrees either side of a crop's own angle in its style (the candidates' angles scatter
/// about as much around it).
const STYLE_ANGLE: f32 = 3.0;

/// What [`fit_rain`] found.
#[derive(Debug, Clone)]
pub struct RainFit {
    /// The fitted ranges (render them with [`render_streaks`]): each setting's spread over
    /// the footage, drawn independently of the others.
    pub ranges: StreakRanges,
    /// The same fit kept jointly: one narrow [`StreakRanges`] per streaky crop (its own angle,
    /// and the span of its nearest candidates' settings), at most [`MAX_STYLES`] evenly
    /// chosen. Drawing one of these per image keeps the settings that go together (long
    /// sparse streaks in one shot, short dense ones in another) instead of mixing them.
    pub styles: Vec<StreakRanges>,
    /// Rainy crops measured.
    pub crops: usize,
    /// Share of the rainy crops' pixels whose top-hat lines up along the streak direction at
    /// least 8 levels more than across it, and the same on the clean crops: far apart when the
    /// footage shows streaks.
    pub streak_share: (f32, f32),
}

/// Why a fit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("no rainy frames to fit the rain to")]
    NoRainy,
    #[error("no clean images to render candidate rain on")]
    NoClean,
    #[error("every {kind} image is smaller than {CROP}x{CROP} pixels (or truncated)")]
    TooSmall { kind: &'static str },
}

/// Luma of a `CROP`-square crop at `(x0, y0)`.
fn luma_crop(img: &Planar, x0: usize, y0: usize) -> Vec<f32> {
    let n = img.width * img.height;
    let mut out = Vec::with_capacity(CROP * CROP);
    for y in y0..y0 + CROP {
        for x in x0..x0 + CROP {
            let i = y * img.width + x;
            out.push(
                0.299 * img.planes[i] + 0.587 * img.planes[n + i] + 0.114 * img.planes[2 * n + i],
            );
        }
    }
    out
}

/// Luma of a `CROP`-square planar RGB crop.
fn square_luma(planes: &[f32]) -> Vec<f32> {
    let square = Planar {
        planes,
        width: CROP,
        height: CROP,
    };
    luma_crop(&square, 0, 0)
}

/// Planar RGB of a `CROP`-square crop (for rendering on).
fn rgb_crop(img: &Planar, x0: usize, y0: usize) -> Vec<f32> {
    let n = img.width * img.height;
    let mut out = Vec::with_capacity(3 * CROP * CROP);
    for c in 0..3 {
        for y in y0..y0 + CROP {
            let row = c * n + y * img.width;
            out.extend_from_slice(&img.planes[row + x0..row + x0 + CROP]);
        }
    }
    out
}

/// Separable square minimum (or maximum) filter of `radius` over one plane of `w` x `h`.
pub(crate) fn extremum(v: &[f32], w: usize, h: usize, radius: usize, max: bool) -> Vec<f32> {
    let pick = |a: f32, b: f32| if max { a.max(b) } else { a.min(b) };
    let mut t = vec![0f32; v.len()];
    for y in 0..h {
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(radius), (x + radius).min(w - 1));
            t[y * w + x] = (lo..=hi).map(|i| v[y * w + i]).reduce(pick).unwrap_or(0.0);
        }
    }
    let mut out = vec![0f32; v.len()];
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(radius), (y + radius).min(h - 1));
        for x in 0..w {
            out[y * w + x] = (lo..=hi).map(|j| t[j * w + x]).reduce(pick).unwrap_or(0.0);
        }
    }
    out
}

/// White top-hat: the image less its morphological opening (bright thin structure).
fn top_hat(y: &[f32]) -> Vec<f32> {
    let opened = extremum(
        &extremum(y, CROP, CROP, RADIUS, false),
        CROP,
        CROP,
        RADIUS,
        true,
    );
    y.iter()
        .zip(&opened)
        .map(|(a, b)| (a - b).max(0.0))
        .collect()
}

/// Normalised autocorrelation of `r` (mean removed) at the shift `(dx, dy)`.
fn autocorrelation(r: &[f32], dx: i64, dy: i64) -> f32 {
    let c = CROP as i64;
    let (mut num, mut a2, mut b2) = (0f64, 0f64, 0f64);
    for y in 0.max(-dy)..c.min(c - dy) {
        for x in 0.max(-dx)..c.min(c - dx) {
            let a = f64::from(r[(y * c + x) as usize]);
            let b = f64::from(r[((y + dy) * c + x + dx) as usize]);
            num += a * b;
            a2 += a * a;
            b2 += b * b;
        }
    }
    if a2 <= 0.0 || b2 <= 0.0 {
        0.0
    } else {
        (num / (a2 * b2).sqrt()) as f32
    }
}

/// Taps of the line means (pixels, centred): longer than streaks are wide, shorter than
/// most are long.
const TAPS: i64 = 9;

/// Mean of `r` over [`TAPS`] pixels along the direction `(sa, ca)` (x, y steps) through each
/// pixel (nearest pixels; those outside the crop left out).
fn line_mean(r: &[f32], sa: f32, ca: f32) -> Vec<f32> {
    let c = CROP as i64;
    let offsets: Vec<(i64, i64)> = (-(TAPS / 2)..=TAPS / 2)
        .map(|t| {
            (
                (t as f32 * sa).round() as i64,
                (t as f32 * ca).round() as i64,
            )
        })
        .collect();
    let mut out = vec![0f32; r.len()];
    for y in 0..c {
        for x in 0..c {
            let (mut sum, mut count) = (0f32, 0f32);
            for &(dx, dy) in &offsets {
                let (u, v) = (x + dx, y + dy);
                if u >= 0 && v >= 0 && u < c && v < c {
                    sum += r[(v * c + u) as usize];
                    count += 1.0;
                }
            }
            out[(y * c + x) as usize] = sum / count.max(1.0);
        }
    }
    out
}

/// Angles (degrees from vertical) the streak direction is searched over.
const ANGLES: [f32; 31] = {
    let mut a = [0f32; 31];
    let mut k = 0;
    while k < 31 {
        a[k] = (k as f32 - 15.0) * 4.0;
        k += 1;
    }
    a
};

/// How much energy line means of a crop's top-hat `r` keep along each of [`ANGLES`], relative
/// to their mean over the angles: isotropic scene texture keeps the same in every direction,
/// streaks the most along themselves.
fn energy_profile(r: &[f32]) -> [f32; 31] {
    let mut e = [0f32; 31];
    for (v, deg) in e.iter_mut().zip(ANGLES) {
        let (sa, ca) = deg.to_radians().sin_cos();
        *v = line_mean(r, sa, ca).iter().map(|v| v * v).sum::<f32>();
    }
    let mean = e.iter().sum::<f32>() / e.len() as f32;
    e.map(|v| v / mean.max(1e-12))
}

/// The angle where `profile` peaks (a parabola through the best grid angle and its
/// neighbours).
fn peak_angle(profile: &[f32; 31]) -> f32 {
    let best = profile
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    if best == 0 || best + 1 == profile.len() {
        return ANGLES[best];
    }
    let (l, m, r) = (profile[best - 1], profile[best], profile[best + 1]);
    let denom = l - 2.0 * m + r;
    let shift = if denom < 0.0 {
        0.5 * (l - r) / denom
    } else {
        0.0
    };
    ANGLES[best] + 4.0 * shift.clamp(-0.5, 0.5)
}

/// Features of one crop's luma with its streaks at `angle` degrees from vertical (positive
/// leaning right going down, as [`StreakRanges::angle`]): how many pixels line up along that
/// direction more than across it, by level; how much more energy the direction keeps; and
/// the autocorrelation of that oriented structure along and across it (length and width).
fn measure_at(r: &[f32], angle: f32) -> [f32; FEATURES] {
    let (sa, ca) = angle.to_radians().sin_cos();
    let along = line_mean(r, sa, ca);
    let across = line_mean(r, ca, -sa);
    let o: Vec<f32> = along
        .iter()
        .zip(&across)
        .map(|(a, b)| (a - b).max(0.0))
        .collect();
    let n = o.len() as f32;
    let mut f = [0f32; FEATURES];
    for (k, t) in LEVELS.iter().enumerate() {
        let share = o.iter().filter(|&&v| v * 255.0 > *t).count() as f32 / n;
        f[k] = (share + 1e-4).ln();
    }
    let e = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>() + 1e-9;
    f[LEVELS.len()] = (e(&along) / e(&across)).ln();
    // Autocorrelation of the top-hat where it lines up (o > 0), mean removed.
    let masked: Vec<f32> = r
        .iter()
        .zip(&o)
        .map(|(v, w)| if *w > 0.0 { *v } else { 0.0 })
        .collect();
    let mean = masked.iter().sum::<f32>() / n;
    let centred: Vec<f32> = masked.iter().map(|v| v - mean).collect();
    let base = LEVELS.len() + 1;
    for (k, d) in ALONG.iter().enumerate() {
        let (dx, dy) = ((d * sa).round(), (d * ca).round());
        f[base + k] = autocorrelation(&centred, dx as i64, dy as i64);
    }
    for (k, d) in ACROSS.iter().enumerate() {
        let (dx, dy) = ((d * ca).round(), (-d * sa).round());
        f[base + ALONG.len() + k] = autocorrelation(&centred, dx as i64, dy as i64);
    }
    f
}

/// Features and streak angle of a crop whose angle is unknown.
fn measure(y: &[f32]) -> ([f32; FEATURES], f32) {
    let r = top_hat(y);
    let angle = peak_angle(&energy_profile(&r));
    (measure_at(&r, angle), angle)
}

/// Whether `img` holds a `CROP`-square crop (and all its planes).
fn big_enough(img: &Planar) -> bool {
    img.width >= CROP && img.height >= CROP && img.planes.len() >= 3 * img.width * img.height
}

/// Random `CROP`-square crop positions of `img` (`None` when it is too small).
fn crop_at(img: &Planar, rng: &mut Rng) -> Option<(usize, usize)> {
    if !big_enough(img) {
        return None;
    }
    let x0 = rng.below((img.width - CROP + 1) as u64) as usize;
    let y0 = rng.below((img.height - CROP + 1) as u64) as usize;
    Some((x0, y0))
}

/// A random `CROP`-square crop of `img` as planar RGB (`None` when `img` is too small): what
/// the fit measures, for showing it.
pub fn random_crop(img: &Planar, rng: &mut Rng) -> Option<Vec<f32>> {
    crop_at(img, rng).map(|(x0, y0)| rgb_crop(img, x0, y0))
}

/// One candidate: its settings (angle, length, coverage, brightness, blur passes).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    length: f32,
    coverage: f32,
    brightness: f32,
    blur: u32,
}

/// The `q`-quantile of `v` (sorted in place; 0 when empty).
fn quantile(v: &mut [f32], q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let i = ((v.len() - 1) as f32 * q).round() as usize;
    v[i]
}

/// Fits [`StreakRanges`] to the streaks of `rainy` frames, rendering candidates on `clean`.
pub fn fit_rain(
    rainy: &[Planar],
    clean: &[Planar],
    options: FitOptions,
    rng: &mut Rng,
) -> Result<RainFit, FitError> {
    if rainy.is_empty() {
        return Err(FitError::NoRainy);
    }
    if clean.is_empty() {
        return Err(FitError::NoClean);
    }
    let mut hats = Vec::new();
    let mut frame_of = Vec::new();
    for (frame, img) in rainy.iter().enumerate() {
        for _ in 0..options.crops_per_frame.max(1) {
            if let Some((x0, y0)) = crop_at(img, rng) {
                let r = top_hat(&luma_crop(img, x0, y0));
                let profile = energy_profile(&r);
                hats.push((r, profile));
                frame_of.push(frame);
            }
        }
    }
    if hats.is_empty() {
        return Err(FitError::TooSmall { kind: "rainy" });
    }
    // Each crop's angle from its own profile plus the footage's mean profile: where a crop's
    // streaks are too faint to stand out from its texture, the rain of the whole footage (one
    // wind, mostly) decides; a crop with clear streaks of its own keeps their angle.
    let mut pooled = [0f32; 31];
    for (_, p) in &hats {
        for (a, b) in pooled.iter_mut().zip(p) {
            *a += b / hats.len() as f32;
        }
    }
    // Per frame, the median over its crops of each angle's profile value: robust to one crop
    // whose edge dominates.
    let frame_angle = |frame: usize| {
        let profiles: Vec<&[f32; 31]> = hats
            .iter()
            .zip(&frame_of)
            .filter(|(_, f)| **f == frame)
            .map(|((_, p), _)| p)
            .collect();
        let median: [f32; 31] = std::array::from_fn(|k| {
            let mut v: Vec<f32> = profiles.iter().map(|p| p[k]).collect();
            quantile(&mut v, 0.5)
        });
        peak_angle(&median)
    };
    let frame_angles: Vec<f32> = if options.frame_direction {
        (0..rainy.len()).map(frame_angle).collect()
    } else {
        Vec::new()
    };
    let targets: Vec<([f32; FEATURES], f32)> = hats
        .iter()
        .zip(&frame_of)
        .map(|((r, p), &frame)| {
            let angle = if options.frame_direction {
                frame_angles[frame]
            } else {
                let both: [f32; 31] = std::array::from_fn(|k| p[k] + pooled[k]);
                peak_angle(&both)
            };
            (measure_at(r, angle), angle)
        })
        .collect();
    let usable: Vec<&Planar> = clean.iter().filter(|c| big_enough(c)).collect();
    if usable.is_empty() {
        return Err(FitError::TooSmall { kind: "clean" });
    }
    let streak_share = |f: &[f32; FEATURES]| f[2].exp() - 1e-4;
    let rainy_share =
        targets.iter().map(|(f, _)| streak_share(f)).sum::<f32>() / targets.len() as f32;
    let mut clean_share = 0f32;
    let mut candidates = Vec::with_capacity(options.candidates);
    for k in 0..options.candidates.max(1) {
        let img = usable[k % usable.len()];
        let Some((x0, y0)) = crop_at(img, rng) else {
            continue;
        };
        let mut planes = rgb_crop(img, x0, y0);
        if k < usable.len().min(64) {
            clean_share += streak_share(&measure(&square_luma(&planes)).0);
        }
        // Each candidate takes the angle of a rainy crop and is measured along it, so that
        // orientation is matched by construction and the features compare streak shapes.
        let angle = (targets[rng.below(targets.len() as u64) as usize].1 + rng.normal() * 2.0)
            .clamp(-60.0, 60.0);
        let c = Candidate {
            length: 4.0 * 25f32.powf(rng.f32()),
            coverage: 0.003 * 130f32.powf(rng.f32()),
            brightness: rng.range(0.05, 1.0),
            blur: rng.below(4) as u32,
        };
        let ranges = StreakRanges {
            angle: (angle, angle),
            length: (c.length, c.length),
            coverage: (c.coverage, c.coverage),
            brightness: (c.brightness, c.brightness),
            blur: (c.blur, c.blur),
        };
        render_streaks(&mut planes, CROP, CROP, &ranges, rng);
        candidates.push((measure_at(&top_hat(&square_luma(&planes)), angle), c));
    }
    clean_share /= usable.len().min(64).min(options.candidates.max(1)) as f32;
    // Standardise each feature by its spread over the candidates.
    let mut scale = [1f32; FEATURES];
    for (j, s) in scale.iter_mut().enumerate() {
        let m = candidates.iter().map(|(f, _)| f[j]).sum::<f32>() / candidates.len() as f32;
        let var = candidates
            .iter()
            .map(|(f, _)| (f[j] - m).powi(2))
            .sum::<f32>()
            / candidates.len() as f32;
        *s = 1.0 / var.sqrt().max(1e-6);
    }
    let k = options.neighbours.clamp(1, candidates.len());
    let mut picked: Vec<Candidate> = Vec::new();
    let mut order: Vec<(f32, usize)> = Vec::with_capacity(candidates.len());
    // The crops that set the ranges: the most anisotropic share (the others are mostly scene).
    let mut anisotropy: Vec<f32> = targets.iter().map(|(f, _)| f[LEVELS.len()]).collect();
    let cut = quantile(&mut anisotropy, 1.0 - options.streakiest.clamp(0.01, 1.0));
    let mut styles = Vec::new();
    for (f, angle) in targets.iter().filter(|(f, _)| f[LEVELS.len()] >= cut) {
        order.clear();
        order.extend(candidates.iter().enumerate().map(|(i, (g, _))| {
            let d: f32 = (0..FEATURES)
                .map(|j| ((f[j] - g[j]) * scale[j]).powi(2))
                .sum();
            (d, i)
        }));
        order.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let near: Vec<Candidate> = order[..k].iter().map(|&(_, i)| candidates[i].1).collect();
        let span = |get: fn(&Candidate) -> f32| {
            near.iter()
                .map(get)
                .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let blur = span(|c| c.blur as f32);
        styles.push(StreakRanges {
            angle: (
                (angle - STYLE_ANGLE).max(-90.0),
                (angle + STYLE_ANGLE).min(90.0),
            ),
            length: span(|c| c.length),
            coverage: span(|c| c.coverage),
            brightness: span(|c| c.brightness),
            blur: (blur.0 as u32, blur.1 as u32),
        });
        picked.extend(near);
    }
    if styles.len() > MAX_STYLES {
        let step = styles.len() as f32 / MAX_STYLES as f32;
        styles = (0..MAX_STYLES)
            .map(|i| styles[(i as f32 * step) as usize].clone())
            .collect();
    }
    let range = |v: &mut Vec<f32>| (quantile(v, 0.1), quantile(v, 0.9));
    // Angles from the streakiest half of the crops at most (the rest are mostly scene texture).
    let median = quantile(&mut anisotropy, 0.5).max(cut);
    let mut angles: Vec<f32> = targets
        .iter()
        .filter(|(f, _)| f[LEVELS.len()] >= median)
        .map(|(_, a)| *a)
        .collect();
    let mut lengths: Vec<f32> = picked.iter().map(|c| c.length).collect();
    let mut coverages: Vec<f32> = picked.iter().map(|c| c.coverage).collect();
    let mut brightness: Vec<f32> = picked.iter().map(|c| c.brightness).collect();
    let mut blurs: Vec<f32> = picked.iter().map(|c| c.blur as f32).collect();
    let blur = range(&mut blurs);
    // At least as wide as one style's angles: footage whose rain keeps one direction would
    // otherwise train on a single angle.
    let (lo, hi) = range(&mut angles);
    let mid = 0.5 * (lo + hi);
    let angle = (
        lo.min(mid - STYLE_ANGLE).max(-90.0),
        hi.max(mid + STYLE_ANGLE).min(90.0),
    );
    Ok(RainFit {
        ranges: StreakRanges {
            angle,
            length: range(&mut lengths),
            coverage: range(&mut coverages),
            brightness: range(&mut brightness),
            blur: (blur.0.round() as u32, blur.1.round() as u32),
        },
        styles,
        crops: targets.len(),
        streak_share: (rainy_share, clean_share),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_rain::smooth_field;

    /// Scene-like images: smooth shading, a few hard edges and some fine texture.
    fn scenes(count: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        let (w, h) = (200, 160);
        (0..count)
            .map(|_| {
                let f = smooth_field(w, h, 4, &mut rng);
                let edge = rng.range(0.2, 0.8) * w as f32;
                let mut p = vec![0f32; 3 * w * h];
                for c in 0..3 {
                    let tint = rng.range(0.7, 1.0);
                    for y in 0..h {
                        for x in 0..w {
                            let step = if (x as f32) < edge { 0.0 } else { 0.15 };
                            let grain = rng.range(-0.02, 0.02);
                            p[c * w * h + y * w + x] =
                                (0.2 + 0.5 * f[y * w + x] * tint + step + grain).clamp(0.0, 1.0);
                        }
                    }
                }
                p
            })
            .collect()
    }

    fn fit_of(truth: &StreakRanges, seed: u64) -> RainFit {
        fit_of_mix(std::slice::from_ref(truth), seed)
    }

    /// The fit of footage whose frames take the `truths` in turn.
    fn fit_of_mix(truths: &[StreakRanges], seed: u64) -> RainFit {
        let mut rng = Rng::new(seed);
        let mut rainy = scenes(24, seed + 1);
        for (i, p) in rainy.iter_mut().enumerate() {
            render_streaks(p, 200, 160, &truths[i % truths.len()], &mut rng);
        }
        let clean = scenes(24, seed + 2);
        fn view(v: &[Vec<f32>]) -> Vec<Planar<'_>> {
            v.iter()
                .map(|p| Planar {
                    planes: p,
                    width: 200,
                    height: 160,
                })
                .collect()
        }
        let (r, c) = (view(&rainy), view(&clean));
        let options = FitOptions {
            candidates: 500,
            crops_per_frame: 1,
            neighbours: 4,
            streakiest: 1.0,
            frame_direction: false,
        };
        fit_rain(&r, &c, options, &mut rng).expect("fit")
    }

    /// Short faint streaks leaning right, and long bright wide ones leaning left.
    fn two_kinds_of_rain() -> (StreakRanges, StreakRanges) {
        let short = StreakRanges {
            angle: (14.0, 20.0),
            length: (10.0, 14.0),
            coverage: (0.01, 0.02),
            brightness: (0.15, 0.25),
            blur: (0, 0),
        };
        let long = StreakRanges {
            angle: (-22.0, -16.0),
            length: (50.0, 70.0),
            coverage: (0.08, 0.12),
            brightness: (0.6, 0.8),
            blur: (1, 2),
        };
        (short, long)
    }

    fn mid(r: (f32, f32)) -> f32 {
        0.5 * (r.0 + r.1)
    }

    #[test]
    fn recovers_the_angle_and_tells_short_faint_rain_from_long_bright_rain() {
        let (short, long) = two_kinds_of_rain();
        let a = fit_of(&short, 3);
        let b = fit_of(&long, 4);
        assert!((mid(a.ranges.angle) - 17.0).abs() < 4.0, "{}", a.ranges);
        assert!((mid(b.ranges.angle) + 19.0).abs() < 4.0, "{}", b.ranges);
        assert!(
            mid(a.ranges.length) < mid(b.ranges.length),
            "{} vs {}",
            a.ranges,
            b.ranges
        );
        assert!(
            mid(a.ranges.coverage) < mid(b.ranges.coverage),
            "{} vs {}",
            a.ranges,
            b.ranges
        );
        assert!(
            mid(a.ranges.brightness) < mid(b.ranges.brightness),
            "{} vs {}",
            a.ranges,
            b.ranges
        );
        assert!(
            a.ranges.blur.1 <= b.ranges.blur.1,
            "{} vs {}",
            a.ranges,
            b.ranges
        );
        // The long bright rain leaves far more streak pixels than the scenes have.
        assert!(
            b.streak_share.0 > 2.0 * b.streak_share.1,
            "{:?}",
            b.streak_share
        );
    }

    /// Footage of two kinds of rain (short faint streaks leaning right, long bright ones
    /// leaning left): the ranges span both, the joint fit's styles keep them apart: a style
    /// leaning right is shorter and fainter than one leaning left.
    #[test]
    fn the_joint_fit_keeps_settings_that_go_together() {
        // The short streaks a little denser and brighter, so both kinds are among the streakiest
        // crops the fit keeps.
        let (mut short, long) = two_kinds_of_rain();
        short.coverage = (0.02, 0.03);
        short.brightness = (0.25, 0.35);
        let fit = fit_of_mix(&[short, long], 5);
        assert!(
            fit.ranges.angle.0 < -10.0 && fit.ranges.angle.1 > 10.0,
            "{}",
            fit.ranges
        );
        let (right, left): (Vec<_>, Vec<_>) = fit.styles.iter().partition(|s| mid(s.angle) > 0.0);
        assert!(right.len() >= 3 && left.len() >= 3, "{:?}", fit.styles);
        let mean = |v: &[&StreakRanges], get: fn(&StreakRanges) -> (f32, f32)| {
            v.iter().map(|s| mid(get(s))).sum::<f32>() / v.len() as f32
        };
        for (what, get) in [
            (
                "length",
                (|s: &StreakRanges| s.length) as fn(&StreakRanges) -> (f32, f32),
            ),
            ("brightness", |s: &StreakRanges| s.brightness),
        ] {
            let (r, l) = (mean(&right, get), mean(&left, get));
            assert!(r < l, "{what}: leaning right {r}, left {l}");
        }
        for s in &fit.styles {
            assert!(s.angle.1 - s.angle.0 <= 2.0 * STYLE_ANGLE + 1e-3, "{s}");
            let back: StreakRanges = s.to_string().parse().expect("a style prints as ranges");
            assert_eq!(back.blur, s.blur);
        }
        assert!(fit.styles.len() <= MAX_STYLES);
    }

    #[test]
    fn ranges_round_trip_through_their_text_and_bad_text_is_named() {
        let r = StreakRanges {
            angle: (-12.0, 4.5),
            length: (14.0, 38.0),
            coverage: (0.02, 0.09),
            brightness: (0.3, 0.7),
            blur: (0, 2),
        };
        let back: StreakRanges = r.to_string().parse().expect("parses");
        assert_eq!(back, r);
        for bad in [
            "angle=-12:4",
            "angle=4:-12 length=14:38 coverage=0.02:0.09 brightness=0.3:0.7 blur=0:2",
            "angle=-12:4 length=14:38 coverage=0:0.09 brightness=0.3:0.7 blur=0:2",
            "angle=-12:4 length=14:38 coverage=0.02:0.09 brightness=0.3:0.7 blur=0:2 wind=1:2",
            "angle=x:4 length=14:38 coverage=0.02:0.09 brightness=0.3:0.7 blur=0:2",
        ] {
            let e = bad.parse::<StreakRanges>().expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn too_small_or_missing_images_are_refused() {
        let tiny = vec![0.5f32; 3 * 64 * 64];
        let p = Planar {
            planes: &tiny,
            width: 64,
            height: 64,
        };
        let mut rng = Rng::new(1);
        let o = FitOptions::default();
        assert!(matches!(
            fit_rain(&[], &[p], o, &mut rng),
            Err(FitError::NoRainy)
        ));
        assert!(matches!(
            fit_rain(&[p], &[], o, &mut rng),
            Err(FitError::NoClean)
        ));
        assert!(matches!(
            fit_rain(&[p], &[p], o, &mut rng),
            Err(FitError::TooSmall { kind: "rainy" })
        ));
    }
}
