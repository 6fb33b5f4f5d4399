//! Tests of the frame <-> tensor conversions: identity round trips for every format, size,
//! stride and padding, YUV accuracy, and error reporting.

use super::*;
use crate::convert::packing::to_unit;
use crate::convert::test_support::{Planes, RGB_FAMILY, Rng, SIZES, to_tensor};
use crate::convert::{ColorRange, rgb8_to_tensor, tensor_to_rgb8};

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
fn in_gamut_yuv(format: PixelFormat, w: usize, h: usize, extra: usize, rng: &mut Rng) -> Planes {
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
                        tensor_to_frame(&t, ph, pw, matrix, None, &mut out.frame_mut()).unwrap();
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
                        tensor_to_frame(&t, ph, pw, matrix, None, &mut out.frame_mut()).unwrap();
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
    let e =
        tensor_to_frame(&small, 3, 4, ColorMatrix::Bt601, None, &mut out.frame_mut()).unwrap_err();
    assert!(matches!(e, ConvertError::TensorSmallerThanFrame { .. }));

    // Output frame checks and alpha source size.
    let mut bad = Planes::new(PixelFormat::Rgb, 5, 3, 0, 0);
    bad.data[0].pop();
    let e =
        tensor_to_frame(&small, 3, 5, ColorMatrix::Bt601, None, &mut bad.frame_mut()).unwrap_err();
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
