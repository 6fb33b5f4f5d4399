//! Frames per second of the CUDA frame path, and its parity with the CPU path.
//!
//! ```text
//! cargo run --release --features cuda --example gpu_bench -- [--frames N] [--json FILE] [MODEL.onnx ...]
//! ```
//!
//! For each model (the built-in default when none is given) at 1280x720 and 1920x1080 (I420,
//! the usual decoder output), it measures side by side:
//! - `gpu`: the CUDA frame path (pinned staging, NVRTC conversion kernels, I/O binding), one
//!   session, one frame per run; `gpu x2`: two sessions on two threads (what `sessions=2` does);
//!   `gpu b4`: batches of four frames;
//! - `host`: ONNX Runtime's CUDA provider fed from host memory, with the CPU conversions (the
//!   element's path without the `cuda` feature);
//!
//! and compares the GPU path's output frame with the CPU path's (same model, same frame).
//! Every timing includes copying frames in and out of host memory, as the element must.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use nlcl::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat, padded_size};
use nlcl::cuda::{GpuSession, probe};
use nlcl::runtime::{Model, Provider, SessionOptions};

struct Frame {
    w: usize,
    h: usize,
    bytes: Vec<u8>,
}

impl Frame {
    /// A synthetic I420 frame: smooth colour fields with a fine texture.
    fn synthetic(w: usize, h: usize) -> Self {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut bytes = vec![0u8; w * h + 2 * cw * ch];
        for y in 0..h {
            for x in 0..w {
                let v = 40.0
                    + 150.0 * (x as f32 / w as f32)
                    + 20.0 * ((x * 7 + y * 3) % 11) as f32 / 11.0;
                bytes[y * w + x] = v as u8;
            }
        }
        for i in 0..cw * ch {
            bytes[w * h + i] = 110 + (i % 30) as u8;
            bytes[w * h + cw * ch + i] = 140 - (i % 25) as u8;
        }
        Frame { w, h, bytes }
    }

    fn view(&self) -> FrameRef<'_> {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let (y, rest) = self.bytes.split_at(self.w * self.h);
        let (u, v) = rest.split_at(cw * ch);
        FrameRef {
            format: PixelFormat::I420,
            width: self.w,
            height: self.h,
            planes: [y, u, v],
            strides: [self.w, cw, cw],
        }
    }
}

fn view_mut(w: usize, h: usize, bytes: &mut [u8]) -> FrameMut<'_> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y, rest) = bytes.split_at_mut(w * h);
    let (u, v) = rest.split_at_mut(cw * ch);
    FrameMut {
        format: PixelFormat::I420,
        width: w,
        height: h,
        planes: [y, u, v],
        strides: [w, cw, cw],
    }
}

fn open_gpu(model: Option<&[u8]>, name: &str) -> Result<GpuSession> {
    GpuSession::open(model, name, &SessionOptions::default())
        .with_context(|| format!("GPU session for {name}"))
}

/// Frames per second of `frames` frames through one GPU session, `batch` per run.
fn gpu_fps(s: &mut GpuSession, frame: &Frame, frames: usize, batch: usize) -> Result<f64> {
    let inputs = vec![frame.view(); batch];
    let mut outs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; frame.bytes.len()]).collect();
    let mut run = |s: &mut GpuSession| -> Result<()> {
        let mut views: Vec<FrameMut> = outs
            .iter_mut()
            .map(|o| view_mut(frame.w, frame.h, o))
            .collect();
        s.derain(&inputs, ColorMatrix::Bt709, &mut views)?;
        Ok(())
    };
    for _ in 0..5 {
        run(s)?;
    }
    let runs = frames.div_ceil(batch);
    let t = Instant::now();
    for _ in 0..runs {
        run(s)?;
    }
    Ok((runs * batch) as f64 / t.elapsed().as_secs_f64())
}

/// The host path: CPU conversion, ONNX Runtime CUDA provider on host tensors, CPU conversion.
fn host_fps(model: &mut Model, frame: &Frame, frames: usize) -> Result<f64> {
    let m = model.info().size_multiple;
    let (ph, pw) = padded_size(frame.h, frame.w, m);
    let mut input = vec![0f32; 3 * ph * pw];
    let mut output = vec![0f32; input.len()];
    let mut out = vec![0u8; frame.bytes.len()];
    let mut run = || -> Result<()> {
        convert::frame_to_tensor(&frame.view(), ColorMatrix::Bt709, m, &mut input)?;
        model.run(&input, 1, ph, pw, &mut output, None)?;
        let mut v = view_mut(frame.w, frame.h, &mut out);
        convert::tensor_to_frame(&output, ph, pw, ColorMatrix::Bt709, None, &mut v)?;
        Ok(())
    };
    for _ in 0..5 {
        run()?;
    }
    let t = Instant::now();
    for _ in 0..frames {
        run()?;
    }
    Ok(frames as f64 / t.elapsed().as_secs_f64())
}

fn cpu_reference(model: &mut Model, frame: &Frame) -> Result<Vec<u8>> {
    let m = model.info().size_multiple;
    let (ph, pw) = padded_size(frame.h, frame.w, m);
    let mut input = vec![0f32; 3 * ph * pw];
    convert::frame_to_tensor(&frame.view(), ColorMatrix::Bt709, m, &mut input)?;
    let mut output = vec![0f32; input.len()];
    model.run(&input, 1, ph, pw, &mut output, None)?;
    let mut out = vec![0u8; frame.bytes.len()];
    let mut v = view_mut(frame.w, frame.h, &mut out);
    convert::tensor_to_frame(&output, ph, pw, ColorMatrix::Bt709, None, &mut v)?;
    Ok(out)
}

fn main() -> Result<()> {
    let mut frames = 200usize;
    let mut json_path = None;
    let mut models: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => frames = args.next().context("--frames N")?.parse()?,
            "--json" => json_path = Some(args.next().context("--json FILE")?),
            _ if a.starts_with("--") => bail!("unknown option {a}"),
            _ => models.push(a),
        }
    }
    let gpu = probe(0).context("no usable GPU")?;
    println!("{gpu}");
    if models.is_empty() {
        models.push("default".into());
    }
    let mut rows = Vec::new();
    for name in &models {
        let bytes = if name == "default" {
            nlcl::DEFAULT_MODEL.context("no built-in model")?.to_vec()
        } else {
            std::fs::read(name).with_context(|| format!("reading {name}"))?
        };
        for (w, h) in [(1280usize, 720usize), (1920, 1080)] {
            let frame = Frame::synthetic(w, h);
            let mut s1 = open_gpu(Some(&bytes), name)?;
            let gpu1 = gpu_fps(&mut s1, &frame, frames, 1)?;
            let gpub4 = gpu_fps(&mut s1, &frame, frames, 4)?;
            // Parity with the CPU path on this frame.
            let mut out = vec![0u8; frame.bytes.len()];
            s1.derain(
                &[frame.view()],
                ColorMatrix::Bt709,
                &mut [view_mut(w, h, &mut out)],
            )?;
            let mut cpu = Model::from_bytes(&bytes, name, &SessionOptions::default())?;
            let expected = cpu_reference(&mut cpu, &frame)?;
            let (mut max, mut sum, mut sq) = (0u8, 0f64, 0f64);
            for (&a, &b) in expected.iter().zip(&out) {
                let d = a.abs_diff(b);
                max = max.max(d);
                sum += f64::from(d);
                sq += f64::from(d).powi(2);
            }
            let n = out.len() as f64;
            let psnr = if sq == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (255.0f64.powi(2) * n / sq).log10()
            };
            // Two sessions on two threads, each half the frames.
            let mut s2 = open_gpu(Some(&bytes), name)?;
            let t = Instant::now();
            let half = frames / 2;
            let (r1, r2) = std::thread::scope(|sc| {
                let a = sc.spawn(|| gpu_fps(&mut s1, &frame, half, 1));
                let b = sc.spawn(|| gpu_fps(&mut s2, &frame, half, 1));
                (a.join(), b.join())
            });
            r1.map_err(|_| anyhow::anyhow!("thread panicked"))??;
            r2.map_err(|_| anyhow::anyhow!("thread panicked"))??;
            // Warm-up runs inside gpu_fps are counted in the wall time: a slight underestimate.
            let gpu2 = (2 * (half + 5)) as f64 / t.elapsed().as_secs_f64();
            drop((s1, s2));
            let mut host = Model::from_bytes(
                &bytes,
                name,
                &SessionOptions {
                    provider: Provider::Cuda,
                    strict_provider: true,
                    ..SessionOptions::default()
                },
            )?;
            let hostf = host_fps(&mut host, &frame, frames / 2)?;
            println!(
                "{name} {w}x{h}: gpu {gpu1:.1} fps, gpu x2 {gpu2:.1}, gpu b4 {gpub4:.1}, host {hostf:.1} | parity vs CPU: max {max}, mean {:.4}, PSNR {psnr:.2} dB",
                sum / n
            );
            rows.push(format!(
                "{{\"model\":\"{name}\",\"width\":{w},\"height\":{h},\"gpu_fps\":{gpu1:.2},\"gpu_x2_fps\":{gpu2:.2},\"gpu_b4_fps\":{gpub4:.2},\"host_fps\":{hostf:.2},\"parity_max\":{max},\"parity_mean\":{:.5},\"parity_psnr_db\":{psnr:.3}}}",
                sum / n
            ));
        }
    }
    if let Some(p) = json_path {
        let json = format!(
            "{{\"device\":\"{}\",\"frames\":{frames},\"rows\":[{}]}}\n",
            gpu.name,
            rows.join(",")
        );
        std::fs::write(&p, json).with_context(|| format!("writing {p}"))?;
    }
    Ok(())
}
