//! Loss-curve and sample-sheet PNGs, drawn directly with `image` (no font or plotting
//! dependency: the loss history's CSV header names the panels, top to bottom). Plain data in,
//! so the drawing knows nothing of the trainer.

use std::path::Path;

use anyhow::Context;
use image::{Rgb, RgbImage};
use tch::{Kind, Tensor};

const PANEL_W: u32 = 640;
const PANEL_H: u32 = 90;
const COLOURS: [[u8; 3]; 9] = [
    [120, 90, 40],
    [200, 40, 40],
    [40, 120, 200],
    [40, 160, 60],
    [160, 60, 180],
    [220, 130, 20],
    [20, 150, 150],
    [180, 160, 20],
    [60, 60, 60],
];

fn line(img: &mut RgbImage, (x0, y0): (f32, f32), (x1, y1): (f32, f32), c: Rgb<u8>) {
    let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=n {
        let t = i as f32 / n as f32;
        let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// One panel per series (top to bottom), plotted against `steps`: raw values in a light colour
/// and an exponential moving average in a dark one, each panel scaled to its own 2nd..98th
/// percentile range; grey lines mark tenths of the step axis.
pub fn loss_curves(path: &Path, steps: &[u64], series: &[Vec<f64>]) -> anyhow::Result<()> {
    let panels = series.len() as u32;
    let mut img = RgbImage::from_pixel(PANEL_W, PANEL_H * panels.max(1), Rgb([255, 255, 255]));
    if steps.len() >= 2 {
        let s0 = steps[0] as f32;
        let s1 = steps[steps.len() - 1] as f32;
        let xs = |s: u64| (s as f32 - s0) / (s1 - s0).max(1.0) * (PANEL_W - 1) as f32;
        for p in 0..panels {
            let top = p * PANEL_H;
            for k in 0..=10 {
                let x = k * (PANEL_W - 1) / 10;
                for y in top..top + PANEL_H {
                    img.put_pixel(x, y, Rgb([225, 225, 225]));
                }
            }
            for x in 0..PANEL_W {
                img.put_pixel(x, top + PANEL_H - 1, Rgb([160, 160, 160]));
            }
            let vals: Vec<f32> = series[p as usize].iter().map(|&v| v as f32).collect();
            let mut sorted: Vec<f32> = vals.iter().copied().filter(|v| v.is_finite()).collect();
            if sorted.is_empty() {
                continue;
            }
            sorted.sort_by(|a, b| a.total_cmp(b));
            let lo = sorted[sorted.len() * 2 / 100];
            let hi = sorted[(sorted.len() * 98 / 100).min(sorted.len() - 1)];
            let span = (hi - lo).max(1e-6);
            let ys = |v: f32| {
                let t = ((v - lo) / span).clamp(0.0, 1.0);
                top as f32 + 4.0 + (1.0 - t) * (PANEL_H - 9) as f32
            };
            let c = COLOURS[p as usize % COLOURS.len()];
            let light = Rgb(c.map(|v| v / 3 + 170));
            let alpha = (2.0 / (vals.len() as f32 / 50.0 + 1.0)).clamp(0.01, 1.0);
            let mut ema = vals[0];
            let mut prev_raw = (xs(steps[0]), ys(vals[0]));
            let mut prev_ema = prev_raw;
            for (&step, &v) in steps.iter().zip(&vals).skip(1) {
                if !v.is_finite() {
                    continue;
                }
                ema += alpha * (v - ema);
                let raw = (xs(step), ys(v));
                let sm = (xs(step), ys(ema));
                line(&mut img, prev_raw, raw, light);
                line(&mut img, prev_ema, sm, Rgb(c));
                prev_raw = raw;
                prev_ema = sm;
            }
        }
    }
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Saves columns of `[rows, 3, s, s]` tensors in [-1, 1] side by side as one PNG.
pub fn image_grid(path: &Path, cols: &[Tensor], rows: usize, s: u32) -> anyhow::Result<()> {
    let gap = 4;
    let w = cols.len() as u32 * (s + gap) - gap;
    let h = rows as u32 * (s + gap) - gap;
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let n = (s * s) as usize;
    for (ci, col) in cols.iter().enumerate() {
        let data = Vec::<f32>::try_from(
            col.to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .contiguous()
                .view([-1]),
        )?;
        for r in 0..rows {
            let base = r * 3 * n;
            for y in 0..s {
                for x in 0..s {
                    let i = (y * s + x) as usize;
                    let px = [0, 1, 2].map(|c| {
                        let v = data.get(base + c * n + i).copied().unwrap_or(0.0);
                        ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
                    });
                    img.put_pixel(ci as u32 * (s + gap) + x, r as u32 * (s + gap) + y, Rgb(px));
                }
            }
        }
    }
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}
