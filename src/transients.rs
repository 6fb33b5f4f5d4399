//! What a still camera's frames add to the scene: rain as bright transients.
//!
//! Faint streaks of compressed video (one pixel wide, a few levels bright) stand out too
//! little from a frame's own texture for the spatial rain fit ([`crate::rain_fit`]) to find.
//! On a still camera the scene is what stays from frame to frame, and rain is what comes and
//! goes: each frame less the per-sample median of its neighbours in time (shifted onto it and
//! brought to its exposure first, for a camera shaken by wind) leaves the rain in the positive
//! part (streaks are brighter than what they cover, in every channel alike) and, in the
//! negative part, what is not rain: noise, compression artefacts, things that move.
//! [`still_camera_transients`] returns both, as images the rain fit measures in place of rainy
//! and clean frames, and refuses footage from a camera that moves through the scene (the
//! median then holds no scene).

use crate::rain_fit::{Planar, extremum};
use crate::synthetic_rain::planar_luma;

/// Frames either side of a frame whose median is its background.
pub const RADIUS: usize = 3;

/// Fewest frames the median needs: a sample under rain in fewer than half of them still
/// shows its background.
pub const MIN_FRAMES: usize = 2 * RADIUS + 1;

/// Largest median of the frames' mean negative transient (8-bit levels) taken for a still
/// camera. Measured after steadying: a dry still street clip leaves 0.11 levels, light and
/// heavy rendered rain over it 0.63 and 2.07 (heavy rain covers a sample in some of the
/// median's frames), the real heavy rain of a wind-shaken camera (J4RNet) 0.70; a camera that
/// moves through the scene (NTURain rb2) leaves 7.9, its near and far parts moving apart
/// (models/MODELS.md, "Adapting to one camera").
pub const MAX_MOTION: f32 = 4.0;

/// A frame's transients: grey planar RGB of the frame's size (the change all three channels
/// share), values in [0, 1].
#[derive(Debug, Clone)]
pub struct Transient {
    /// The frame less its background where it is brighter: the rain.
    pub brighter: Vec<f32>,
    /// The background less the frame where it is darker: noise and motion, no rain.
    pub darker: Vec<f32>,
}

/// The transients of a clip and how much its camera moved.
#[derive(Debug, Clone)]
pub struct Transients {
    pub frames: Vec<Transient>,
    pub width: usize,
    pub height: usize,
    /// Median over the frames of their mean negative transient, in 8-bit levels.
    pub motion: f32,
}

/// Why a clip's transients could not be taken.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransientError {
    #[error("{found} frames; the temporal median needs at least {MIN_FRAMES}")]
    TooFewFrames { found: usize },
    #[error("frame {index} is {found}, the first frame {expected}: not one camera's clip")]
    SizeDiffers {
        index: usize,
        found: String,
        expected: String,
    },
    #[error(
        "the camera moves: frames differ from their temporal median by {motion:.2} levels where \
         rain is absent (a still camera: at most {MAX_MOTION})"
    )]
    Moving { motion: f32 },
}

/// The transients of `frames`, one still camera's frames in order (all of one size): each
/// frame less the per-sample median of the [`MIN_FRAMES`] frames around it (fewer at neither
/// end: the window shifts inward). Errors when the frames are too few, differ in size, or come
/// from a camera that moves.
pub fn still_camera_transients(frames: &[Planar]) -> Result<Transients, TransientError> {
    if frames.len() < MIN_FRAMES {
        return Err(TransientError::TooFewFrames {
            found: frames.len(),
        });
    }
    let (width, height) = (frames[0].width, frames[0].height);
    let plane = width * height;
    let n = 3 * plane;
    for (index, f) in frames.iter().enumerate() {
        if f.width != width || f.height != height || f.planes.len() < n {
            return Err(TransientError::SizeDiffers {
                index,
                found: format!("{}x{}", f.width, f.height),
                expected: format!("{width}x{height}"),
            });
        }
    }
    // A camera shaken by wind moves the whole picture by a few pixels, and its exposure drifts
    // and flickers: each neighbour is shifted onto the frame and brought to its level (the
    // median difference: rain is on few samples) before the median, or the whole scene would
    // show as a change.
    let lumas: Vec<Luma> = frames.iter().map(Luma::of).collect();
    let mut out = Vec::with_capacity(frames.len());
    let mut window = [0f32; MIN_FRAMES];
    for t in 0..frames.len() {
        let start = t.saturating_sub(RADIUS).min(frames.len() - MIN_FRAMES);
        let near = &frames[start..start + MIN_FRAMES];
        // The frame itself is in its window: no shift, no offset.
        let shifts: Vec<(isize, isize)> = (start..start + MIN_FRAMES)
            .map(|s| {
                if s == t {
                    (0, 0)
                } else {
                    lumas[t].shift_to(&lumas[s])
                }
            })
            .collect();
        let offsets: Vec<f32> = (start..start + MIN_FRAMES)
            .zip(&shifts)
            .map(|(s, &shift)| {
                if s == t {
                    0.0
                } else {
                    lumas[t].offset_to(&lumas[s], shift)
                }
            })
            .collect();
        let mut brighter = vec![0f32; n];
        let mut darker = vec![0f32; n];
        for i in 0..n {
            let (c, y, x) = (i / plane, (i % plane) / width, i % width);
            for (((w, f), o), (dx, dy)) in window.iter_mut().zip(near).zip(&offsets).zip(&shifts) {
                let u = (x as isize + dx).clamp(0, width as isize - 1) as usize;
                let v = (y as isize + dy).clamp(0, height as isize - 1) as usize;
                *w = f.planes[c * plane + v * width + u] + o;
            }
            window.sort_unstable_by(f32::total_cmp);
            let d = frames[t].planes[i] - window[RADIUS];
            if d > 0.0 {
                brighter[i] = d;
            } else {
                darker[i] = -d;
            }
        }
        out.push(cancel_pairs(
            &grey(&brighter, plane),
            &grey(&darker, plane),
            width,
            height,
        ));
    }
    let mut levels: Vec<f32> = out
        .iter()
        .map(|f| 255.0 * f.darker.iter().sum::<f32>() / n as f32)
        .collect();
    levels.sort_unstable_by(f32::total_cmp);
    let motion = levels[levels.len() / 2];
    if motion > MAX_MOTION {
        return Err(TransientError::Moving { motion });
    }
    Ok(Transients {
        frames: out,
        width,
        height,
        motion,
    })
}

/// Largest shift (pixels) looked for between two frames.
const MAX_SHIFT: isize = 16;
/// Downscale of the coarse search.
const COARSE: usize = 4;

/// A frame's luma at full size and downscaled, for finding how far the picture moved.
struct Luma {
    full: Vec<f32>,
    w: usize,
    h: usize,
    coarse: Vec<f32>,
    cw: usize,
    ch: usize,
}

impl Luma {
    fn of(f: &Planar) -> Luma {
        let (w, h) = (f.width, f.height);
        let full = planar_luma(f.planes, w * h);
        let (cw, ch) = (w / COARSE, h / COARSE);
        let mut coarse = vec![0f32; cw * ch];
        for (j, row) in coarse.chunks_mut(cw.max(1)).enumerate().take(ch) {
            for (i, v) in row.iter_mut().enumerate() {
                let mut sum = 0.0;
                for y in j * COARSE..(j + 1) * COARSE {
                    sum += full[y * w + i * COARSE..y * w + (i + 1) * COARSE]
                        .iter()
                        .sum::<f32>();
                }
                *v = sum / (COARSE * COARSE) as f32;
            }
        }
        Luma {
            full,
            w,
            h,
            coarse,
            cw,
            ch,
        }
    }

    /// Mean absolute difference between `a` at (x, y) and `b` at (x + dx, y + dy) over the
    /// interior (`margin` from every side), every `step`-th sample.
    #[allow(clippy::too_many_arguments)]
    fn cost(
        a: &[f32],
        b: &[f32],
        w: usize,
        h: usize,
        dx: isize,
        dy: isize,
        margin: usize,
        step: usize,
    ) -> f32 {
        let (mut sum, mut count) = (0f32, 0u32);
        for y in (margin..h.saturating_sub(margin)).step_by(step) {
            for x in (margin..w.saturating_sub(margin)).step_by(step) {
                let (u, v) = ((x as isize + dx) as usize, (y as isize + dy) as usize);
                sum += (a[y * w + x] - b[v * w + u]).abs();
                count += 1;
            }
        }
        if count == 0 {
            f32::MAX
        } else {
            sum / count as f32
        }
    }

    /// The median of this frame less `other` shifted by `shift` (every 3rd sample): what
    /// brings `other` to this frame's exposure.
    fn offset_to(&self, other: &Luma, (dx, dy): (isize, isize)) -> f32 {
        let mut d: Vec<f32> = Vec::new();
        for y in (0..self.h).step_by(3) {
            for x in (0..self.w).step_by(3) {
                let (u, v) = (x as isize + dx, y as isize + dy);
                if u >= 0 && v >= 0 && (u as usize) < self.w && (v as usize) < self.h {
                    d.push(
                        self.full[y * self.w + x] - other.full[v as usize * self.w + u as usize],
                    );
                }
            }
        }
        if d.is_empty() {
            return 0.0;
        }
        let mid = d.len() / 2;
        *d.select_nth_unstable_by(mid, f32::total_cmp).1
    }

    /// The shift (dx, dy) that brings `other` onto this frame: `other` at (x + dx, y + dy)
    /// shows what this frame shows at (x, y). A coarse search over +-[`MAX_SHIFT`] pixels,
    /// then +-2 pixels at full size; (0, 0) for frames too small to search.
    fn shift_to(&self, other: &Luma) -> (isize, isize) {
        let reach = MAX_SHIFT / COARSE as isize;
        let cm = reach as usize + 1;
        if self.cw <= 2 * cm + 4 || self.ch <= 2 * cm + 4 {
            return (0, 0);
        }
        let mut best = (f32::MAX, 0isize, 0isize);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let c = Self::cost(&self.coarse, &other.coarse, self.cw, self.ch, dx, dy, cm, 1);
                if c < best.0 {
                    best = (c, dx, dy);
                }
            }
        }
        let (cx, cy) = (best.1 * COARSE as isize, best.2 * COARSE as isize);
        let margin = MAX_SHIFT as usize + 3;
        let mut fine = (f32::MAX, cx, cy);
        for dy in cy - 2..=cy + 2 {
            for dx in cx - 2..=cx + 2 {
                let c = Self::cost(&self.full, &other.full, self.w, self.h, dx, dy, margin, 2);
                if c < fine.0 {
                    fine = (c, dx, dy);
                }
            }
        }
        (fine.1, fine.2)
    }
}

/// The change all three channels share (their minimum): rain brightens every channel alike,
/// while coloured changes (lights, moving coloured things) and much of the noise sit in one
/// or two.
fn grey(v: &[f32], plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|i| v[i].min(v[plane + i]).min(v[2 * plane + i]))
        .collect()
}

/// Each side less the other side's largest value next to it, as grey planar RGB. An edge
/// that shifts by a pixel (a shaking camera) and compression noise leave a brighter and a
/// darker change side by side; a streak only a brighter one, which keeps what it stands
/// above the noise.
fn cancel_pairs(brighter: &[f32], darker: &[f32], w: usize, h: usize) -> Transient {
    let near_d = extremum(darker, w, h, 1, true);
    let near_b = extremum(brighter, w, h, 1, true);
    let b: Vec<f32> = brighter
        .iter()
        .zip(&near_d)
        .map(|(v, n)| (v - n).max(0.0))
        .collect();
    let d: Vec<f32> = darker
        .iter()
        .zip(&near_b)
        .map(|(v, n)| (v - n).max(0.0))
        .collect();
    Transient {
        brighter: b.repeat(3),
        darker: d.repeat(3),
    }
}

impl Transients {
    /// The positive transients as images (the rain fit's rainy side).
    pub fn brighter(&self) -> Vec<Planar<'_>> {
        self.frames.iter().map(|f| self.view(&f.brighter)).collect()
    }

    /// The negative transients as images (the rain fit's clean side: what the rain is rendered
    /// on and compared against).
    pub fn darker(&self) -> Vec<Planar<'_>> {
        self.frames.iter().map(|f| self.view(&f.darker)).collect()
    }

    fn view<'a>(&self, planes: &'a [f32]) -> Planar<'a> {
        Planar {
            planes,
            width: self.width,
            height: self.height,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rain_fit::{FitOptions, fit_rain};
    use crate::rng::Rng;
    use crate::synthetic_rain::{StreakRanges, render_streaks, smooth_field};

    /// A still textured scene (fixed noise texture) with `noise` levels of fresh noise per
    /// frame, shifted by `pan` pixels a frame, each frame with its own `rain` if given.
    fn clip(
        frames: usize,
        (w, h): (usize, usize),
        noise: f32,
        pan: usize,
        rain: Option<&StreakRanges>,
        seed: u64,
    ) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        let (sw, sh) = (w + pan * frames, h);
        let scene: Vec<f32> = (0..3 * sw * sh)
            .map(|i| {
                let (x, y) = ((i % sw) as f32, ((i / sw) % sh) as f32);
                (0.45 + 0.2 * (x * 0.7).sin() * (y * 0.45).cos() + 0.1 * rng.f32()).clamp(0.0, 1.0)
            })
            .collect();
        (0..frames)
            .map(|t| {
                let mut f = vec![0f32; 3 * w * h];
                for c in 0..3 {
                    for y in 0..h {
                        for x in 0..w {
                            let v = scene[c * sw * sh + y * sw + x + t * pan];
                            f[c * w * h + y * w + x] =
                                (v + noise / 255.0 * rng.normal()).clamp(0.0, 1.0);
                        }
                    }
                }
                if let Some(r) = rain {
                    render_streaks(&mut f, w, h, r, &mut rng);
                }
                f
            })
            .collect()
    }

    fn views(frames: &[Vec<f32>], (w, h): (usize, usize)) -> Vec<Planar<'_>> {
        frames
            .iter()
            .map(|planes| Planar {
                planes,
                width: w,
                height: h,
            })
            .collect()
    }

    #[test]
    fn rain_is_brighter_than_the_median_and_the_scene_cancels() {
        let size = (64, 48);
        let rain = StreakRanges {
            angle: (10.0, 10.0),
            length: (20.0, 20.0),
            coverage: (0.05, 0.05),
            brightness: (0.5, 0.5),
            blur: (0, 0),
        };
        let frames = clip(9, size, 0.0, 0, Some(&rain), 1);
        let t = still_camera_transients(&views(&frames, size)).unwrap();
        assert_eq!(t.frames.len(), 9);
        assert!(t.motion < 0.5, "{}", t.motion);
        // Streaks sit on the brighter side; on the darker side only samples a streak covered
        // in most of the window would show, which sparse rain does not.
        let mean = |v: &[f32]| 255.0 * v.iter().sum::<f32>() / v.len() as f32;
        for f in &t.frames {
            assert!(mean(&f.brighter) > 0.3, "{}", mean(&f.brighter));
            assert!(
                mean(&f.darker) < 0.2 * mean(&f.brighter),
                "{} {}",
                mean(&f.darker),
                mean(&f.brighter)
            );
        }
        // Without rain, a still noiseless scene leaves nothing.
        let dry = clip(7, size, 0.0, 0, None, 2);
        let t = still_camera_transients(&views(&dry, size)).unwrap();
        assert!(t.frames.iter().all(|f| mean(&f.brighter) == 0.0));
    }

    #[test]
    fn a_shaken_camera_is_steadied_and_one_that_moves_is_refused() {
        let size = (160, 120);
        let rain = StreakRanges {
            angle: (0.0, 0.0),
            length: (20.0, 20.0),
            coverage: (0.03, 0.03),
            brightness: (0.3, 0.3),
            blur: (0, 0),
        };
        // The scene shifted by up to 5 pixels from frame to frame (a camera in the wind).
        let wide = (size.0 + 10, size.1 + 10);
        let scene = clip(1, wide, 0.0, 0, None, 3).remove(0);
        let mut rng = Rng::new(4);
        let frames: Vec<Vec<f32>> = (0..9)
            .map(|_| {
                let (ox, oy) = (rng.below(11) as usize, rng.below(11) as usize);
                let mut f = vec![0f32; 3 * size.0 * size.1];
                for c in 0..3 {
                    for y in 0..size.1 {
                        for x in 0..size.0 {
                            f[(c * size.1 + y) * size.0 + x] =
                                scene[(c * wide.1 + y + oy) * wide.0 + x + ox];
                        }
                    }
                }
                render_streaks(&mut f, size.0, size.1, &rain, &mut rng);
                f
            })
            .collect();
        let t = still_camera_transients(&views(&frames, size)).unwrap();
        assert!(t.motion < 1.0, "shaken: motion {}", t.motion);
        // Every frame a different scene: no background to take.
        let scenes: Vec<Vec<f32>> = (0..9)
            .map(|_| smooth_field(size.0, size.1, 4, &mut rng).repeat(3))
            .collect();
        match still_camera_transients(&views(&scenes, size)) {
            Err(TransientError::Moving { motion }) => assert!(motion > MAX_MOTION, "{motion}"),
            Err(e) => panic!("{e}"),
            Ok(t) => panic!("taken for a still camera (motion {})", t.motion),
        }
    }

    #[test]
    fn few_frames_and_mixed_sizes_are_refused() {
        let size = (64, 48);
        let still = clip(9, size, 1.0, 0, None, 3);
        let t = still_camera_transients(&views(&still, size)).unwrap();
        assert!(t.motion < 1.0, "{}", t.motion);
        assert_eq!(
            still_camera_transients(&views(&still[..6], size)).err(),
            Some(TransientError::TooFewFrames { found: 6 })
        );
        let mut frames = views(&still, size);
        let small = vec![0f32; 3 * 32 * 32];
        frames[4] = Planar {
            planes: &small,
            width: 32,
            height: 32,
        };
        assert!(matches!(
            still_camera_transients(&frames).err(),
            Some(TransientError::SizeDiffers { index: 4, .. })
        ));
    }

    /// Faint thin streaks over a textured still scene: the fit on the transients finds their
    /// angle and brightness; the spatial fit on the frames themselves does not.
    #[test]
    fn the_fit_on_transients_finds_faint_streaks_the_spatial_fit_misses() {
        let size = (160, 160);
        let truth = StreakRanges {
            angle: (-20.0, -20.0),
            length: (30.0, 30.0),
            coverage: (0.02, 0.02),
            brightness: (0.06, 0.06),
            blur: (0, 0),
        };
        let frames = clip(12, size, 1.5, 0, Some(&truth), 4);
        let dry = clip(12, size, 1.5, 0, None, 5);
        let options = FitOptions {
            candidates: 300,
            ..FitOptions::default()
        };
        let t = still_camera_transients(&views(&frames, size)).unwrap();
        let fit = fit_rain(&t.brighter(), &t.darker(), options, &mut Rng::new(6)).unwrap();
        let mid = |r: (f32, f32)| 0.5 * (r.0 + r.1);
        assert!(
            (mid(fit.ranges.angle) + 20.0).abs() < 6.0,
            "temporal: {}",
            fit.ranges
        );
        assert!(fit.ranges.brightness.0 < 0.15, "temporal: {}", fit.ranges);
        assert!(
            fit.streak_share.0 > 2.0 * fit.streak_share.1,
            "{:?}",
            fit.streak_share
        );
        let spatial = fit_rain(
            &views(&frames, size),
            &views(&dry, size),
            options,
            &mut Rng::new(6),
        )
        .unwrap();
        eprintln!(
            "temporal fit: {} {:?}; spatial fit: {} {:?}",
            fit.ranges, fit.streak_share, spatial.ranges, spatial.streak_share
        );
        assert!(
            spatial.streak_share.0 < 1.5 * spatial.streak_share.1
                || (mid(spatial.ranges.angle) + 20.0).abs() >= 6.0,
            "the scene should hide these streaks from the spatial fit: {} {:?}",
            spatial.ranges,
            spatial.streak_share
        );
    }
}
