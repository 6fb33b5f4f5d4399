//! A direct, unoptimised forward pass of the NLCL generator in plain Rust.
//!
//! It follows the layer description of [`crate::spec`] literally (PyTorch semantics: zero-padded
//! 3x3 convolutions, InstanceNorm with biased variance, `pixel_unshuffle` channel order), with no
//! code shared with the ONNX writer. Tests use it as the independent reference that the exported
//! ONNX graph, run by ONNX Runtime, must reproduce. Far too slow for video.

use crate::onnx::{OnnxError, Weights};
use crate::spec::{INSTANCE_NORM_EPS, ModelSpec};

/// A `[C, H, W]` float tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Planes {
    /// Zeros of the given size.
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Planes {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }
}

fn tensor<'a>(w: &'a Weights, name: &str) -> Result<&'a [f32], OnnxError> {
    w.get(name)
        .map(|t| t.data.as_slice())
        .ok_or_else(|| OnnxError::MissingWeight {
            name: name.to_string(),
        })
}

fn conv3x3(x: &Planes, weight: &[f32], bias: &[f32], out_ch: usize) -> Planes {
    let mut y = Planes::zeros(out_ch, x.h, x.w);
    for o in 0..out_ch {
        for yy in 0..x.h {
            for xx in 0..x.w {
                let mut acc = bias[o] as f64;
                for i in 0..x.c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let sy = yy as isize + ky as isize - 1;
                            let sx = xx as isize + kx as isize - 1;
                            if sy < 0 || sx < 0 || sy >= x.h as isize || sx >= x.w as isize {
                                continue;
                            }
                            let v = x.data[(i * x.h + sy as usize) * x.w + sx as usize];
                            acc += v as f64 * weight[((o * x.c + i) * 3 + ky) * 3 + kx] as f64;
                        }
                    }
                }
                y.data[(o * x.h + yy) * x.w + xx] = acc as f32;
            }
        }
    }
    y
}

fn instance_norm(x: &mut Planes) {
    let n = x.h * x.w;
    for c in 0..x.c {
        let p = &mut x.data[c * n..(c + 1) * n];
        let mean = p.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + INSTANCE_NORM_EPS as f64).sqrt();
        for v in p.iter_mut() {
            *v = ((*v as f64 - mean) * inv) as f32;
        }
    }
}

fn relu(x: &mut Planes) {
    for v in &mut x.data {
        *v = v.max(0.0);
    }
}

fn add(x: &mut Planes, y: &Planes) {
    for (a, b) in x.data.iter_mut().zip(&y.data) {
        *a += b;
    }
}

/// The spec's detail layer: each value less the mean of its (2r+1)x(2r+1) window, counting
/// only the pixels inside the frame (PyTorch `avg_pool2d` with `count_include_pad=False`).
pub fn detail_layer(x: &Planes, radius: usize) -> Planes {
    if radius == 0 {
        return x.clone();
    }
    let mut y = x.clone();
    for c in 0..x.c {
        let plane = &x.data[c * x.h * x.w..(c + 1) * x.h * x.w];
        for yy in 0..x.h {
            let (y0, y1) = (yy.saturating_sub(radius), (yy + radius + 1).min(x.h));
            for xx in 0..x.w {
                let (x0, x1) = (xx.saturating_sub(radius), (xx + radius + 1).min(x.w));
                let mut sum = 0f64;
                for row in y0..y1 {
                    sum += plane[row * x.w + x0..row * x.w + x1]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>();
                }
                let n = ((y1 - y0) * (x1 - x0)) as f64;
                y.data[(c * x.h + yy) * x.w + xx] -= (sum / n) as f32;
            }
        }
    }
    y
}

/// PyTorch `pixel_unshuffle`: output channel `c*s*s + dy*s + dx`.
pub fn pixel_unshuffle(x: &Planes, s: usize) -> Planes {
    let (h, w) = (x.h / s, x.w / s);
    let mut y = Planes::zeros(x.c * s * s, h, w);
    for c in 0..x.c {
        for dy in 0..s {
            for dx in 0..s {
                let oc = c * s * s + dy * s + dx;
                for yy in 0..h {
                    for xx in 0..w {
                        y.data[(oc * h + yy) * w + xx] =
                            x.data[(c * x.h + yy * s + dy) * x.w + xx * s + dx];
                    }
                }
            }
        }
    }
    y
}

/// PyTorch `pixel_shuffle`, the inverse of [`pixel_unshuffle`].
pub fn pixel_shuffle(x: &Planes, s: usize) -> Planes {
    let c_out = x.c / (s * s);
    let (h, w) = (x.h * s, x.w * s);
    let mut y = Planes::zeros(c_out, h, w);
    for c in 0..c_out {
        for dy in 0..s {
            for dx in 0..s {
                let ic = c * s * s + dy * s + dx;
                for yy in 0..x.h {
                    for xx in 0..x.w {
                        y.data[(c * h + yy * s + dy) * w + xx * s + dx] =
                            x.data[(ic * x.h + yy) * x.w + xx];
                    }
                }
            }
        }
    }
    y
}

/// Runs one generator (weights under `prefix`) on a `[3, H, W]` input in [-1, 1]. `residual`
/// selects `input - f(input)` (the `back` generator with a global residual). The output is
/// clamped to [-1, 1] like the exported graph.
pub fn generator_forward(
    spec: &ModelSpec,
    weights: &Weights,
    prefix: &str,
    residual: bool,
    input: &Planes,
) -> Result<Planes, OnnxError> {
    let s = spec.unshuffle;
    let convs = spec.convs();
    let conv = |x: &Planes, idx: usize| -> Result<Planes, OnnxError> {
        let c = &convs[idx];
        let wt = tensor(weights, &format!("{prefix}{}.weight", c.name))?;
        let b = tensor(weights, &format!("{prefix}{}.bias", c.name))?;
        Ok(conv3x3(x, wt, b, c.out_ch))
    };
    let norm = |t: &mut Planes| {
        if spec.instance_norm {
            instance_norm(t);
        }
    };
    let detail = detail_layer(input, spec.detail_radius);
    let x = if s > 1 {
        pixel_unshuffle(&detail, s)
    } else {
        detail
    };
    let mut h = conv(&x, 0)?;
    for b in 0..spec.depth {
        let mut t = conv(&h, 1 + 2 * b)?;
        norm(&mut t);
        relu(&mut t);
        let mut t = conv(&t, 2 + 2 * b)?;
        norm(&mut t);
        add(&mut h, &t);
    }
    let base = 1 + 2 * spec.depth;
    let mut t = conv(&h, base)?;
    norm(&mut t);
    relu(&mut t);
    let t = conv(&t, base + 1)?;
    let mut o = conv(&t, base + 2)?;
    if s > 1 {
        o = pixel_shuffle(&o, s);
    }
    if residual {
        for (v, i) in o.data.iter_mut().zip(&input.data) {
            *v = i - *v;
        }
    }
    for v in &mut o.data {
        *v = v.clamp(-1.0, 1.0);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_layer_of_a_flat_or_sloped_frame() {
        // A flat frame has no detail; on a horizontal ramp the windows inside the frame are
        // symmetric (no detail) and those cut by the edge are not.
        let flat = Planes {
            c: 1,
            h: 5,
            w: 7,
            data: vec![0.3; 35],
        };
        assert!(detail_layer(&flat, 2).data.iter().all(|v| v.abs() < 1e-6));
        let ramp = Planes {
            c: 1,
            h: 3,
            w: 7,
            data: (0..21).map(|i| (i % 7) as f32).collect(),
        };
        let d = detail_layer(&ramp, 1);
        assert!((d.data[3]).abs() < 1e-6);
        // Left edge: window columns 0 and 1, mean 0.5.
        assert!((d.data[0] + 0.5).abs() < 1e-6);
        assert_eq!(detail_layer(&ramp, 0), ramp);
    }

    #[test]
    fn shuffle_inverts_unshuffle() {
        let x = Planes {
            c: 3,
            h: 4,
            w: 6,
            data: (0..72).map(|v| v as f32).collect(),
        };
        let y = pixel_unshuffle(&x, 2);
        assert_eq!((y.c, y.h, y.w), (12, 2, 3));
        // Channel 1 of the unshuffled tensor is R at (dy=0, dx=1).
        assert_eq!(y.data[6], x.data[1]);
        assert_eq!(pixel_shuffle(&y, 2), x);
    }
}
