//! A haze renderer for synthetic dehazing pairs and a validation set: the atmospheric
//! scattering model `I = J t + A (1 - t)`, with transmission `t = exp(-beta d)` over a depth
//! proxy `d` (no depth maps here: height in the frame, since the horizon and sky are far, mixed
//! with a smooth random field and the image's own brightness, since bright regions of outdoor
//! photos are more often sky and distance), a slightly tinted airlight `A`, and mild blur of
//! the far parts (scattering also softens).

use crate::rng::Rng;
use crate::synthetic_rain::smooth_field;

/// Ranges the renderer draws its per-image parameters from.
#[derive(Debug, Clone, PartialEq)]
pub struct HazeStyle {
    /// Scattering coefficient `beta` (per unit of the depth proxy, 0 = near, 1 = far).
    pub beta: (f32, f32),
    /// Airlight level.
    pub airlight: (f32, f32),
    /// Largest airlight tint per channel (blue-grey or warm smog).
    pub tint: f32,
    /// Weight of height in the depth proxy (the rest: smooth field and brightness).
    pub height_weight: (f32, f32),
}

impl Default for HazeStyle {
    fn default() -> Self {
        HazeStyle {
            beta: (0.6, 2.8),
            airlight: (0.7, 0.98),
            tint: 0.06,
            height_weight: (0.3, 0.8),
        }
    }
}

/// Renders haze over planar RGB `planes` (`3 * h * w`, values in [0, 1]) in place; returns
/// the mean transmission (1 = no haze).
pub fn render_haze(
    planes: &mut [f32],
    w: usize,
    h: usize,
    style: &HazeStyle,
    rng: &mut Rng,
) -> f32 {
    let n = w * h;
    if planes.len() < 3 * n || n == 0 {
        return 1.0;
    }
    let beta = rng.range(style.beta.0, style.beta.1);
    let level = rng.range(style.airlight.0, style.airlight.1);
    let airlight: [f32; 3] =
        [0, 1, 2].map(|_| (level + rng.range(-style.tint, style.tint)).clamp(0.0, 1.0));
    let hw = rng.range(style.height_weight.0, style.height_weight.1);
    let field = smooth_field(w, h, 3, rng);
    // The depth proxy, then smoothed brightness so edges of objects do not carve the haze.
    let mut bright: Vec<f32> = (0..n)
        .map(|i| (planes[i] + planes[n + i] + planes[2 * n + i]) / 3.0)
        .collect();
    box_blur(&mut bright, w, h, (w.min(h) / 16).max(1));
    let mut sum_t = 0f64;
    let t: Vec<f32> = (0..n)
        .map(|i| {
            let far = 1.0 - (i / w) as f32 / h as f32;
            let d = (hw * far + (1.0 - hw) * (0.6 * field[i] + 0.4 * bright[i])).clamp(0.0, 1.0);
            let t = (-beta * d).exp();
            sum_t += f64::from(t);
            t
        })
        .collect();
    for c in 0..3 {
        let p = &mut planes[c * n..(c + 1) * n];
        for (v, &t) in p.iter_mut().zip(&t) {
            *v = (*v * t + airlight[c] * (1.0 - t)).clamp(0.0, 1.0);
        }
    }
    (sum_t / n as f64) as f32
}

/// Separable box blur of radius `r` (edges clamped), in place.
fn box_blur(s: &mut [f32], w: usize, h: usize, r: usize) {
    let mut t = s.to_vec();
    let k = (2 * r + 1) as f32;
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for dx in 0..=2 * r {
                let xi = (x + dx).saturating_sub(r).min(w - 1);
                acc += s[y * w + xi];
            }
            t[y * w + x] = acc / k;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for dy in 0..=2 * r {
                let yi = (y + dy).saturating_sub(r).min(h - 1);
                acc += t[yi * w + x];
            }
            s[y * w + x] = acc / k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haze_pulls_towards_the_airlight_more_at_the_top() {
        let (w, h) = (32, 24);
        let mut planes: Vec<f32> = (0..3 * w * h).map(|i| (i % 7) as f32 / 20.0).collect();
        let before = planes.clone();
        let style = HazeStyle {
            airlight: (0.9, 0.9),
            tint: 0.0,
            height_weight: (1.0, 1.0),
            ..HazeStyle::default()
        };
        let mean_t = render_haze(&mut planes, w, h, &style, &mut Rng::new(2));
        assert!(mean_t > 0.0 && mean_t < 1.0, "{mean_t}");
        assert!(planes.iter().all(|v| (0.0..=1.0).contains(v)));
        // Every pixel moves towards 0.9; the top row (far) more than the bottom row (near).
        let moved = |y: usize| {
            (0..w)
                .map(|x| planes[y * w + x] - before[y * w + x])
                .sum::<f32>()
                / w as f32
        };
        assert!(planes.iter().zip(&before).all(|(a, b)| a >= b));
        assert!(moved(0) > moved(h - 1), "{} {}", moved(0), moved(h - 1));
    }
}
