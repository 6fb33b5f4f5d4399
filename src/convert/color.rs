//! How YUV bytes encode RGB ([`ColorMatrix`], [`ColorRange`], [`YuvEncoding`]), how 4:2:0
//! chroma is upsampled ([`ChromaUpsampling`]), and the YUV <-> tensor row kernels built on them.

use super::packing::{clamp_unit, round_u8};

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

/// Horizontal 2x chroma upsampling of `src` (`ceil(w/2)` samples) into `dst` (`w` pixels).
pub(super) fn upsample_row(src: &[f32], dst: &mut [f32], mode: ChromaUpsampling) {
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
pub(super) struct YuvToRgb {
    y_scale: f32,
    y_offset: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl YuvToRgb {
    pub(super) fn new(encoding: YuvEncoding) -> Self {
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
    pub(super) fn combine_row(&self, luma: &[u8], r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
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
pub(super) struct RgbToYuv {
    kr: f32,
    kg: f32,
    kb: f32,
    y_mid: f32,
    y_gain: f32,
    u: [f32; 3],
    v: [f32; 3],
}

impl RgbToYuv {
    pub(super) fn new(encoding: YuvEncoding) -> Self {
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
    pub(super) fn luma_row(&self, r: &[f32], g: &[f32], b: &[f32], dst: &mut [u8]) {
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
    pub(super) fn chroma_row(
        &self,
        rows: [&[f32]; 6],
        u: &mut [u8],
        v: &mut [u8],
        interleaved: bool,
    ) {
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
    use crate::convert::packing::to_unit;
    use crate::convert::test_support::Planes;
    use crate::convert::{FrameRef, PixelFormat, frame_to_tensor, tensor_to_frame};

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
}
