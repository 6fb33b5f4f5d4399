//! Part (c): frame <-> tensor conversion against a plain memory copy.

use std::time::{Duration, Instant};

use anyhow::Result;

use nlcl::convert::{self, ColorMatrix, PixelFormat};

use super::child::TestFrame;
use super::{Ctx, RowC, bar};

/// Batches per measurement of (c); the fastest batch is kept (noise only ever adds time).
const C_BATCHES: usize = 30;

/// How many calls of `f` make a batch of about 2 ms (at least one).
fn batch_len(mut f: impl FnMut() -> Result<()>) -> Result<usize> {
    f()?;
    let t = Instant::now();
    f()?;
    let one = t.elapsed().max(Duration::from_nanos(50));
    Ok((Duration::from_millis(2).as_nanos() / one.as_nanos()).clamp(1, 1_000_000) as usize)
}

/// Nanoseconds per call of one batch of `n` calls.
fn batch_ns(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t.elapsed().as_nanos() as f64 / n as f64)
}

pub(super) fn part_c(ctx: &Ctx) -> Result<Vec<RowC>> {
    let formats = [PixelFormat::Rgbx, PixelFormat::I420, PixelFormat::Nv12];
    let bar = bar((ctx.args.sizes.len() * formats.len()) as u64, "(c)");
    let mut rows = Vec::new();
    for &size in &ctx.args.sizes {
        for format in formats {
            bar.set_message(format!("{size} {}", format.name()));
            let input = TestFrame::new(format, size)?;
            let mut output = TestFrame::new(format, size)?;
            let (h, w) = (size.height, size.width);
            let mut tensor = vec![0.0f32; 3 * h * w];
            convert::frame_to_tensor(&input.view(), ColorMatrix::Bt601, 1, &mut tensor)?;
            let frame_bytes = input.bytes();
            let tensor_bytes = tensor.len() * 4;
            let (src_f, mut dst_f) = (vec![7u8; frame_bytes], vec![0u8; frame_bytes]);
            let (src_t, mut dst_t) = (vec![7u8; tensor_bytes], vec![0u8; tensor_bytes]);
            let mut scratch = vec![0.0f32; tensor.len()];
            let mut to_tensor = || -> Result<()> {
                convert::frame_to_tensor(&input.view(), ColorMatrix::Bt601, 1, &mut scratch)?;
                std::hint::black_box(&scratch);
                Ok(())
            };
            let mut to_frame = || -> Result<()> {
                convert::tensor_to_frame(
                    &tensor,
                    h,
                    w,
                    ColorMatrix::Bt601,
                    None,
                    &mut output.view_mut(),
                )?;
                std::hint::black_box(&output.planes);
                Ok(())
            };
            let mut copy_frame = || -> Result<()> {
                dst_f.copy_from_slice(std::hint::black_box(&src_f));
                std::hint::black_box(&dst_f);
                Ok(())
            };
            let mut copy_tensor = || -> Result<()> {
                dst_t.copy_from_slice(std::hint::black_box(&src_t));
                std::hint::black_box(&dst_t);
                Ok(())
            };
            let n = [
                batch_len(&mut to_tensor)?,
                batch_len(&mut to_frame)?,
                batch_len(&mut copy_frame)?,
                batch_len(&mut copy_tensor)?,
            ];
            // Interleave the four measurements batch by batch; keep each one's fastest batch.
            let mut best = [f64::INFINITY; 4];
            for _ in 0..C_BATCHES {
                best[0] = best[0].min(batch_ns(n[0], &mut to_tensor)?);
                best[1] = best[1].min(batch_ns(n[1], &mut to_frame)?);
                best[2] = best[2].min(batch_ns(n[2], &mut copy_frame)?);
                best[3] = best[3].min(batch_ns(n[3], &mut copy_tensor)?);
            }
            let [to_t, to_f, cf, ct] = best;
            rows.push(RowC {
                size,
                format: format.name().into(),
                frame_bytes,
                tensor_bytes,
                to_tensor_ns: to_t,
                to_frame_ns: to_f,
                copy_frame_bytes_ns: cf,
                copy_tensor_bytes_ns: ct,
                to_tensor_vs_copy: to_t / ct,
                to_frame_vs_copy: to_f / ct,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}
