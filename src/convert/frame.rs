//! Borrowed frame views ([`FrameRef`], [`FrameMut`]), their layout validation, tightly packed
//! frames, frame copies, and [`ConvertError`].

use thiserror::Error;

use super::format::PixelFormat;

/// Borrowed view of one input frame: planes and their strides in bytes.
///
/// Unused planes (index >= [`PixelFormat::n_planes`]) should be empty; they are ignored.
/// Each used plane must hold `stride * (rows - 1) + row_bytes` bytes: the last row may be
/// shorter than the stride.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// Pixel format of the planes.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Plane data; for I420 Y, U, V; for NV12 Y, UV; packed formats use plane 0.
    pub planes: [&'a [u8]; 3],
    /// Distance in bytes between the starts of two rows, per plane.
    pub strides: [usize; 3],
}

/// Mutable view of one output frame: planes and their strides in bytes.
///
/// Same layout rules as [`FrameRef`]. Bytes between the end of a row and the stride are left
/// untouched.
#[derive(Debug)]
pub struct FrameMut<'a> {
    /// Pixel format of the planes.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Plane data; for I420 Y, U, V; for NV12 Y, UV; packed formats use plane 0.
    pub planes: [&'a mut [u8]; 3],
    /// Distance in bytes between the starts of two rows, per plane.
    pub strides: [usize; 3],
}

/// Why a conversion was refused. Nothing is written when an error is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConvertError {
    /// A frame copy between frames of different formats or sizes.
    #[error("cannot copy a {src} frame into a {dst} frame")]
    FrameMismatch {
        /// Source format and size.
        src: String,
        /// Destination format and size.
        dst: String,
    },
    /// Width or height is zero.
    #[error("frame size {width}x{height} is empty: width and height must be at least 1")]
    ZeroSize {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// A stride is smaller than the bytes of one row.
    #[error(
        "{format} plane {plane} ({plane_name}): stride {stride} bytes is smaller than one row \
         of {row_bytes} bytes"
    )]
    StrideTooSmall {
        /// Frame format.
        format: PixelFormat,
        /// Plane index.
        plane: usize,
        /// Plane name (Y, U, V, UV, packed).
        plane_name: &'static str,
        /// Stride given.
        stride: usize,
        /// Bytes in one row of this plane.
        row_bytes: usize,
    },
    /// A plane holds fewer bytes than its rows need.
    #[error(
        "{format} plane {plane} ({plane_name}) is too short: {len} bytes, need {needed} \
         ({rows} rows, stride {stride}, last row {row_bytes} bytes)"
    )]
    PlaneTooShort {
        /// Frame format.
        format: PixelFormat,
        /// Plane index.
        plane: usize,
        /// Plane name (Y, U, V, UV, packed).
        plane_name: &'static str,
        /// Length of the plane slice.
        len: usize,
        /// Bytes needed: `stride * (rows - 1) + row_bytes`.
        needed: usize,
        /// Rows in this plane.
        rows: usize,
        /// Stride given.
        stride: usize,
        /// Bytes in one row of this plane.
        row_bytes: usize,
    },
    /// Sizes so large that computing byte or element counts overflows.
    #[error("{width}x{height} {format}: frame or tensor size overflows usize")]
    SizeOverflow {
        /// Frame format.
        format: PixelFormat,
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// The tensor slice is shorter than `3 * height * width` floats.
    #[error("tensor too short: {len} floats, need {needed} (3 x {height} x {width})")]
    TensorTooShort {
        /// Length of the tensor slice.
        len: usize,
        /// Floats needed.
        needed: usize,
        /// Tensor height.
        height: usize,
        /// Tensor width.
        width: usize,
    },
    /// The tensor's height or width is smaller than the frame it should fill.
    #[error("tensor {tensor_h}x{tensor_w} (HxW) is smaller than the frame {height}x{width}")]
    TensorSmallerThanFrame {
        /// Tensor height.
        tensor_h: usize,
        /// Tensor width.
        tensor_w: usize,
        /// Frame height.
        height: usize,
        /// Frame width.
        width: usize,
    },
    /// The frame given as alpha source does not have the output frame's size.
    #[error("alpha source frame is {src_width}x{src_height}, output frame is {width}x{height}")]
    AlphaSizeMismatch {
        /// Alpha source width.
        src_width: usize,
        /// Alpha source height.
        src_height: usize,
        /// Output width.
        width: usize,
        /// Output height.
        height: usize,
    },
}

/// Bytes of a tightly packed `width x height` frame (rows without padding, planes back to
/// back, as [`tight_frame`] reads it); `None` on overflow.
pub fn tight_frame_len(format: PixelFormat, width: usize, height: usize) -> Option<usize> {
    format
        .tight_layout(width, height)
        .map(|(_, _, total)| total)
}

/// [`PixelFormat::tight_layout`], checked against a buffer of `len` bytes.
fn checked_tight_layout(
    format: PixelFormat,
    width: usize,
    height: usize,
    len: usize,
) -> Result<([usize; 3], [usize; 3], usize), ConvertError> {
    let (offsets, strides, total) =
        format
            .tight_layout(width, height)
            .ok_or(ConvertError::SizeOverflow {
                format,
                width,
                height,
            })?;
    if len < total {
        return Err(ConvertError::PlaneTooShort {
            format,
            plane: 0,
            plane_name: format.plane_name(0),
            len,
            needed: total,
            rows: height,
            stride: strides[0],
            row_bytes: strides[0],
        });
    }
    Ok((offsets, strides, total))
}

/// A view of a tightly packed frame (see [`tight_frame_len`]) held in `bytes`.
pub fn tight_frame(
    format: PixelFormat,
    width: usize,
    height: usize,
    bytes: &[u8],
) -> Result<FrameRef<'_>, ConvertError> {
    let (offsets, strides, total) = checked_tight_layout(format, width, height, bytes.len())?;
    let mut planes: [&[u8]; 3] = [&[], &[], &[]];
    for p in 0..format.n_planes() {
        let end = if p + 1 < format.n_planes() {
            offsets[p + 1]
        } else {
            total
        };
        planes[p] = &bytes[offsets[p]..end];
    }
    Ok(FrameRef {
        format,
        width,
        height,
        planes,
        strides,
    })
}

/// A mutable view of a tightly packed frame held in `bytes` (see [`tight_frame`]).
pub fn tight_frame_mut(
    format: PixelFormat,
    width: usize,
    height: usize,
    bytes: &mut [u8],
) -> Result<FrameMut<'_>, ConvertError> {
    let (offsets, strides, total) = checked_tight_layout(format, width, height, bytes.len())?;
    let bytes = &mut bytes[..total];
    let planes: [&mut [u8]; 3] = match format.n_planes() {
        1 => [bytes, &mut [], &mut []],
        2 => {
            let (y, uv) = bytes.split_at_mut(offsets[1]);
            [y, uv, &mut []]
        }
        _ => {
            let (y, rest) = bytes.split_at_mut(offsets[1]);
            let (u, v) = rest.split_at_mut(offsets[2] - offsets[1]);
            [y, u, v]
        }
    };
    Ok(FrameMut {
        format,
        width,
        height,
        planes,
        strides,
    })
}

/// Copies `src` into `dst` plane by plane, row by row (strides may differ; bytes past each row
/// are untouched). Both must have the same format and size.
pub fn copy_frame(src: &FrameRef, dst: &mut FrameMut) -> Result<(), ConvertError> {
    let (format, w, h) = (src.format, src.width, src.height);
    if (dst.format, dst.width, dst.height) != (format, w, h) {
        return Err(ConvertError::FrameMismatch {
            src: format!("{format} {w}x{h}"),
            dst: format!("{} {}x{}", dst.format, dst.width, dst.height),
        });
    }
    validate_layout(format, w, h, src.planes.map(<[u8]>::len), src.strides)?;
    validate_layout(
        format,
        w,
        h,
        dst.planes.each_ref().map(|p| p.len()),
        dst.strides,
    )?;
    for plane in 0..format.n_planes() {
        let (row_bytes, rows) =
            format
                .plane_dims(plane, w, h)
                .ok_or(ConvertError::SizeOverflow {
                    format,
                    width: w,
                    height: h,
                })?;
        let (ss, ds) = (src.strides[plane], dst.strides[plane]);
        if ss == row_bytes && ds == row_bytes {
            let n = row_bytes * rows;
            dst.planes[plane][..n].copy_from_slice(&src.planes[plane][..n]);
            continue;
        }
        for y in 0..rows {
            plane_row_mut(dst.planes[plane], ds, y, row_bytes).copy_from_slice(plane_row(
                src.planes[plane],
                ss,
                y,
                row_bytes,
            ));
        }
    }
    Ok(())
}

/// Checks size, strides and plane lengths so that the row accessors below cannot go out of
/// bounds.
pub(crate) fn validate_layout(
    format: PixelFormat,
    width: usize,
    height: usize,
    lens: [usize; 3],
    strides: [usize; 3],
) -> Result<(), ConvertError> {
    if width == 0 || height == 0 {
        return Err(ConvertError::ZeroSize { width, height });
    }
    let overflow = ConvertError::SizeOverflow {
        format,
        width,
        height,
    };
    for plane in 0..format.n_planes() {
        let (row_bytes, rows) = format
            .plane_dims(plane, width, height)
            .ok_or(overflow.clone())?;
        let (stride, len) = (strides[plane], lens[plane]);
        let plane_name = format.plane_name(plane);
        if stride < row_bytes {
            return Err(ConvertError::StrideTooSmall {
                format,
                plane,
                plane_name,
                stride,
                row_bytes,
            });
        }
        let needed = stride
            .checked_mul(rows - 1)
            .and_then(|n| n.checked_add(row_bytes))
            .ok_or(overflow.clone())?;
        if len < needed {
            return Err(ConvertError::PlaneTooShort {
                format,
                plane,
                plane_name,
                len,
                needed,
                rows,
                stride,
                row_bytes,
            });
        }
    }
    Ok(())
}

/// Row `y` of a validated plane.
#[inline]
pub(super) fn plane_row(plane: &[u8], stride: usize, y: usize, row_bytes: usize) -> &[u8] {
    &plane[y * stride..][..row_bytes]
}

/// Row `y` of a validated mutable plane.
#[inline]
pub(super) fn plane_row_mut(
    plane: &mut [u8],
    stride: usize,
    y: usize,
    row_bytes: usize,
) -> &mut [u8] {
    &mut plane[y * stride..][..row_bytes]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::Rng;
    use crate::convert::{ColorMatrix, frame_to_tensor, tensor_to_frame};

    #[test]
    fn tight_frames_round_trip_through_views() {
        let mut rng = Rng(99);
        for format in PixelFormat::ALL {
            for (w, h) in [(1, 1), (3, 5), (16, 9)] {
                let len = tight_frame_len(format, w, h).unwrap();
                let bytes: Vec<u8> = (0..len).map(|_| rng.range(16, 235)).collect();
                let frame = tight_frame(format, w, h, &bytes).unwrap();
                let mut t = vec![0f32; 3 * w * h];
                frame_to_tensor(&frame, ColorMatrix::Bt601, 1, &mut t).unwrap();
                let mut out = vec![0u8; len];
                let mut view = tight_frame_mut(format, w, h, &mut out).unwrap();
                tensor_to_frame(&t, h, w, ColorMatrix::Bt601, Some(&frame), &mut view).unwrap();
                if !format.is_yuv() {
                    assert_eq!(out, bytes, "{format} {w}x{h}");
                }
                assert!(tight_frame(format, w, h, &bytes[..len - 1]).is_err());
            }
        }
    }

    #[test]
    fn copy_frame_handles_strides_and_refuses_mismatches() {
        let (w, h) = (5, 3);
        let src: Vec<u8> = (0..w * h * 3).map(|i| i as u8).collect();
        let from = tight_frame(PixelFormat::Rgb, w, h, &src).unwrap();
        let mut padded = vec![0xAAu8; 20 * (h - 1) + w * 3];
        let mut to = FrameMut {
            format: PixelFormat::Rgb,
            width: w,
            height: h,
            planes: [&mut padded, &mut [], &mut []],
            strides: [20, 0, 0],
        };
        copy_frame(&from, &mut to).unwrap();
        for y in 0..h {
            assert_eq!(
                &padded[y * 20..y * 20 + w * 3],
                &src[y * w * 3..(y + 1) * w * 3]
            );
            if y + 1 < h {
                assert!(
                    padded[y * 20 + w * 3..(y + 1) * 20]
                        .iter()
                        .all(|&b| b == 0xAA)
                );
            }
        }
        let mut other = vec![0u8; 4 * w * h];
        let mut wrong = tight_frame_mut(PixelFormat::Rgbx, w, h, &mut other).unwrap();
        let e = copy_frame(&from, &mut wrong).unwrap_err();
        assert!(e.to_string().contains("RGBx"), "{e}");
    }
}
