//! Pixel-format conversion between video frames and model tensors.
//!
//! The network takes and returns planar float32 RGB in `[-1, 1]` (NCHW, one image = three
//! `H x W` planes, R then G then B, `value = pixel / 127.5 - 1`). Video arrives as GStreamer
//! hands it: one to three planes, each with a stride in bytes that may be larger than a row.
//!
//! * [`frame_to_tensor`] converts a [`FrameRef`] into a tensor, optionally padded up to a
//!   multiple of `m` in height and width (edge replication), for models that need it.
//! * [`tensor_to_frame`] converts the top-left `height x width` of a (possibly padded) tensor
//!   back into a [`FrameMut`]: clamp to `[-1, 1]`, then `round((v + 1) * 127.5)` (exact .5
//!   ties, which only `v = 0` produces, go to even).
//! * [`rgb8_to_tensor`] / [`tensor_to_rgb8`] do the same for a tightly packed RGB8 image
//!   (image files, metrics).
//!
//! Nothing here allocates: the caller owns every buffer, so these functions can run per frame.
//! Every size, stride and length is validated first and reported as a [`ConvertError`]; the
//! functions never panic on bad input.
//!
//! YUV formats ([`PixelFormat::I420`], [`PixelFormat::Nv12`]) use the [`YuvEncoding`] (matrix
//! and limited or full range) the caller passes, and chroma sited at the centre of each 2x2
//! luma block (the siting that a 2x2 average produces).

use thiserror::Error;

/// Video pixel formats the converter understands, named as in GStreamer caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 8-bit R, G, B (3 bytes per pixel).
    Rgb,
    /// Packed 8-bit B, G, R (3 bytes per pixel).
    Bgr,
    /// Packed R, G, B, alpha.
    Rgba,
    /// Packed B, G, R, alpha.
    Bgra,
    /// Packed R, G, B, unused byte.
    Rgbx,
    /// Packed B, G, R, unused byte.
    Bgrx,
    /// Packed unused byte, R, G, B.
    Xrgb,
    /// Packed unused byte, B, G, R.
    Xbgr,
    /// Planar Y, U, V; chroma subsampled 2x2 (`ceil(w/2) x ceil(h/2)`).
    I420,
    /// Y plane plus one interleaved U/V plane; chroma subsampled 2x2.
    Nv12,
}

impl PixelFormat {
    /// Every supported format, in declaration order.
    pub const ALL: [PixelFormat; 10] = [
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::Rgba,
        PixelFormat::Bgra,
        PixelFormat::Rgbx,
        PixelFormat::Bgrx,
        PixelFormat::Xrgb,
        PixelFormat::Xbgr,
        PixelFormat::I420,
        PixelFormat::Nv12,
    ];

    /// The GStreamer caps name of the format (`"RGBx"`, `"I420"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            PixelFormat::Rgb => "RGB",
            PixelFormat::Bgr => "BGR",
            PixelFormat::Rgba => "RGBA",
            PixelFormat::Bgra => "BGRA",
            PixelFormat::Rgbx => "RGBx",
            PixelFormat::Bgrx => "BGRx",
            PixelFormat::Xrgb => "xRGB",
            PixelFormat::Xbgr => "xBGR",
            PixelFormat::I420 => "I420",
            PixelFormat::Nv12 => "NV12",
        }
    }

    /// Parses a GStreamer caps name. Case-sensitive, as in caps (`"RGBx"` and `"RGBA"` differ
    /// only in the meaning of the fourth byte).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Number of memory planes (1 for packed RGB, 3 for I420, 2 for NV12).
    pub fn n_planes(&self) -> usize {
        match self {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            _ => 1,
        }
    }

    /// Whether this is a YUV format (the [`ColorMatrix`] only matters for these).
    pub fn is_yuv(&self) -> bool {
        matches!(self, PixelFormat::I420 | PixelFormat::Nv12)
    }

    /// Bytes per pixel of a packed RGB format; `None` for YUV formats.
    pub fn bytes_per_pixel(&self) -> Option<usize> {
        match self {
            PixelFormat::Rgb | PixelFormat::Bgr => Some(3),
            PixelFormat::I420 | PixelFormat::Nv12 => None,
            _ => Some(4),
        }
    }

    /// Byte offsets of R, G and B within a packed pixel; `None` for YUV formats. Must agree
    /// with [`unpack_kernel`] and [`pack_kernel`] (tested).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn rgb_offsets(&self) -> Option<[usize; 3]> {
        match self {
            PixelFormat::Rgb | PixelFormat::Rgba | PixelFormat::Rgbx => Some([0, 1, 2]),
            PixelFormat::Bgr | PixelFormat::Bgra | PixelFormat::Bgrx => Some([2, 1, 0]),
            PixelFormat::Xrgb => Some([1, 2, 3]),
            PixelFormat::Xbgr => Some([3, 2, 1]),
            PixelFormat::I420 | PixelFormat::Nv12 => None,
        }
    }

    /// Offsets and strides of the planes of a tightly packed `width x height` frame (rows
    /// without padding, planes back to back) and its total size; `None` on overflow.
    pub(crate) fn tight_layout(
        &self,
        width: usize,
        height: usize,
    ) -> Option<([usize; 3], [usize; 3], usize)> {
        let mut offsets = [0; 3];
        let mut strides = [0; 3];
        let mut total = 0usize;
        for plane in 0..self.n_planes() {
            let (row_bytes, rows) = self.plane_dims(plane, width, height)?;
            offsets[plane] = total;
            strides[plane] = row_bytes;
            total = total.checked_add(row_bytes.checked_mul(rows)?)?;
        }
        Some((offsets, strides, total))
    }

    /// Byte offset of the fourth (alpha or padding) byte in a 4-byte packed pixel.
    pub(crate) fn alpha_offset(&self) -> Option<usize> {
        match self {
            PixelFormat::Rgba | PixelFormat::Bgra | PixelFormat::Rgbx | PixelFormat::Bgrx => {
                Some(3)
            }
            PixelFormat::Xrgb | PixelFormat::Xbgr => Some(0),
            _ => None,
        }
    }

    /// Human-readable plane name for error messages.
    fn plane_name(&self, plane: usize) -> &'static str {
        match (self, plane) {
            (PixelFormat::I420 | PixelFormat::Nv12, 0) => "Y",
            (PixelFormat::I420, 1) => "U",
            (PixelFormat::I420, 2) => "V",
            (PixelFormat::Nv12, 1) => "UV",
            _ => "packed",
        }
    }

    /// `(row_bytes, rows)` of `plane` for a `width x height` frame, or `None` on overflow.
    pub(crate) fn plane_dims(
        &self,
        plane: usize,
        width: usize,
        height: usize,
    ) -> Option<(usize, usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match (self, plane) {
            (PixelFormat::I420 | PixelFormat::Nv12, 0) => Some((width, height)),
            (PixelFormat::I420, _) => Some((cw, ch)),
            (PixelFormat::Nv12, _) => Some((cw.checked_mul(2)?, ch)),
            (packed, _) => Some((width.checked_mul(packed.bytes_per_pixel()?)?, height)),
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// YUV <-> RGB colour matrix (the luma weights `Kr`, `Kb`).
///
/// Pick it from the stream's caps: GStreamer's `VideoColorimetry::matrix()` of the negotiated
/// `VideoInfo` (`colorimetry=bt601` -> [`ColorMatrix::Bt601`], `bt709` ->
/// [`ColorMatrix::Bt709`], `bt2020` -> [`ColorMatrix::Bt2020`]). When caps carry no
/// colorimetry, GStreamer assumes BT.601 up to 576 lines and BT.709 above (see
/// [`ColorMatrix::gst_default_for_height`]); use the same rule so colours match what
/// `videoconvert` would produce. Ignored for RGB formats. The range is a separate choice
/// ([`ColorRange`]); the two together are a [`YuvEncoding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColorMatrix {
    /// ITU-R BT.601 (SD video, `Kr = 0.299, Kb = 0.114`).
    #[default]
    Bt601,
    /// ITU-R BT.709 (HD video, `Kr = 0.2126, Kb = 0.0722`).
    Bt709,
    /// ITU-R BT.2020 non-constant luminance (UHD video, `Kr = 0.2627, Kb = 0.0593`).
    Bt2020,
    /// SMPTE 240M (early HD, `Kr = 0.212, Kb = 0.087`).
    Smpte240m,
    /// FCC (NTSC 1953, `Kr = 0.30, Kb = 0.11`).
    Fcc,
}

impl ColorMatrix {
    /// The matrix GStreamer assumes for a YUV stream of this height when caps name none
    /// (`gst_video_info_set_format`: BT.709 above 576 lines, BT.601 otherwise).
    pub fn gst_default_for_height(height: usize) -> Self {
        if height > 576 {
            ColorMatrix::Bt709
        } else {
            ColorMatrix::Bt601
        }
    }

    /// Luma weights `(Kr, Kb)`, as GStreamer's `gst_video_color_matrix_get_Kr_Kb` gives them.
    fn kr_kb(self) -> (f32, f32) {
        match self {
            ColorMatrix::Bt601 => (0.299, 0.114),
            ColorMatrix::Bt709 => (0.2126, 0.0722),
            ColorMatrix::Bt2020 => (0.2627, 0.0593),
            ColorMatrix::Smpte240m => (0.212, 0.087),
            ColorMatrix::Fcc => (0.30, 0.11),
        }
    }
}

/// The value range of YUV samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColorRange {
    /// "Video" range: Y 16..=235, U/V 16..=240 (`colorimetry` range `2`, most video).
    #[default]
    Limited,
    /// Full range: Y, U, V 0..=255 (`colorimetry` range `1`: JPEG, MJPEG webcams, `jpegdec`).
    Full,
}

/// How a YUV frame's bytes encode RGB: the matrix and the range. Ignored for RGB formats.
///
/// A [`ColorMatrix`] alone converts into the limited-range encoding, the common case for video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct YuvEncoding {
    /// Luma weights.
    pub matrix: ColorMatrix,
    /// Sample range.
    pub range: ColorRange,
}

impl YuvEncoding {
    /// `matrix` with `range`.
    pub fn new(matrix: ColorMatrix, range: ColorRange) -> Self {
        YuvEncoding { matrix, range }
    }

    /// `(luma offset, luma excursion, chroma excursion)` in 8-bit levels: black is at the
    /// offset, white at offset + luma excursion, and chroma spans +-excursion/2 around 128.
    fn levels(self) -> (f32, f32, f32) {
        match self.range {
            ColorRange::Limited => (16.0, 219.0, 224.0),
            ColorRange::Full => (0.0, 255.0, 255.0),
        }
    }
}

impl From<ColorMatrix> for YuvEncoding {
    fn from(matrix: ColorMatrix) -> Self {
        YuvEncoding::new(matrix, ColorRange::Limited)
    }
}

/// How 4:2:0 chroma is brought back to full resolution when reading a YUV frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChromaUpsampling {
    /// Each chroma sample covers its 2x2 luma block. A YUV -> tensor -> YUV round trip through
    /// an identity model reproduces the chroma planes exactly.
    Nearest,
    /// Bilinear interpolation between chroma sample centres (weights 3/4 and 1/4), as
    /// `videoconvert` does; smoother input for the model, at the cost of a slight chroma
    /// softening on a YUV round trip.
    #[default]
    Bilinear,
}

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
fn plane_row(plane: &[u8], stride: usize, y: usize, row_bytes: usize) -> &[u8] {
    &plane[y * stride..][..row_bytes]
}

/// The first `w` values of row `y` of a tensor plane `tw` wide (checked by the caller).
#[inline]
fn tensor_row(plane: &[f32], tw: usize, y: usize, w: usize) -> &[f32] {
    &plane[y * tw..][..w]
}

/// Row `y` of a validated mutable plane.
#[inline]
fn plane_row_mut(plane: &mut [u8], stride: usize, y: usize, row_bytes: usize) -> &mut [u8] {
    &mut plane[y * stride..][..row_bytes]
}

fn bpp_of(format: PixelFormat) -> usize {
    format.bytes_per_pixel().unwrap_or(0)
}

/// Replicates column `w - 1` into the padded columns of one row of each plane.
#[inline]
fn pad_row(r: &mut [f32], g: &mut [f32], b: &mut [f32], w: usize) {
    for row in [r, g, b] {
        let last = row[w - 1];
        row[w..].fill(last);
    }
}

/// `pixel / 127.5 - 1`, written as a multiply so it vectorises (a table lookup would be a
/// gather). Exactly invertible by [`to_u8`] for all 256 values (tested).
#[inline(always)]
fn to_unit(v: u8) -> f32 {
    f32::from(v) * (2.0 / 255.0) - 1.0
}

/// `1.5 * 2^23`: adding it to a float in `0..2^22` rounds it to an integer (nearest, ties to
/// even) held in the low mantissa bits. Unlike the saturating `as u8` / `as i32` casts, which
/// LLVM scalarises on x86, this vectorises.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Rounds `x` (already within `0.0..=255.0`) to the nearest integer as a byte.
#[inline(always)]
fn round_u8(x: f32) -> u8 {
    (x + ROUND_MAGIC).to_bits() as u8
}

/// Clamps to `[-1, 1]`, mapping NaN to -1 (`f32::clamp` would keep NaN).
#[inline(always)]
#[allow(clippy::manual_clamp)] // deliberately not `clamp`: NaN must not pass through
fn clamp_unit(v: f32) -> f32 {
    v.max(-1.0).min(1.0)
}

/// `round((clamp(v, -1, 1) + 1) * 127.5)`. Exact ties round to even; away from ties this is
/// the reference formula (tested), and it inverts [`to_unit`] exactly. NaN maps to 0.
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    round_u8(clamp_unit(v) * 127.5 + 127.5)
}

type UnpackFn = fn(&[u8], &mut [f32], &mut [f32], &mut [f32]);
/// Packs three float rows into one pixel row; the optional alpha source is a 4-byte packed row
/// of the same width and the bit shift of its alpha byte within a little-endian u32.
type PackFn = fn(&[f32], &[f32], &[f32], &mut [u8], Option<(&[u8], u32)>);

/// One packed row to three float rows; monomorphised per byte layout so the shuffles are
/// constant and the loop vectorises.
fn unpack_row<const BPP: usize, const R: usize, const G: usize, const B: usize>(
    src: &[u8],
    r: &mut [f32],
    g: &mut [f32],
    b: &mut [f32],
) {
    if BPP == 4 {
        // Whole pixels as u32 lanes: shifts and masks vectorise on plain SSE2, byte gathers
        // do not.
        let px = src.as_chunks::<4>().0;
        let lane = |p: u32, i: usize| ((p >> (8 * i)) & 0xFF) as i32 as f32 * (2.0 / 255.0) - 1.0;
        for (((p, r), g), b) in px.iter().zip(r).zip(g).zip(b) {
            let p = u32::from_le_bytes(*p);
            *r = lane(p, R);
            *g = lane(p, G);
            *b = lane(p, B);
        }
    } else {
        let px = src.as_chunks::<BPP>().0;
        for (((p, r), g), b) in px.iter().zip(r).zip(g).zip(b) {
            *r = to_unit(p[R]);
            *g = to_unit(p[G]);
            *b = to_unit(p[B]);
        }
    }
}

/// Three float rows to one packed row; the fourth byte (if any) comes from the alpha source
/// row when there is one, else 255.
fn pack_row<const BPP: usize, const R: usize, const G: usize, const B: usize, const A: usize>(
    r: &[f32],
    g: &[f32],
    b: &[f32],
    dst: &mut [u8],
    alpha_src: Option<(&[u8], u32)>,
) {
    if BPP == 4 {
        // Build each pixel as one u32 (shifts and ors vectorise on SSE2; byte scatters don't).
        let px = dst.as_chunks_mut::<4>().0;
        let lane = |v: f32, i: usize| u32::from(to_u8(v)) << (8 * i);
        let rgb = |r, g, b| lane(r, R) | lane(g, G) | lane(b, B);
        if let Some((src, shift)) = alpha_src {
            let src = src.as_chunks::<4>().0;
            for ((((p, &r), &g), &b), s) in px.iter_mut().zip(r).zip(g).zip(b).zip(src) {
                let a = (u32::from_le_bytes(*s) >> (shift & 31)) & 0xFF;
                *p = (rgb(r, g, b) | (a << (8 * A))).to_le_bytes();
            }
        } else {
            let alpha = 0xFFu32 << (8 * A);
            for (((p, &r), &g), &b) in px.iter_mut().zip(r).zip(g).zip(b) {
                *p = (rgb(r, g, b) | alpha).to_le_bytes();
            }
        }
    } else {
        let px = dst.as_chunks_mut::<BPP>().0;
        for (((p, &r), &g), &b) in px.iter_mut().zip(r).zip(g).zip(b) {
            p[R] = to_u8(r);
            p[G] = to_u8(g);
            p[B] = to_u8(b);
        }
    }
}

fn unpack_kernel(format: PixelFormat) -> UnpackFn {
    match format {
        PixelFormat::Rgb => unpack_row::<3, 0, 1, 2>,
        PixelFormat::Bgr => unpack_row::<3, 2, 1, 0>,
        PixelFormat::Rgba | PixelFormat::Rgbx => unpack_row::<4, 0, 1, 2>,
        PixelFormat::Bgra | PixelFormat::Bgrx => unpack_row::<4, 2, 1, 0>,
        PixelFormat::Xrgb => unpack_row::<4, 1, 2, 3>,
        PixelFormat::Xbgr => unpack_row::<4, 3, 2, 1>,
        // YUV never reaches here; a no-op keeps this total without panicking.
        PixelFormat::I420 | PixelFormat::Nv12 => |_, _, _, _| {},
    }
}

fn pack_kernel(format: PixelFormat) -> PackFn {
    match format {
        PixelFormat::Rgb => pack_row::<3, 0, 1, 2, 0>,
        PixelFormat::Bgr => pack_row::<3, 2, 1, 0, 0>,
        PixelFormat::Rgba | PixelFormat::Rgbx => pack_row::<4, 0, 1, 2, 3>,
        PixelFormat::Bgra | PixelFormat::Bgrx => pack_row::<4, 2, 1, 0, 3>,
        PixelFormat::Xrgb => pack_row::<4, 1, 2, 3, 0>,
        PixelFormat::Xbgr => pack_row::<4, 3, 2, 1, 0>,
        PixelFormat::I420 | PixelFormat::Nv12 => |_, _, _, _, _| {},
    }
}

/// Horizontal 2x chroma upsampling of `src` (`ceil(w/2)` samples) into `dst` (`w` pixels).
fn upsample_row(src: &[f32], dst: &mut [f32], mode: ChromaUpsampling) {
    let (n, w) = (src.len(), dst.len());
    match mode {
        ChromaUpsampling::Nearest => {
            let (pairs, tail) = dst.as_chunks_mut::<2>();
            for (p, &s) in pairs.iter_mut().zip(src) {
                *p = [s, s];
            }
            if let (Some(t), Some(&s)) = (tail.first_mut(), src.last()) {
                *t = s;
            }
        }
        ChromaUpsampling::Bilinear => {
            // Pixel 2k sits at chroma coordinate k - 1/4, pixel 2k+1 at k + 1/4.
            let at = |k: usize| src[k.min(n - 1)];
            dst[0] = src[0];
            if w > 1 {
                dst[1] = 0.75 * src[0] + 0.25 * at(1);
            }
            // Interior samples k = 1..n-1 without edge clamping.
            if n >= 3 {
                let pairs = dst[2..].as_chunks_mut::<2>().0;
                for (p, s) in pairs.iter_mut().zip(src.windows(3)) {
                    *p = [0.75 * s[1] + 0.25 * s[0], 0.75 * s[1] + 0.25 * s[2]];
                }
            }
            if n >= 2 {
                let k = n - 1;
                dst[2 * k] = 0.75 * src[k] + 0.25 * src[k - 1];
                if 2 * k + 1 < w {
                    dst[2 * k + 1] = src[k];
                }
            }
        }
    }
}

/// `[y_scale, y_offset, rv, gu, gv, bu]` of the YUV -> tensor conversion, for other
/// implementations of it (the GPU kernels) to compute exactly the same values.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn yuv_to_rgb_coefficients(encoding: YuvEncoding) -> [f32; 6] {
    let c = YuvToRgb::new(encoding);
    [c.y_scale, c.y_offset, c.rv, c.gu, c.gv, c.bu]
}

/// `[kr, kg, kb, y_mid, y_gain, u0, u1, u2, v0, v1, v2]` of the tensor -> YUV conversion (see
/// [`yuv_to_rgb_coefficients`]).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn rgb_to_yuv_coefficients(encoding: YuvEncoding) -> [f32; 11] {
    let c = RgbToYuv::new(encoding);
    [
        c.kr, c.kg, c.kb, c.y_mid, c.y_gain, c.u[0], c.u[1], c.u[2], c.v[0], c.v[1], c.v[2],
    ]
}

/// YUV -> RGB coefficients, folded into tensor units.
struct YuvToRgb {
    y_scale: f32,
    y_offset: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl YuvToRgb {
    fn new(encoding: YuvEncoding) -> Self {
        let (kr, kb) = encoding.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y0, ys, cs) = encoding.levels();
        // Limited range: R' = (Y-16)*255/219 + 2(1-Kr)*(V-128)*255/224 on the 0..255 scale
        // (full range: offset 0, excursions 255); tensor value t = R'/127.5 - 1, so the
        // 255/127.5 = 2 factor folds into each coefficient.
        let c = 2.0 / cs;
        Self {
            y_scale: 2.0 / ys,
            y_offset: -(1.0 + 2.0 * y0 / ys),
            rv: 2.0 * (1.0 - kr) * c,
            gu: -2.0 * kb * (1.0 - kb) / kg * c,
            gv: -2.0 * kr * (1.0 - kr) / kg * c,
            bu: 2.0 * (1.0 - kb) * c,
        }
    }

    /// On entry `r` holds upsampled `U - 128` and `b` holds `V - 128`; on exit the three rows
    /// hold clamped RGB tensor values.
    #[inline]
    fn combine_row(&self, luma: &[u8], r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        for (((&y, r), g), b) in luma.iter().zip(r).zip(g).zip(b) {
            let (u, v) = (*r, *b);
            let l = f32::from(y) * self.y_scale + self.y_offset;
            *r = (l + self.rv * v).clamp(-1.0, 1.0);
            *g = (l + self.gu * u + self.gv * v).clamp(-1.0, 1.0);
            *b = (l + self.bu * u).clamp(-1.0, 1.0);
        }
    }
}

/// RGB -> YUV coefficients, from clamped tensor values.
struct RgbToYuv {
    kr: f32,
    kg: f32,
    kb: f32,
    y_mid: f32,
    y_gain: f32,
    u: [f32; 3],
    v: [f32; 3],
}

impl RgbToYuv {
    fn new(encoding: YuvEncoding) -> Self {
        let (kr, kb) = encoding.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y0, ys, cs) = encoding.levels();
        // With L = Kr*r + Kg*g + Kb*b in tensor units (limited range: y0 16, ys 219, cs 224;
        // full range: 0, 255, 255):
        //   Y = y0 + ys/2 * (L + 1)                       (limited: 125.5 + 109.5 L)
        //   U = 128 + cs/4 * (b - L) / (1-Kb)             (limited: 128 + 56/(1-Kb) * (b - L))
        //   V = 128 + cs/4 * (r - L) / (1-Kr)
        let q = cs / 4.0;
        let cu = q / (1.0 - kb);
        let cv = q / (1.0 - kr);
        Self {
            kr,
            kg,
            kb,
            y_mid: y0 + ys / 2.0,
            y_gain: ys / 2.0,
            u: [-cu * kr, -cu * kg, q],
            v: [q, -cv * kg, -cv * kb],
        }
    }

    #[inline]
    fn luma_row(&self, r: &[f32], g: &[f32], b: &[f32], dst: &mut [u8]) {
        for (((d, &r), &g), &b) in dst.iter_mut().zip(r).zip(g).zip(b) {
            let l = self.kr * clamp_unit(r) + self.kg * clamp_unit(g) + self.kb * clamp_unit(b);
            // Within the range's luma limits by construction.
            *d = round_u8(self.y_mid + self.y_gain * l);
        }
    }

    /// Writes one chroma row from luma rows `[r0, r1, g0, g1, b0, b1]` (`r1 == r0` for the last
    /// row of an odd height): I420 into `u` and `v` (`cw` bytes each), NV12 interleaved into
    /// `u` (`2 * cw` bytes) with `v` empty. A lone last column of an odd width averages with
    /// itself, which gives the mean of the pixels the block actually has.
    fn chroma_row(&self, rows: [&[f32]; 6], u: &mut [u8], v: &mut [u8], interleaved: bool) {
        let [r0, r1, g0, g1, b0, b1] = rows.map(|row| row.as_chunks::<2>());
        // Full 2x2 blocks; a plain Map over zipped slices keeps the loop vectorisable.
        let blocks =
            r0.0.iter()
                .zip(r1.0)
                .zip(g0.0)
                .zip(g1.0)
                .zip(b0.0)
                .zip(b1.0)
                .map(|(((((r0, r1), g0), g1), b0), b1)| {
                    let avg = |a: &[f32; 2], b: &[f32; 2]| {
                        0.25 * (clamp_unit(a[0])
                            + clamp_unit(a[1])
                            + clamp_unit(b[0])
                            + clamp_unit(b[1]))
                    };
                    self.uv(avg(r0, r1), avg(g0, g1), avg(b0, b1))
                });
        let n = r0.0.len();
        if interleaved {
            for (uv, (cu, cv)) in u.as_chunks_mut::<2>().0.iter_mut().zip(blocks) {
                *uv = [cu, cv];
            }
        } else {
            for ((u, v), (cu, cv)) in u.iter_mut().zip(v.iter_mut()).zip(blocks) {
                *u = cu;
                *v = cv;
            }
        }
        if let ([r0], [r1], [g0], [g1], [b0], [b1]) = (r0.1, r1.1, g0.1, g1.1, b0.1, b1.1) {
            let avg = |a: f32, b: f32| 0.5 * (clamp_unit(a) + clamp_unit(b));
            let (cu, cv) = self.uv(avg(*r0, *r1), avg(*g0, *g1), avg(*b0, *b1));
            if interleaved {
                if let Some(uv) = u.get_mut(2 * n..2 * n + 2) {
                    uv.copy_from_slice(&[cu, cv]);
                }
            } else if let (Some(u), Some(v)) = (u.get_mut(n), v.get_mut(n)) {
                (*u, *v) = (cu, cv);
            }
        }
    }

    #[inline(always)]
    fn uv(&self, r: f32, g: f32, b: f32) -> (u8, u8) {
        // Within 16..=240 for limited range by construction. reaches 128 + 127.5
        // for pure blue (U) and red (V): clip at 255.
        let u = (128.0 + self.u[0] * r + self.u[1] * g + self.u[2] * b).min(255.0);
        let v = (128.0 + self.v[0] * r + self.v[1] * g + self.v[2] * b).min(255.0);
        (round_u8(u), round_u8(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny xorshift so the crate needs no `rand`.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn byte(&mut self) -> u8 {
            (self.next() >> 32) as u8
        }
        fn range(&mut self, lo: u8, hi: u8) -> u8 {
            lo + (self.next() % (u64::from(hi - lo) + 1)) as u8
        }
    }

    #[test]
    fn rgb_offsets_agree_with_the_row_kernels() {
        for format in PixelFormat::ALL.into_iter().filter(|f| !f.is_yuv()) {
            let bpp = format.bytes_per_pixel().unwrap();
            let px: Vec<u8> = (0..bpp as u8).map(|i| 10 + 40 * i).collect();
            let frame = tight_frame(format, 1, 1, &px).unwrap();
            let mut t = [0f32; 3];
            frame_to_tensor(&frame, ColorMatrix::Bt601, 1, &mut t).unwrap();
            let offsets = format.rgb_offsets().unwrap();
            for c in 0..3 {
                assert_eq!(t[c], to_unit(px[offsets[c]]), "{format} channel {c}");
            }
        }
    }

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

    const RGB_FAMILY: [PixelFormat; 8] = [
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::Rgba,
        PixelFormat::Bgra,
        PixelFormat::Rgbx,
        PixelFormat::Bgrx,
        PixelFormat::Xrgb,
        PixelFormat::Xbgr,
    ];
    const SIZES: [(usize, usize); 8] = [
        (1, 1),
        (3, 5),
        (7, 2),
        (2, 7),
        (1, 6),
        (5, 1),
        (16, 9),
        (33, 17),
    ];

    /// Owned planes for a frame; plane lengths are exactly `stride * (rows-1) + row_bytes`
    /// so the shorter last row is exercised everywhere.
    struct Planes {
        format: PixelFormat,
        width: usize,
        height: usize,
        data: [Vec<u8>; 3],
        strides: [usize; 3],
    }

    impl Planes {
        fn new(format: PixelFormat, width: usize, height: usize, extra: usize, fill: u8) -> Self {
            let mut data: [Vec<u8>; 3] = Default::default();
            let mut strides = [0; 3];
            for p in 0..format.n_planes() {
                let (row, rows) = format.plane_dims(p, width, height).unwrap();
                strides[p] = row + extra;
                data[p] = vec![fill; strides[p] * (rows - 1) + row];
            }
            Self {
                format,
                width,
                height,
                data,
                strides,
            }
        }
        fn random(format: PixelFormat, w: usize, h: usize, extra: usize, rng: &mut Rng) -> Self {
            let mut p = Self::new(format, w, h, extra, 0);
            p.data.iter_mut().flatten().for_each(|b| *b = rng.byte());
            p
        }
        fn frame(&self) -> FrameRef<'_> {
            FrameRef {
                format: self.format,
                width: self.width,
                height: self.height,
                planes: [&self.data[0], &self.data[1], &self.data[2]],
                strides: self.strides,
            }
        }
        fn frame_mut(&mut self) -> FrameMut<'_> {
            let [a, b, c] = &mut self.data;
            FrameMut {
                format: self.format,
                width: self.width,
                height: self.height,
                planes: [a, b, c],
                strides: self.strides,
            }
        }
        /// The meaningful bytes of plane `p`, row by row (stride padding excluded).
        fn rows(&self, p: usize) -> Vec<&[u8]> {
            let (row, rows) = self.format.plane_dims(p, self.width, self.height).unwrap();
            (0..rows)
                .map(|y| &self.data[p][y * self.strides[p]..][..row])
                .collect()
        }
        /// Bytes between rows (stride padding) of plane `p`.
        fn gaps(&self, p: usize) -> Vec<u8> {
            let (row, rows) = self.format.plane_dims(p, self.width, self.height).unwrap();
            (0..rows - 1)
                .flat_map(|y| {
                    self.data[p][y * self.strides[p] + row..(y + 1) * self.strides[p]].to_vec()
                })
                .collect()
        }
    }

    fn to_tensor(frame: &FrameRef, up: ChromaUpsampling, m: usize) -> (Vec<f32>, usize, usize) {
        let mut t = vec![f32::NAN; tensor_len(frame.height, frame.width, m)];
        let (ph, pw) = frame_to_tensor_with(frame, ColorMatrix::Bt601, up, m, &mut t).unwrap();
        assert_eq!(t.len(), 3 * ph * pw);
        assert!(
            t.iter().all(|v| (-1.0..=1.0).contains(v)),
            "unwritten or out of range"
        );
        (t, ph, pw)
    }

    #[test]
    fn format_names_round_trip() {
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_name(f.name()), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(PixelFormat::from_name("RGBx"), Some(PixelFormat::Rgbx));
        assert_eq!(PixelFormat::from_name("xBGR"), Some(PixelFormat::Xbgr));
        assert_eq!(PixelFormat::from_name("rgbx"), None);
        assert_eq!(PixelFormat::I420.n_planes(), 3);
        assert_eq!(PixelFormat::Nv12.n_planes(), 2);
        assert_eq!(PixelFormat::Bgra.n_planes(), 1);
        assert_eq!(ColorMatrix::gst_default_for_height(576), ColorMatrix::Bt601);
        assert_eq!(ColorMatrix::gst_default_for_height(720), ColorMatrix::Bt709);
    }

    #[test]
    fn padded_size_rounds_up() {
        assert_eq!(padded_size(360, 640, 4), (360, 640));
        assert_eq!(padded_size(3, 5, 4), (4, 8));
        assert_eq!(padded_size(3, 5, 2), (4, 6));
        assert_eq!(padded_size(3, 5, 1), (3, 5));
        assert_eq!(padded_size(3, 5, 0), (3, 5));
        assert_eq!(padded_size(usize::MAX, 1, 4).0, usize::MAX);
        assert_eq!(tensor_len(3, 5, 4), 3 * 4 * 8);
    }

    #[test]
    fn all_byte_values_round_trip_exactly() {
        let rgb: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 3]).collect();
        let mut t = vec![0.0; 3 * 256];
        rgb8_to_tensor(&rgb, 256, 1, &mut t).unwrap();
        for (i, &v) in t[..256].iter().enumerate() {
            assert!((v - (i as f32 / 127.5 - 1.0)).abs() < 1e-6);
        }
        let mut back = vec![0; rgb.len()];
        tensor_to_rgb8(&t, 1, 256, &mut back).unwrap();
        assert_eq!(back, rgb);
    }

    #[test]
    fn quantisation_matches_reference_rounding() {
        let values: Vec<f32> = [-5.0, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 3.0, f32::NAN]
            .into_iter()
            .chain((0..=255).map(|k| (k as f32 + 0.5) / 127.5 - 1.0))
            .chain((0..=1000).map(|k| k as f32 / 500.0 - 1.0))
            .collect();
        let n = values.len();
        let tensor: Vec<f32> = values.iter().cycle().take(3 * n).copied().collect();
        let mut out = vec![0; 3 * n];
        tensor_to_rgb8(&tensor, 1, n, &mut out).unwrap();
        for (i, &v) in values.iter().enumerate() {
            let exact = if v.is_nan() {
                0.0
            } else {
                (f64::from(v).clamp(-1.0, 1.0) + 1.0) * 127.5
            };
            let got = f64::from(out[3 * i]);
            // Within float rounding of a .5 tie either neighbour is right; elsewhere the
            // result must be exactly round((v + 1) * 127.5).
            if (exact.fract() - 0.5).abs() < 1e-4 {
                assert!(
                    (got - exact).abs() <= 0.5 + 1e-4,
                    "value {v}: {got} vs {exact}"
                );
            } else {
                assert_eq!(got, exact.round(), "value {v}");
            }
        }
    }

    #[test]
    fn channel_order_per_format() {
        // One pixel whose R, G, B, alpha bytes are 10, 20, 30, 40, laid out per format.
        for f in RGB_FAMILY {
            let px: &[u8] = match f {
                PixelFormat::Rgb => &[10, 20, 30],
                PixelFormat::Bgr => &[30, 20, 10],
                PixelFormat::Rgba | PixelFormat::Rgbx => &[10, 20, 30, 40],
                PixelFormat::Bgra | PixelFormat::Bgrx => &[30, 20, 10, 40],
                PixelFormat::Xrgb => &[40, 10, 20, 30],
                _ => &[40, 30, 20, 10],
            };
            let frame = FrameRef {
                format: f,
                width: 1,
                height: 1,
                planes: [px, &[], &[]],
                strides: [px.len(), 0, 0],
            };
            let mut t = [0.0; 3];
            frame_to_tensor(&frame, ColorMatrix::Bt601, 1, &mut t).unwrap();
            for (v, p) in t.iter().zip([10.0f32, 20.0, 30.0]) {
                assert!((v - (p / 127.5 - 1.0)).abs() < 1e-6, "{f}: {t:?}");
            }
            let mut out = vec![0; px.len()];
            let mut fm = FrameMut {
                format: f,
                width: 1,
                height: 1,
                planes: [&mut out, &mut [], &mut []],
                strides: [px.len(), 0, 0],
            };
            tensor_to_frame(&t, 1, 1, ColorMatrix::Bt601, None, &mut fm).unwrap();
            let expect: Vec<u8> = px.iter().map(|&b| if b == 40 { 255 } else { b }).collect();
            assert_eq!(out, expect, "{f}");
        }
    }

    #[test]
    fn rgb_family_identity_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for f in RGB_FAMILY {
            for (w, h) in SIZES {
                for extra in [0, 5] {
                    for m in [1, 2, 4] {
                        let src = Planes::random(f, w, h, extra, &mut rng);
                        let (t, ph, pw) = to_tensor(&src.frame(), ChromaUpsampling::Bilinear, m);
                        assert_eq!((ph, pw), padded_size(h, w, m));

                        // With the input as alpha source every byte comes back.
                        let mut out = Planes::new(f, w, h, extra, 0xAB);
                        tensor_to_frame(
                            &t,
                            ph,
                            pw,
                            ColorMatrix::Bt601,
                            Some(&src.frame()),
                            &mut out.frame_mut(),
                        )
                        .unwrap();
                        assert_eq!(out.rows(0), src.rows(0), "{f} {w}x{h} +{extra} m={m}");
                        assert!(
                            out.gaps(0).iter().all(|&b| b == 0xAB),
                            "stride bytes written"
                        );

                        // Without it, colour bytes come back and the fourth byte is 255.
                        let mut out = Planes::new(f, w, h, extra, 0xAB);
                        tensor_to_frame(&t, ph, pw, ColorMatrix::Bt601, None, &mut out.frame_mut())
                            .unwrap();
                        let a = f.alpha_offset();
                        for (o, s) in out.rows(0).iter().zip(src.rows(0)) {
                            for (i, (&o, &s)) in o.iter().zip(s).enumerate() {
                                let alpha = a == Some(i % 4) && f.bytes_per_pixel() == Some(4);
                                assert_eq!(o, if alpha { 255 } else { s }, "{f} {w}x{h}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn alpha_copied_across_formats() {
        let mut rng = Rng(7);
        let src = Planes::random(PixelFormat::Rgba, 3, 2, 1, &mut rng);
        let (t, ph, pw) = to_tensor(&src.frame(), ChromaUpsampling::Nearest, 1);
        let mut out = Planes::new(PixelFormat::Xbgr, 3, 2, 0, 0);
        tensor_to_frame(
            &t,
            ph,
            pw,
            ColorMatrix::Bt601,
            Some(&src.frame()),
            &mut out.frame_mut(),
        )
        .unwrap();
        for (o, s) in out.rows(0).iter().zip(src.rows(0)) {
            for (o, s) in o.chunks(4).zip(s.chunks(4)) {
                assert_eq!([o[0], o[3], o[2], o[1]], [s[3], s[0], s[1], s[2]]);
            }
        }
        // An alpha source without an alpha byte (RGB) gives opaque output.
        let rgb = Planes::random(PixelFormat::Rgb, 3, 2, 0, &mut rng);
        tensor_to_frame(
            &t,
            ph,
            pw,
            ColorMatrix::Bt601,
            Some(&rgb.frame()),
            &mut out.frame_mut(),
        )
        .unwrap();
        assert!(out.rows(0).iter().all(|r| r.chunks(4).all(|p| p[0] == 255)));
    }

    #[test]
    fn padding_replicates_edges_and_back_reads_top_left() {
        let mut rng = Rng(42);
        let (w, h) = (5, 3);
        let src = Planes::random(PixelFormat::Rgbx, w, h, 3, &mut rng);
        let (t, ph, pw) = to_tensor(&src.frame(), ChromaUpsampling::Bilinear, 4);
        assert_eq!((ph, pw), (4, 8));
        for c in 0..3 {
            let plane = &t[c * ph * pw..][..ph * pw];
            for y in 0..ph {
                for x in 0..pw {
                    let v = plane[y * pw + x];
                    let expect = plane[y.min(h - 1) * pw + x.min(w - 1)];
                    assert_eq!(v, expect, "plane {c} ({y},{x})");
                    if y < h && x < w {
                        let byte = src.rows(0)[y][4 * x + c];
                        assert!((v - to_unit(byte)).abs() < 1e-7);
                    }
                }
            }
        }
        // Garbage in the padded area must not leak into the frame.
        let mut padded = t.clone();
        for c in 0..3 {
            for y in 0..ph {
                for x in 0..pw {
                    if y >= h || x >= w {
                        padded[c * ph * pw + y * pw + x] =
                            if (x + y) % 2 == 0 { 7.0 } else { f32::NAN };
                    }
                }
            }
        }
        let mut out = Planes::new(PixelFormat::Rgbx, w, h, 0, 0);
        tensor_to_frame(
            &padded,
            ph,
            pw,
            ColorMatrix::Bt601,
            Some(&src.frame()),
            &mut out.frame_mut(),
        )
        .unwrap();
        assert_eq!(out.rows(0), src.rows(0));
    }

    #[test]
    fn yuv_padding_replicates_edges() {
        let mut rng = Rng(5);
        let src = Planes::random(PixelFormat::I420, 3, 3, 2, &mut rng);
        let (t, ph, pw) = to_tensor(&src.frame(), ChromaUpsampling::Bilinear, 4);
        assert_eq!((ph, pw), (4, 4));
        for c in 0..3 {
            let p = &t[c * 16..][..16];
            for y in 0..4 {
                assert_eq!(p[y * 4 + 3], p[y.min(2) * 4 + 2]);
            }
            assert_eq!(p[12..16], p[8..12]);
        }
    }

    /// A YUV frame with Y in 60..=200 and chroma within 20 of neutral: inside the RGB gamut for
    /// both matrices, so no clamping happens on the way to RGB.
    fn in_gamut_yuv(
        format: PixelFormat,
        w: usize,
        h: usize,
        extra: usize,
        rng: &mut Rng,
    ) -> Planes {
        let mut p = Planes::new(format, w, h, extra, 0);
        p.data[0].iter_mut().for_each(|b| *b = rng.range(60, 200));
        for plane in &mut p.data[1..] {
            plane.iter_mut().for_each(|b| *b = rng.range(108, 148));
        }
        p
    }

    fn assert_close_rows(a: &Planes, b: &Planes, p: usize, tol: u8, what: &str) {
        for (y, (ra, rb)) in a.rows(p).iter().zip(b.rows(p)).enumerate() {
            for (x, (&va, &vb)) in ra.iter().zip(rb).enumerate() {
                assert!(
                    va.abs_diff(vb) <= tol,
                    "{what} plane {p} ({y},{x}): {va} vs {vb}"
                );
            }
        }
    }

    #[test]
    fn yuv_identity_round_trip() {
        let mut rng = Rng(0xdead_beef);
        for f in [PixelFormat::I420, PixelFormat::Nv12] {
            for (w, h) in SIZES {
                for extra in [0, 3] {
                    for m in [1, 4] {
                        for matrix in all_encodings() {
                            let src = in_gamut_yuv(f, w, h, extra, &mut rng);
                            let mut t = vec![0.0; tensor_len(h, w, m)];
                            let what = format!("{f} {w}x{h} +{extra} m={m} {matrix:?}");
                            let (ph, pw) = frame_to_tensor_with(
                                &src.frame(),
                                matrix,
                                ChromaUpsampling::Nearest,
                                m,
                                &mut t,
                            )
                            .unwrap();
                            let mut out = Planes::new(f, w, h, extra, 0xAB);
                            tensor_to_frame(&t, ph, pw, matrix, None, &mut out.frame_mut())
                                .unwrap();
                            for p in 0..f.n_planes() {
                                assert_close_rows(&out, &src, p, 1, &what);
                                assert!(out.gaps(p).iter().all(|&b| b == 0xAB));
                            }

                            // Bilinear chroma changes chroma but never luma.
                            frame_to_tensor_with(
                                &src.frame(),
                                matrix,
                                ChromaUpsampling::Bilinear,
                                m,
                                &mut t,
                            )
                            .unwrap();
                            tensor_to_frame(&t, ph, pw, matrix, None, &mut out.frame_mut())
                                .unwrap();
                            assert_close_rows(&out, &src, 0, 1, &what);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn yuv_bilinear_keeps_constant_chroma() {
        let mut rng = Rng(99);
        for (w, h) in SIZES {
            let mut src = in_gamut_yuv(PixelFormat::I420, w, h, 1, &mut rng);
            src.data[1].fill(100);
            src.data[2].fill(150);
            let (t, ph, pw) = to_tensor(&src.frame(), ChromaUpsampling::Bilinear, 2);
            let mut out = Planes::new(PixelFormat::I420, w, h, 1, 0);
            tensor_to_frame(&t, ph, pw, ColorMatrix::Bt601, None, &mut out.frame_mut()).unwrap();
            for p in 0..3 {
                assert_close_rows(&out, &src, p, 1, "bilinear");
            }
        }
    }

    #[test]
    fn bilinear_upsampling_weights() {
        let src = [0.0, 4.0, 8.0];
        let mut dst = [0.0; 6];
        upsample_row(&src, &mut dst, ChromaUpsampling::Bilinear);
        assert_eq!(dst, [0.0, 1.0, 3.0, 5.0, 7.0, 8.0]);
        let mut dst = [0.0; 5];
        upsample_row(&src, &mut dst, ChromaUpsampling::Bilinear);
        assert_eq!(dst, [0.0, 1.0, 3.0, 5.0, 7.0]);
        let mut dst = [0.0; 5];
        upsample_row(&src, &mut dst, ChromaUpsampling::Nearest);
        assert_eq!(dst, [0.0, 0.0, 4.0, 4.0, 8.0]);
        let mut one = [0.0; 1];
        upsample_row(&[3.0], &mut one, ChromaUpsampling::Bilinear);
        assert_eq!(one, [3.0]);
    }

    #[test]
    fn i420_and_nv12_agree() {
        let mut rng = Rng(3);
        let (w, h) = (7, 5);
        let i420 = in_gamut_yuv(PixelFormat::I420, w, h, 2, &mut rng);
        let (t, ph, pw) = to_tensor(&i420.frame(), ChromaUpsampling::Bilinear, 1);
        let mut nv12 = Planes::new(PixelFormat::Nv12, w, h, 1, 0);
        // Build the NV12 twin of the I420 frame and compare tensors.
        for y in 0..h {
            nv12.data[0][y * nv12.strides[0]..][..w].copy_from_slice(i420.rows(0)[y]);
        }
        for cy in 0..h.div_ceil(2) {
            for cx in 0..w.div_ceil(2) {
                nv12.data[1][cy * nv12.strides[1] + 2 * cx] = i420.rows(1)[cy][cx];
                nv12.data[1][cy * nv12.strides[1] + 2 * cx + 1] = i420.rows(2)[cy][cx];
            }
        }
        let (t2, _, _) = to_tensor(&nv12.frame(), ChromaUpsampling::Bilinear, 1);
        assert_eq!(t, t2);
        let mut out = Planes::new(PixelFormat::Nv12, w, h, 0, 0);
        tensor_to_frame(&t, ph, pw, ColorMatrix::Bt601, None, &mut out.frame_mut()).unwrap();
        let mut out_i = Planes::new(PixelFormat::I420, w, h, 0, 0);
        tensor_to_frame(&t, ph, pw, ColorMatrix::Bt601, None, &mut out_i.frame_mut()).unwrap();
        assert_eq!(out.rows(0), out_i.rows(0));
        for (uv, (u, v)) in out
            .rows(1)
            .iter()
            .zip(out_i.rows(1).iter().zip(out_i.rows(2)))
        {
            let inter: Vec<u8> = u.iter().zip(v.iter()).flat_map(|(&a, &b)| [a, b]).collect();
            assert_eq!(uv.to_vec(), inter);
        }
    }

    /// Every matrix in both ranges.
    fn all_encodings() -> Vec<YuvEncoding> {
        use ColorMatrix::*;
        [Bt601, Bt709, Bt2020, Smpte240m, Fcc]
            .into_iter()
            .flat_map(|m| [ColorRange::Limited, ColorRange::Full].map(|r| YuvEncoding::new(m, r)))
            .collect()
    }

    /// Decodes one uniform 2x2 I420 frame and returns the RGB tensor values times 127.5 + 127.5
    /// (the 0..255 scale, before rounding).
    fn decode(matrix: impl Into<YuvEncoding>, y: u8, u: u8, v: u8) -> [f32; 3] {
        let (yp, up, vp) = ([y; 4], [u], [v]);
        let frame = FrameRef {
            format: PixelFormat::I420,
            width: 2,
            height: 2,
            planes: [&yp, &up, &vp],
            strides: [2, 1, 1],
        };
        let mut t = [0.0; 12];
        frame_to_tensor(&frame, matrix, 1, &mut t).unwrap();
        [t[0], t[4], t[8]].map(|v| (v + 1.0) * 127.5)
    }

    /// Encodes a uniform 2x2 RGB colour to I420 and returns (Y, U, V).
    fn encode(matrix: impl Into<YuvEncoding>, rgb: [u8; 3]) -> (u8, u8, u8) {
        let mut t = [0.0; 12];
        for c in 0..3 {
            t[4 * c..4 * c + 4].fill(to_unit(rgb[c]));
        }
        let mut p = Planes::new(PixelFormat::I420, 2, 2, 0, 0);
        tensor_to_frame(&t, 2, 2, matrix, None, &mut p.frame_mut()).unwrap();
        (p.data[0][0], p.data[1][0], p.data[2][0])
    }

    #[test]
    fn bt601_reference_values() {
        // BT.601 limited range, computed by hand (f64) from
        //   R = 255/219 (Y-16) + 255/224 * 2(1-Kr) (V-128)
        //   B = 255/219 (Y-16) + 255/224 * 2(1-Kb) (U-128)
        //   G = (255/219 (Y-16) - Kr R - Kb B) / Kg,    Kr = 0.299, Kb = 0.114, Kg = 0.587
        // then clamped to 0..=255.
        let cases: [((u8, u8, u8), [f32; 3]); 6] = [
            ((235, 128, 128), [255.0, 255.0, 255.0]),          // white
            ((16, 128, 128), [0.0, 0.0, 0.0]),                 // black
            ((126, 128, 128), [128.0822, 128.0822, 128.0822]), // mid grey: 110 * 255/219
            ((81, 90, 240), [254.4399, 0.0, 0.0]), // red (G = -0.48, B = -0.97 clamp to 0)
            ((145, 54, 34), [0.1790, 255.0, 0.9303]), // green (G = 255.61 clamps)
            ((41, 240, 110), [0.3811, 0.0, 255.0]), // blue (G = -0.13, B = 255.04 clamp)
        ];
        for ((y, u, v), expect) in cases {
            let got = decode(ColorMatrix::Bt601, y, u, v);
            for (g, e) in got.iter().zip(expect) {
                assert!(
                    (g - e).abs() < 2e-3,
                    "YUV {y},{u},{v}: got {got:?}, want {expect:?}"
                );
            }
        }
        // The other way, from Y = 16 + 219/255 L, U = 128 + 224/255 (B-L)/(2(1-Kb)),
        // V = 128 + 224/255 (R-L)/(2(1-Kr)), L = Kr R + Kg G + Kb B:
        // red (255,0,0) -> 81.481, 90.203, 240; green -> 144.553, 53.797, 34.214;
        // blue -> 40.966, 240, 109.786; grey 128 -> 125.929, 128, 128.
        assert_eq!(encode(ColorMatrix::Bt601, [255, 255, 255]), (235, 128, 128));
        assert_eq!(encode(ColorMatrix::Bt601, [0, 0, 0]), (16, 128, 128));
        assert_eq!(encode(ColorMatrix::Bt601, [255, 0, 0]), (81, 90, 240));
        assert_eq!(encode(ColorMatrix::Bt601, [0, 255, 0]), (145, 54, 34));
        assert_eq!(encode(ColorMatrix::Bt601, [0, 0, 255]), (41, 240, 110));
        assert_eq!(encode(ColorMatrix::Bt601, [128, 128, 128]), (126, 128, 128));
    }

    #[test]
    fn bt709_reference_values() {
        // Kr = 0.2126, Kb = 0.0722: red (255,0,0) -> Y = 16 + 219*0.2126 = 62.559,
        // U = 128 - 112*0.2126/0.9278 = 102.336, V = 240.
        assert_eq!(encode(ColorMatrix::Bt709, [255, 0, 0]), (63, 102, 240));
        // Decoding (63,102,240): R = 255/219*47 + 255/224*1.5748*112 = 255.51 -> 255,
        // B = 54.726 + 255/224*1.8556*(-26) = -0.196 -> 0,
        // G = (54.726 - 0.2126*255.513 - 0.0722*(-0.196)) / 0.7152 = 0.5846.
        let got = decode(ColorMatrix::Bt709, 63, 102, 240);
        for (g, e) in got.iter().zip([255.0, 0.5846, 0.0]) {
            assert!((g - e).abs() < 2e-3, "got {got:?}");
        }
    }

    #[test]
    fn full_range_reference_values() {
        let full = |m| YuvEncoding::new(m, ColorRange::Full);
        // Full range (JFIF): Y = L, U = 128 + 255/2 (B-L)/(1-Kb), V = 128 + 255/2 (R-L)/(1-Kr)
        // on the 0..1 scale times 255. Black and white use the whole byte.
        assert_eq!(encode(full(ColorMatrix::Bt601), [0, 0, 0]), (0, 128, 128));
        assert_eq!(
            encode(full(ColorMatrix::Bt601), [255, 255, 255]),
            (255, 128, 128)
        );
        // Red: Y = 0.299*255 = 76.245, U = 128 - 127.5*0.299/0.886 = 84.973,
        // V = 128 + 127.5 = 255.5 -> 255 (the JPEG values 76, 85, 255).
        assert_eq!(encode(full(ColorMatrix::Bt601), [255, 0, 0]), (76, 85, 255));
        // BT.709 full-range blue: Y = 0.0722*255 = 18.411, U = 255.5 -> 255,
        // V = 128 - 127.5*0.0722/0.7874 = 116.309.
        assert_eq!(
            encode(full(ColorMatrix::Bt709), [0, 0, 255]),
            (18, 255, 116)
        );
        for m in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            let black = decode(full(m), 0, 128, 128);
            let white = decode(full(m), 255, 128, 128);
            assert!(
                black.iter().all(|v| v.abs() < 1e-3),
                "{m:?} black {black:?}"
            );
            assert!(
                white.iter().all(|v| (v - 255.0).abs() < 1e-3),
                "{m:?} {white:?}"
            );
        }
        // Full-range grey 100 is grey 100 (limited range would read it as 97.8).
        let grey = decode(full(ColorMatrix::Bt601), 100, 128, 128);
        assert!(grey.iter().all(|v| (v - 100.0).abs() < 1e-3), "{grey:?}");
        // Decoding (76, 85, 255) BT.601 full: R = 76 + 1.402*127 = 254.054,
        // B = 76 + 1.772*(-43) = -0.196 -> 0, G = 76 - 0.344136*(-43) - 0.714136*127 = 0.1026.
        let red = decode(full(ColorMatrix::Bt601), 76, 85, 255);
        for (g, e) in red.iter().zip([254.054, 0.1026, 0.0]) {
            assert!((g - e).abs() < 2e-3, "got {red:?}");
        }
    }

    #[test]
    fn bt2020_reference_values() {
        // Kr = 0.2627, Kb = 0.0593, limited range: red -> Y = 16 + 219*0.2627 = 73.531,
        // U = 128 - 112*0.2627/0.9407 = 96.723, V = 240.
        assert_eq!(encode(ColorMatrix::Bt2020, [255, 0, 0]), (74, 97, 240));
        // Green: Y = 16 + 219*0.678 = 164.482, U = 128 - 112*0.678/0.9407 = 47.277,
        // V = 128 - 112*0.678/0.7373 = 25.008.
        assert_eq!(encode(ColorMatrix::Bt2020, [0, 255, 0]), (164, 47, 25));
    }

    #[test]
    fn rgb_to_i420_to_rgb_within_tolerance() {
        let mut rng = Rng(11);
        for (w, h) in SIZES {
            for matrix in all_encodings() {
                // One random colour per 2x2 block: chroma subsampling then loses nothing, so
                // only 8-bit YUV quantisation remains (at most ~1.6 levels on B).
                let mut rgb = vec![0u8; w * h * 3];
                let colours: Vec<[u8; 3]> = (0..w.div_ceil(2) * h.div_ceil(2))
                    .map(|_| [rng.byte(), rng.byte(), rng.byte()])
                    .collect();
                for y in 0..h {
                    for x in 0..w {
                        let c = colours[(y / 2) * w.div_ceil(2) + x / 2];
                        rgb[(y * w + x) * 3..][..3].copy_from_slice(&c);
                    }
                }
                let mut t = vec![0.0; 3 * w * h];
                rgb8_to_tensor(&rgb, w, h, &mut t).unwrap();
                let mut yuv = Planes::new(PixelFormat::I420, w, h, 1, 0);
                tensor_to_frame(&t, h, w, matrix, None, &mut yuv.frame_mut()).unwrap();
                let mut t2 = vec![0.0; 3 * w * h];
                frame_to_tensor_with(&yuv.frame(), matrix, ChromaUpsampling::Nearest, 1, &mut t2)
                    .unwrap();
                let mut back = vec![0u8; rgb.len()];
                tensor_to_rgb8(&t2, h, w, &mut back).unwrap();
                for (i, (&a, &b)) in rgb.iter().zip(&back).enumerate() {
                    assert!(
                        a.abs_diff(b) <= 2,
                        "{w}x{h} {matrix:?} byte {i}: {a} vs {b}"
                    );
                }
            }
        }
        // A smooth image through bilinear chroma stays close too.
        let (w, h) = (32, 16);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 8) as u8, (y * 16) as u8, (255 - x * 4) as u8])
            })
            .collect();
        let mut t = vec![0.0; 3 * w * h];
        rgb8_to_tensor(&rgb, w, h, &mut t).unwrap();
        let mut yuv = Planes::new(PixelFormat::Nv12, w, h, 0, 0);
        tensor_to_frame(&t, h, w, ColorMatrix::Bt601, None, &mut yuv.frame_mut()).unwrap();
        let (t2, _, _) = to_tensor(&yuv.frame(), ChromaUpsampling::Bilinear, 1);
        let mut back = vec![0u8; rgb.len()];
        tensor_to_rgb8(&t2, h, w, &mut back).unwrap();
        let max = rgb
            .iter()
            .zip(&back)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max <= 12, "max error {max}");
    }

    #[test]
    fn error_cases() {
        let data = vec![0u8; 64];
        let mut t = vec![0.0; 1024];

        // Zero size.
        let f = FrameRef {
            format: PixelFormat::Rgb,
            width: 0,
            height: 2,
            planes: [&data, &[], &[]],
            strides: [6, 0, 0],
        };
        let e = frame_to_tensor(&f, ColorMatrix::Bt601, 1, &mut t).unwrap_err();
        assert_eq!(
            e,
            ConvertError::ZeroSize {
                width: 0,
                height: 2
            }
        );
        assert!(e.to_string().contains("0x2"));

        // Stride smaller than a row.
        let f = FrameRef {
            format: PixelFormat::Rgbx,
            width: 4,
            height: 2,
            planes: [&data, &[], &[]],
            strides: [15, 0, 0],
        };
        let e = frame_to_tensor(&f, ColorMatrix::Bt601, 1, &mut t).unwrap_err();
        assert!(matches!(
            e,
            ConvertError::StrideTooSmall {
                plane: 0,
                stride: 15,
                row_bytes: 16,
                ..
            }
        ));
        assert!(e.to_string().contains("stride 15"), "{e}");

        // Exactly long enough (short last row) is fine; one byte less is not.
        let f = FrameRef {
            format: PixelFormat::Rgbx,
            width: 4,
            height: 3,
            planes: [&data[..20 * 2 + 16], &[], &[]],
            strides: [20, 0, 0],
        };
        frame_to_tensor(&f, ColorMatrix::Bt601, 1, &mut t).unwrap();
        let f = FrameRef {
            planes: [&data[..20 * 2 + 15], &[], &[]],
            ..f
        };
        let e = frame_to_tensor(&f, ColorMatrix::Bt601, 1, &mut t).unwrap_err();
        assert!(matches!(
            e,
            ConvertError::PlaneTooShort {
                plane: 0,
                len: 55,
                needed: 56,
                ..
            }
        ));

        // A short chroma plane is reported by index and name.
        let mut yuv = Planes::new(PixelFormat::I420, 5, 3, 0, 0);
        yuv.data[2].pop();
        let e = frame_to_tensor(&yuv.frame(), ColorMatrix::Bt601, 1, &mut t).unwrap_err();
        assert!(matches!(
            e,
            ConvertError::PlaneTooShort {
                plane: 2,
                plane_name: "V",
                ..
            }
        ));
        assert!(e.to_string().contains("I420 plane 2 (V)"), "{e}");
        let mut nv = Planes::new(PixelFormat::Nv12, 5, 3, 0, 0);
        nv.strides[1] = 5;
        let e = frame_to_tensor(&nv.frame(), ColorMatrix::Bt601, 1, &mut t).unwrap_err();
        assert!(matches!(
            e,
            ConvertError::StrideTooSmall {
                plane: 1,
                row_bytes: 6,
                ..
            }
        ));

        // Output tensor too short, including because of padding.
        let ok = Planes::new(PixelFormat::Rgb, 5, 3, 0, 0);
        let mut small = vec![0.0; 3 * 15];
        frame_to_tensor(&ok.frame(), ColorMatrix::Bt601, 1, &mut small).unwrap();
        let e = frame_to_tensor(&ok.frame(), ColorMatrix::Bt601, 4, &mut small).unwrap_err();
        assert_eq!(
            e,
            ConvertError::TensorTooShort {
                len: 45,
                needed: 96,
                height: 4,
                width: 8
            }
        );

        // Input tensor too short or smaller than the frame.
        let mut out = Planes::new(PixelFormat::Rgb, 5, 3, 0, 0);
        let e = tensor_to_frame(
            &small[..44],
            3,
            5,
            ColorMatrix::Bt601,
            None,
            &mut out.frame_mut(),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ConvertError::TensorTooShort {
                len: 44,
                needed: 45,
                ..
            }
        ));
        let e = tensor_to_frame(&small, 3, 4, ColorMatrix::Bt601, None, &mut out.frame_mut())
            .unwrap_err();
        assert!(matches!(e, ConvertError::TensorSmallerThanFrame { .. }));

        // Output frame checks and alpha source size.
        let mut bad = Planes::new(PixelFormat::Rgb, 5, 3, 0, 0);
        bad.data[0].pop();
        let e = tensor_to_frame(&small, 3, 5, ColorMatrix::Bt601, None, &mut bad.frame_mut())
            .unwrap_err();
        assert!(matches!(e, ConvertError::PlaneTooShort { .. }));
        let other = Planes::new(PixelFormat::Rgba, 4, 3, 0, 0);
        let e = tensor_to_frame(
            &small,
            3,
            5,
            ColorMatrix::Bt601,
            Some(&other.frame()),
            &mut out.frame_mut(),
        )
        .unwrap_err();
        assert!(matches!(e, ConvertError::AlphaSizeMismatch { .. }));

        // RGB8 helpers.
        assert!(rgb8_to_tensor(&data[..10], 2, 2, &mut t).is_err());
        assert!(tensor_to_rgb8(&t, 2, 2, &mut [0u8; 11]).is_err());
        assert!(rgb8_to_tensor(&data, usize::MAX, 2, &mut t).is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_layouts() {
        let mut rng = Rng(1234);
        let bytes = vec![0u8; 600];
        let mut t = vec![0.0; 600];
        for _ in 0..20_000 {
            let f = PixelFormat::ALL[(rng.next() % 10) as usize];
            let w = (rng.next() % 9) as usize;
            let h = (rng.next() % 9) as usize;
            let m = (rng.next() % 5) as usize;
            let lens = [0; 3].map(|_| (rng.next() % 200) as usize);
            let strides = [0; 3].map(|_| match rng.next() % 4 {
                0 => usize::MAX - (rng.next() % 3) as usize,
                _ => (rng.next() % 40) as usize,
            });
            let frame = FrameRef {
                format: f,
                width: w,
                height: h,
                planes: lens.map(|l| &bytes[..l]),
                strides,
            };
            let tlen = (rng.next() % 600) as usize;
            let _ = frame_to_tensor(&frame, ColorMatrix::Bt709, m, &mut t[..tlen]);
            let mut out = bytes.clone();
            let (a, rest) = out.split_at_mut(lens[0]);
            let (b, rest) = rest.split_at_mut(lens[1].min(rest.len()));
            let c_len = lens[2].min(rest.len());
            let mut fm = FrameMut {
                format: f,
                width: w,
                height: h,
                planes: [a, b, &mut rest[..c_len]],
                strides,
            };
            let (th, tw) = ((rng.next() % 10) as usize, (rng.next() % 10) as usize);
            let _ = tensor_to_frame(
                &t[..tlen],
                th,
                tw,
                ColorMatrix::Bt601,
                Some(&frame),
                &mut fm,
            );
        }
    }
}
