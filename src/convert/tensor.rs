//! Frames and tightly packed RGB8 images to and from planar RGB float tensors in `[-1, 1]`.

use super::color::{ChromaUpsampling, ColorMatrix, RgbToYuv, YuvEncoding, YuvToRgb, upsample_row};
use super::format::PixelFormat;
use super::frame::{ConvertError, FrameMut, FrameRef, plane_row, plane_row_mut, validate_layout};
use super::packing::{bpp_of, pack_kernel, unpack_kernel};

/// Height and width rounded up to multiples of `m` (the model's size constraint).
///
/// `m` of 0 or 1 means no constraint. Sizes too large to round up return `usize::MAX`, which
/// no buffer can match, so a later length check fails instead of wrapping.
pub fn padded_size(h: usize, w: usize, m: usize) -> (usize, usize) {
    let m = m.max(1);
    (
        h.checked_next_multiple_of(m).unwrap_or(usize::MAX),
        w.checked_next_multiple_of(m).unwrap_or(usize::MAX),
    )
}

/// Number of floats [`frame_to_tensor`] writes for an `h x w` frame padded to multiples of
/// `m` (`3 * ph * pw`), saturating at `usize::MAX`.
pub fn tensor_len(h: usize, w: usize, m: usize) -> usize {
    let (ph, pw) = padded_size(h, w, m);
    ph.saturating_mul(pw).saturating_mul(3)
}

/// Converts a frame into a planar RGB tensor in `[-1, 1]`, padded to multiples of
/// `pad_multiple` (0 or 1: no padding) by replicating the last row and column.
///
/// Writes `3 * ph * pw` floats at the start of `out` and returns `(ph, pw)`. YUV frames use
/// `encoding` (a [`YuvEncoding`], or a [`ColorMatrix`] for limited range) and
/// [`ChromaUpsampling::Bilinear`]; see [`frame_to_tensor_with`] to choose.
pub fn frame_to_tensor(
    frame: &FrameRef,
    encoding: impl Into<YuvEncoding>,
    pad_multiple: usize,
    out: &mut [f32],
) -> Result<(usize, usize), ConvertError> {
    frame_to_tensor_with(
        frame,
        encoding,
        ChromaUpsampling::default(),
        pad_multiple,
        out,
    )
}

/// [`frame_to_tensor`] with an explicit chroma upsampling mode (only used for YUV formats).
pub fn frame_to_tensor_with(
    frame: &FrameRef,
    encoding: impl Into<YuvEncoding>,
    upsampling: ChromaUpsampling,
    pad_multiple: usize,
    out: &mut [f32],
) -> Result<(usize, usize), ConvertError> {
    let (format, w, h) = (frame.format, frame.width, frame.height);
    validate_layout(format, w, h, frame.planes.map(<[u8]>::len), frame.strides)?;
    let (ph, pw) = padded_size(h, w, pad_multiple);
    let plane_len = ph.checked_mul(pw).ok_or(ConvertError::SizeOverflow {
        format,
        width: w,
        height: h,
    })?;
    let needed = plane_len.checked_mul(3).ok_or(ConvertError::SizeOverflow {
        format,
        width: w,
        height: h,
    })?;
    if out.len() < needed {
        return Err(ConvertError::TensorTooShort {
            len: out.len(),
            needed,
            height: ph,
            width: pw,
        });
    }

    let (r, rest) = out[..needed].split_at_mut(plane_len);
    let (g, b) = rest.split_at_mut(plane_len);
    let rows = r
        .chunks_exact_mut(pw)
        .zip(g.chunks_exact_mut(pw))
        .zip(b.chunks_exact_mut(pw))
        .take(h)
        .enumerate();

    match format {
        PixelFormat::I420 | PixelFormat::Nv12 => {
            let c = YuvToRgb::new(encoding.into());
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            for (y, ((rr, gr), br)) in rows {
                let (rw, gw, bw) = (&mut rr[..w], &mut gr[..w], &mut br[..w]);
                let cy = y / 2;
                let (ny, wa, wb) = match upsampling {
                    ChromaUpsampling::Nearest => (cy, 1.0, 0.0),
                    // Luma row y sits at chroma coordinate y/2 - 1/4: 3/4 of its own chroma
                    // row plus 1/4 of the one above (even y) or below (odd y), edge-clamped.
                    ChromaUpsampling::Bilinear if y % 2 == 0 => (cy.saturating_sub(1), 0.75, 0.25),
                    ChromaUpsampling::Bilinear => ((cy + 1).min(ch - 1), 0.75, 0.25),
                };
                let luma = plane_row(frame.planes[0], frame.strides[0], y, w);
                // The G row is free until the final combine, so it serves as scratch for one
                // vertically interpolated chroma row; U is expanded into R, V into B.
                let scratch = &mut gw[..cw];
                if format == PixelFormat::I420 {
                    for (plane, dst) in [(1, &mut *rw), (2, &mut *bw)] {
                        let a = plane_row(frame.planes[plane], frame.strides[plane], cy, cw);
                        let b = plane_row(frame.planes[plane], frame.strides[plane], ny, cw);
                        for ((s, &a), &b) in scratch.iter_mut().zip(a).zip(b) {
                            *s = wa * f32::from(a) + wb * f32::from(b) - 128.0;
                        }
                        upsample_row(scratch, dst, upsampling);
                    }
                } else {
                    let a = plane_row(frame.planes[1], frame.strides[1], cy, 2 * cw);
                    let b = plane_row(frame.planes[1], frame.strides[1], ny, 2 * cw);
                    let (a, b) = (a.as_chunks::<2>().0, b.as_chunks::<2>().0);
                    for (i, dst) in [(0, &mut *rw), (1, &mut *bw)] {
                        for ((s, a), b) in scratch.iter_mut().zip(a).zip(b) {
                            *s = wa * f32::from(a[i & 1]) + wb * f32::from(b[i & 1]) - 128.0;
                        }
                        upsample_row(scratch, dst, upsampling);
                    }
                }
                c.combine_row(luma, rw, gw, bw);
                pad_row(rr, gr, br, w);
            }
        }
        _ => {
            let kernel = unpack_kernel(format);
            let row_bytes = w * bpp_of(format);
            for (y, ((rr, gr), br)) in rows {
                kernel(
                    plane_row(frame.planes[0], frame.strides[0], y, row_bytes),
                    &mut rr[..w],
                    &mut gr[..w],
                    &mut br[..w],
                );
                pad_row(rr, gr, br, w);
            }
        }
    }

    // Replicate the last row into the padded rows of each plane.
    for plane in [r, g, b] {
        let (top, bottom) = plane.split_at_mut(h * pw);
        let last = &top[(h - 1) * pw..];
        for row in bottom.chunks_exact_mut(pw) {
            row.copy_from_slice(last);
        }
    }
    Ok((ph, pw))
}

/// Converts the top-left `frame.height x frame.width` of a planar RGB tensor of size
/// `tensor_h x tensor_w` (values clamped to `[-1, 1]`) into `frame`.
///
/// For formats with an alpha or padding byte, that byte is copied from `alpha_from` when it is
/// a 4-byte packed frame of the same size (typically the input frame), else set to 255.
/// YUV output uses `encoding` and averages each 2x2 block of chroma (partial blocks at odd
/// edges average the pixels they have). Bytes past each row, up to the stride, are untouched.
pub fn tensor_to_frame(
    tensor: &[f32],
    tensor_h: usize,
    tensor_w: usize,
    encoding: impl Into<YuvEncoding>,
    alpha_from: Option<&FrameRef>,
    frame: &mut FrameMut,
) -> Result<(), ConvertError> {
    let (format, w, h) = (frame.format, frame.width, frame.height);
    validate_layout(
        format,
        w,
        h,
        frame.planes.each_ref().map(|p| p.len()),
        frame.strides,
    )?;
    if tensor_h < h || tensor_w < w {
        return Err(ConvertError::TensorSmallerThanFrame {
            tensor_h,
            tensor_w,
            height: h,
            width: w,
        });
    }
    let overflow = ConvertError::SizeOverflow {
        format,
        width: tensor_w,
        height: tensor_h,
    };
    let plane_len = tensor_h.checked_mul(tensor_w).ok_or(overflow.clone())?;
    let needed = plane_len.checked_mul(3).ok_or(overflow)?;
    if tensor.len() < needed {
        return Err(ConvertError::TensorTooShort {
            len: tensor.len(),
            needed,
            height: tensor_h,
            width: tensor_w,
        });
    }
    if let Some(src) = alpha_from {
        if src.width != w || src.height != h {
            return Err(ConvertError::AlphaSizeMismatch {
                src_width: src.width,
                src_height: src.height,
                width: w,
                height: h,
            });
        }
        validate_layout(src.format, w, h, src.planes.map(<[u8]>::len), src.strides)?;
    }

    let r = &tensor[..plane_len];
    let g = &tensor[plane_len..2 * plane_len];
    let b = &tensor[2 * plane_len..needed];
    let row = |plane, y| tensor_row(plane, tensor_w, y, w);

    match format {
        PixelFormat::I420 | PixelFormat::Nv12 => {
            let c = RgbToYuv::new(encoding.into());
            for y in 0..h {
                let dst = plane_row_mut(frame.planes[0], frame.strides[0], y, w);
                c.luma_row(row(r, y), row(g, y), row(b, y), dst);
            }
            let cw = w.div_ceil(2);
            for cy in 0..h.div_ceil(2) {
                let (y0, y1) = (2 * cy, (2 * cy + 1).min(h - 1));
                let rows = [
                    row(r, y0),
                    row(r, y1),
                    row(g, y0),
                    row(g, y1),
                    row(b, y0),
                    row(b, y1),
                ];
                if format == PixelFormat::I420 {
                    let [_, pu, pv] = &mut frame.planes;
                    let u = plane_row_mut(pu, frame.strides[1], cy, cw);
                    let v = plane_row_mut(pv, frame.strides[2], cy, cw);
                    c.chroma_row(rows, u, v, false);
                } else {
                    let uv = plane_row_mut(frame.planes[1], frame.strides[1], cy, 2 * cw);
                    c.chroma_row(rows, uv, &mut [], true);
                }
            }
        }
        _ => {
            let kernel = pack_kernel(format);
            let row_bytes = w * bpp_of(format);
            // Only a 4-byte packed source has an alpha byte to copy; 3-byte output has none.
            let alpha_src = alpha_from
                .filter(|_| format.bytes_per_pixel() == Some(4))
                .and_then(|src| Some((src, 8 * src.format.alpha_offset()? as u32)));
            for y in 0..h {
                let dst = plane_row_mut(frame.planes[0], frame.strides[0], y, row_bytes);
                let alpha = alpha_src.map(|(src, shift)| {
                    (plane_row(src.planes[0], src.strides[0], y, 4 * w), shift)
                });
                kernel(row(r, y), row(g, y), row(b, y), dst, alpha);
            }
        }
    }
    Ok(())
}

/// Converts a tightly packed RGB8 image (`width * height * 3` bytes, rows top to bottom) into a
/// `3 x height x width` tensor at the start of `out`. Note the argument order: image-style
/// `width, height` here, tensor-style `height, width` in [`tensor_to_rgb8`].
pub fn rgb8_to_tensor(
    rgb: &[u8],
    width: usize,
    height: usize,
    out: &mut [f32],
) -> Result<(), ConvertError> {
    let frame = FrameRef {
        format: PixelFormat::Rgb,
        width,
        height,
        planes: [rgb, &[], &[]],
        strides: [rgb8_stride(width, height)?, 0, 0],
    };
    frame_to_tensor(&frame, ColorMatrix::Bt601, 1, out).map(|_| ())
}

/// Converts a `3 x height x width` tensor into a tightly packed RGB8 image in `out`
/// (`width * height * 3` bytes).
pub fn tensor_to_rgb8(
    tensor: &[f32],
    height: usize,
    width: usize,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    let stride = rgb8_stride(width, height)?;
    let mut frame = FrameMut {
        format: PixelFormat::Rgb,
        width,
        height,
        planes: [out, &mut [], &mut []],
        strides: [stride, 0, 0],
    };
    tensor_to_frame(tensor, height, width, ColorMatrix::Bt601, None, &mut frame)
}

fn rgb8_stride(width: usize, height: usize) -> Result<usize, ConvertError> {
    width.checked_mul(3).ok_or(ConvertError::SizeOverflow {
        format: PixelFormat::Rgb,
        width,
        height,
    })
}

/// The first `w` values of row `y` of a tensor plane `tw` wide (checked by the caller).
#[inline]
fn tensor_row(plane: &[f32], tw: usize, y: usize, w: usize) -> &[f32] {
    &plane[y * tw..][..w]
}

/// Replicates column `w - 1` into the padded columns of one row of each plane.
#[inline]
fn pad_row(r: &mut [f32], g: &mut [f32], b: &mut [f32], w: usize) {
    for row in [r, g, b] {
        let last = row[w - 1];
        row[w..].fill(last);
    }
}

#[cfg(test)]
mod tests;
