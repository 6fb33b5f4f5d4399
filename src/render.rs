//! A photographic rain renderer, so that users without rainy footage (and the tests) have a
//! rainy domain: anti-aliased streaks of varied angle, length, thickness, density and
//! brightness, motion-blurred along their direction, screen-blended over the image with a slight
//! veiling (the haze of out-of-focus drops).

use crate::rng::Rng;

/// Ranges the renderer draws its per-image parameters from.
#[derive(Debug, Clone, PartialEq)]
pub struct RainStyle {
    /// Streaks per pixel (per layer).
    pub density: (f32, f32),
    /// Streak length in pixels.
    pub length: (f32, f32),
    /// Mean angle from vertical in degrees (either side).
    pub max_angle: f32,
    /// Peak streak intensity before blending.
    pub brightness: (f32, f32),
    /// Veiling strength (blend towards a light grey).
    pub veil: (f32, f32),
    /// Probability of a second, differently scaled streak layer (near and far rain).
    pub second_layer: f32,
}

impl Default for RainStyle {
    fn default() -> Self {
        RainStyle {
            density: (0.0008, 0.006),
            length: (8.0, 36.0),
            max_angle: 30.0,
            brightness: (0.25, 0.8),
            veil: (0.0, 0.06),
            second_layer: 0.4,
        }
    }
}

/// Adds `v` at a fractional position with bilinear weights (anti-aliasing).
fn splat(s: &mut [f32], w: usize, h: usize, x: f32, y: f32, v: f32) {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (xi, yi) = (x0 as i64 + dx, y0 as i64 + dy);
            if xi >= 0 && yi >= 0 && (xi as usize) < w && (yi as usize) < h {
                s[yi as usize * w + xi as usize] += v * wx * wy;
            }
        }
    }
}

fn streak_layer(s: &mut [f32], w: usize, h: usize, style: &RainStyle, scale: f32, rng: &mut Rng) {
    let angle = rng.range(-style.max_angle, style.max_angle).to_radians();
    let density = rng.range(style.density.0, style.density.1);
    let len_mean = rng.range(style.length.0, style.length.1) * scale;
    let bright = rng.range(style.brightness.0, style.brightness.1);
    let thick = if rng.chance(0.3) { 2 } else { 1 };
    let n = (density * (w * h) as f32).round() as usize;
    let (sin, cos) = angle.sin_cos();
    for _ in 0..n {
        // Per-streak jitter: drops differ in size, speed and distance.
        let a = angle + rng.normal() * 0.03;
        let (sa, ca) = if a == angle { (sin, cos) } else { a.sin_cos() };
        let len = (len_mean * rng.range(0.6, 1.4)).max(2.0);
        let b = bright * rng.range(0.6, 1.2);
        let x0 = rng.range(-len, w as f32 + len);
        let y0 = rng.range(-len, h as f32);
        let steps = (len * 2.0) as usize;
        for t in 0..=steps {
            let u = t as f32 / steps.max(1) as f32;
            // Tapered ends: a drop's motion-blurred trace fades in and out.
            let v = b * (std::f32::consts::PI * u).sin().max(0.0).sqrt() * 0.5;
            let (px, py) = (x0 + u * len * sa, y0 + u * len * ca);
            for k in 0..thick {
                splat(s, w, h, px + k as f32 * ca, py - k as f32 * sa, v);
            }
        }
    }
}

/// Small separable [1 2 1]/4 blur: softens the streaks like defocus does.
fn blur(s: &mut [f32], w: usize, h: usize) {
    let mut t = s.to_vec();
    for y in 0..h {
        for x in 0..w {
            let l = s[y * w + x.saturating_sub(1)];
            let r = s[y * w + (x + 1).min(w - 1)];
            t[y * w + x] = 0.25 * l + 0.5 * s[y * w + x] + 0.25 * r;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let u = t[y.saturating_sub(1) * w + x];
            let d = t[(y + 1).min(h - 1) * w + x];
            s[y * w + x] = 0.25 * u + 0.5 * t[y * w + x] + 0.25 * d;
        }
    }
}

/// Renders rain over planar RGB `planes` (`3 * h * w`, values in [0, 1]) in place.
pub fn render_rain(planes: &mut [f32], w: usize, h: usize, style: &RainStyle, rng: &mut Rng) {
    let n = w * h;
    if planes.len() < 3 * n || n == 0 {
        return;
    }
    let mut s = vec![0f32; n];
    streak_layer(&mut s, w, h, style, 1.0, rng);
    if rng.chance(style.second_layer) {
        streak_layer(&mut s, w, h, style, rng.range(0.4, 0.7), rng);
    }
    blur(&mut s, w, h);
    let veil = rng.range(style.veil.0, style.veil.1);
    let veil_level = rng.range(0.7, 0.9);
    // Rain is nearly colourless; a slight blue-white tint.
    let tint = [0.97, 0.99, 1.0];
    for c in 0..3 {
        let p = &mut planes[c * n..(c + 1) * n];
        for (v, &r) in p.iter_mut().zip(&s) {
            let r = (r * tint[c]).clamp(0.0, 1.0);
            // Screen blend: streaks brighten, never darken, and saturate gracefully.
            let lit = 1.0 - (1.0 - *v) * (1.0 - r);
            *v = (lit * (1.0 - veil) + veil * veil_level).clamp(0.0, 1.0);
        }
    }
}
