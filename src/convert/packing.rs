//! Packed RGB pixels to and from tensor rows: the byte <-> `[-1, 1]` value mapping and the
//! per-format row kernels.

use super::format::PixelFormat;

/// `pixel / 127.5 - 1`, written as a multiply so it vectorises (a table lookup would be a
/// gather). Exactly invertible by [`to_u8`] for all 256 values (tested).
#[inline(always)]
pub(super) fn to_unit(v: u8) -> f32 {
    f32::from(v) * (2.0 / 255.0) - 1.0
}

/// `1.5 * 2^23`: adding it to a float in `0..2^22` rounds it to an integer (nearest, ties to
/// even) held in the low mantissa bits. Unlike the saturating `as u8` / `as i32` casts, which
/// LLVM scalarises on x86, this vectorises.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Rounds `x` (already within `0.0..=255.0`) to the nearest integer as a byte.
#[inline(always)]
pub(super) fn round_u8(x: f32) -> u8 {
    (x + ROUND_MAGIC).to_bits() as u8
}

/// Clamps to `[-1, 1]`, mapping NaN to -1 (`f32::clamp` would keep NaN).
#[inline(always)]
#[allow(clippy::manual_clamp)] // deliberately not `clamp`: NaN must not pass through
pub(super) fn clamp_unit(v: f32) -> f32 {
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

pub(super) fn unpack_kernel(format: PixelFormat) -> UnpackFn {
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

pub(super) fn pack_kernel(format: PixelFormat) -> PackFn {
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

pub(super) fn bpp_of(format: PixelFormat) -> usize {
    format.bytes_per_pixel().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{Planes, RGB_FAMILY, Rng, to_tensor};
    use crate::convert::{
        ChromaUpsampling, ColorMatrix, FrameMut, FrameRef, frame_to_tensor, rgb8_to_tensor,
        tensor_to_frame, tensor_to_rgb8, tight_frame,
    };

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
}
