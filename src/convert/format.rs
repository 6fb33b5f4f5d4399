//! [`PixelFormat`]: the video formats the converter reads and writes, their GStreamer names
//! and plane layout.

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

    /// Whether this is a YUV format (the [`ColorMatrix`](super::ColorMatrix) only matters for
    /// these).
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
    /// with [`unpack_kernel`](super::packing::unpack_kernel) and
    /// [`pack_kernel`](super::packing::pack_kernel) (tested).
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
    pub(super) fn plane_name(&self, plane: usize) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ColorMatrix;

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
}
