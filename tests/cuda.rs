//! The CUDA frame path against the CPU path. Without a GPU (or without onnxruntime-gpu) each
//! test that needs one records why it skips (see `skip`: scripts/test.sh lists the skipped
//! checks at the end) and passes; `probe_reports_instead_of_panicking` runs everywhere.
#![cfg(feature = "cuda")]

use nlcl::convert::{
    self, ChromaUpsampling, ColorMatrix, ColorRange, FrameMut, FrameRef, PixelFormat, YuvEncoding,
    padded_size,
};
use nlcl::cuda::{FrameShape, GpuConverter, GpuError, GpuSession, probe};
use nlcl::rng::Rng;
use nlcl::runtime::{Model, RuntimeError, SessionOptions};
use nlcl::synthetic_rain::{RainStyle, render_rain};

/// The YUV encodings the kernels are checked in against the CPU conversion (limited range
/// BT.601 first: the one RGB formats are checked with).
const ENCODINGS: [YuvEncoding; 4] = [
    YuvEncoding {
        matrix: ColorMatrix::Bt601,
        range: ColorRange::Limited,
    },
    YuvEncoding {
        matrix: ColorMatrix::Bt709,
        range: ColorRange::Limited,
    },
    YuvEncoding {
        matrix: ColorMatrix::Bt601,
        range: ColorRange::Full,
    },
    YuvEncoding {
        matrix: ColorMatrix::Bt2020,
        range: ColorRange::Full,
    },
];

#[path = "support/skip.rs"]
mod skip_log;
use skip_log::skip;

/// The GPU converter, or `None` (the skip recorded for `test`) where there is no usable GPU.
fn gpu(test: &str) -> Option<GpuConverter> {
    match GpuConverter::new(0) {
        Ok(c) => Some(c),
        Err(e) => {
            skip(test, &format!("no usable GPU: {e}"));
            None
        }
    }
}

#[test]
fn probe_reports_instead_of_panicking() {
    match probe(0) {
        Ok(info) => println!("found {info}"),
        Err(e) => {
            let msg = e.to_string();
            println!("no GPU: {msg}");
            assert!(
                matches!(
                    e,
                    GpuError::NoDriver | GpuError::NoNvrtc | GpuError::NoSuchDevice { .. }
                ),
                "{msg}"
            );
        }
    }
    // An ordinal past the last device is an error naming it, never a panic.
    let e = probe(4096).expect_err("GPU 4096");
    if let GpuError::NoSuchDevice { ordinal, .. } = e {
        assert_eq!(ordinal, 4096);
    }
}

/// A tightly packed frame of random bytes (valid limited-range YUV for YUV formats).
fn random_frame(format: PixelFormat, w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let len = match format {
        PixelFormat::I420 | PixelFormat::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        f => w * h * f.bytes_per_pixel().unwrap_or(3),
    };
    (0..len)
        .map(|_| {
            let b = rng.below(256) as u8;
            if format.is_yuv() { 16 + b % 225 } else { b }
        })
        .collect()
}

fn tight_view(format: PixelFormat, w: usize, h: usize, bytes: &[u8]) -> FrameRef<'_> {
    convert::tight_frame(format, w, h, bytes).expect("tight frame")
}

fn tight_view_mut(format: PixelFormat, w: usize, h: usize, bytes: &mut [u8]) -> FrameMut<'_> {
    convert::tight_frame_mut(format, w, h, bytes).expect("tight frame")
}

const SIZES: [(usize, usize); 7] = [
    (1, 1),
    (2, 1),
    (3, 5),
    (7, 2),
    (33, 17),
    (64, 36),
    (1920, 1080),
];

/// The GPU kernels are compiled without fused multiply-adds and mirror the CPU code operation
/// for operation: tensors and bytes must match bit for bit.
#[test]
fn gpu_conversion_is_bit_identical_to_cpu() {
    let Some(gpu) = gpu("gpu_conversion_is_bit_identical_to_cpu") else {
        return;
    };
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for format in PixelFormat::ALL {
        for &(w, h) in &SIZES {
            for pad in [1, 4] {
                for matrix in ENCODINGS {
                    for up in [ChromaUpsampling::Bilinear, ChromaUpsampling::Nearest] {
                        if !format.is_yuv()
                            && (matrix != ENCODINGS[0] || up != ChromaUpsampling::Bilinear)
                        {
                            continue;
                        }
                        let bytes = random_frame(format, w, h, &mut rng);
                        let frame = tight_view(format, w, h, &bytes);
                        let (ph, pw) = padded_size(h, w, pad);
                        let mut cpu = vec![0f32; 3 * ph * pw];
                        convert::frame_to_tensor_with(&frame, matrix, up, pad, &mut cpu)
                            .expect("cpu");
                        let (g, gph, gpw) = gpu
                            .frame_to_tensor_host(&frame, matrix, up, pad)
                            .expect("gpu");
                        assert_eq!((gph, gpw), (ph, pw));
                        let diff = cpu
                            .iter()
                            .zip(&g)
                            .position(|(a, b)| a.to_bits() != b.to_bits());
                        assert!(
                            diff.is_none(),
                            "{format} {w}x{h} pad {pad} {matrix:?} {up:?}: tensor differs at {diff:?}"
                        );

                        // Back: a tensor with values past [-1, 1] and NaNs, alpha from the input.
                        let mut t: Vec<f32> =
                            (0..3 * ph * pw).map(|_| rng.range(-1.2, 1.2)).collect();
                        t[0] = f32::NAN;
                        let mut cpu_out = vec![0u8; bytes.len()];
                        {
                            let mut out = tight_view_mut(format, w, h, &mut cpu_out);
                            convert::tensor_to_frame(&t, ph, pw, matrix, Some(&frame), &mut out)
                                .expect("cpu back");
                        }
                        let gpu_out = gpu
                            .tensor_to_frame_host(
                                &t,
                                FrameShape {
                                    format,
                                    width: w,
                                    height: h,
                                    n: 1,
                                    ph,
                                    pw,
                                },
                                matrix,
                                Some(&bytes),
                            )
                            .expect("gpu back");
                        let diff = cpu_out.iter().zip(&gpu_out).position(|(a, b)| a != b);
                        assert!(
                            diff.is_none(),
                            "{format} {w}x{h} pad {pad} {matrix:?}: frame differs at byte {diff:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    println!("{checked} conversions bit-identical in both directions");
}

/// Row bytes of plane `p` plus 16 bytes of padding.
fn padded_stride(format: PixelFormat, w: usize, p: usize) -> usize {
    16 + match (format, p) {
        (PixelFormat::I420, 0) | (PixelFormat::Nv12, 0) => w,
        (PixelFormat::I420, _) => w.div_ceil(2),
        (PixelFormat::Nv12, _) => 2 * w.div_ceil(2),
        (f, _) => w * f.bytes_per_pixel().unwrap_or(3),
    }
}

fn plane_rows(format: PixelFormat, h: usize, p: usize) -> usize {
    if format.is_yuv() && p > 0 {
        h.div_ceil(2)
    } else {
        h
    }
}

/// A 642x362 rainy test picture (smooth colour fields plus rendered streaks), tightly packed RGB.
fn rainy_rgb(w: usize, h: usize, seed: u64) -> Vec<u8> {
    let n = w * h;
    let mut planes = vec![0f32; 3 * n];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            planes[y * w + x] = 0.2 + 0.6 * fx;
            planes[n + y * w + x] = 0.3 + 0.4 * fy;
            planes[2 * n + y * w + x] = 0.5 + 0.3 * ((fx * 9.0).sin() * (fy * 7.0).cos());
        }
    }
    let mut rng = Rng::new(seed);
    render_rain(&mut planes, w, h, &RainStyle::default(), &mut rng);
    let mut rgb = vec![0u8; 3 * n];
    for i in 0..n {
        for c in 0..3 {
            rgb[3 * i + c] = (planes[c * n + i] * 255.0).round() as u8;
        }
    }
    rgb
}

/// Converts tightly packed RGB to `format` with the CPU converter (through a tensor).
fn rgb_to_format(rgb: &[u8], w: usize, h: usize, format: PixelFormat) -> Vec<u8> {
    let mut t = vec![0f32; 3 * w * h];
    convert::rgb8_to_tensor(rgb, w, h, &mut t).expect("tensor");
    let len = match format {
        PixelFormat::I420 | PixelFormat::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        f => w * h * f.bytes_per_pixel().unwrap_or(3),
    };
    let mut out = vec![0u8; len];
    let mut view = tight_view_mut(format, w, h, &mut out);
    convert::tensor_to_frame(&t, h, w, ColorMatrix::Bt601, None, &mut view).expect("frame");
    // A varying fourth byte, so that keeping alpha (and overwriting padding) is checked.
    if format.bytes_per_pixel() == Some(4) {
        let a = if matches!(format, PixelFormat::Xrgb | PixelFormat::Xbgr) {
            0
        } else {
            3
        };
        for (i, px) in out.chunks_exact_mut(4).enumerate() {
            px[a] = (i * 7) as u8;
        }
    }
    out
}

/// The CPU path the element takes: convert, run, convert back.
fn cpu_derain(model: &mut Model, frame: &FrameRef) -> Vec<u8> {
    let m = model.info().size_multiple;
    let (ph, pw) = padded_size(frame.height, frame.width, m);
    let mut input = vec![0f32; 3 * ph * pw];
    convert::frame_to_tensor(frame, ColorMatrix::Bt601, m, &mut input).expect("convert");
    let mut output = vec![0f32; input.len()];
    model
        .run(&input, 1, ph, pw, &mut output, None)
        .expect("cpu run");
    let mut bytes = vec![0u8; frame.planes.iter().map(|p| p.len()).sum()];
    let mut out = tight_view_mut(frame.format, frame.width, frame.height, &mut bytes);
    // As the element: real alpha is kept, padding bytes are written as 255.
    let alpha = matches!(frame.format, PixelFormat::Rgba | PixelFormat::Bgra).then_some(frame);
    convert::tensor_to_frame(&output, ph, pw, ColorMatrix::Bt601, alpha, &mut out).expect("back");
    bytes
}

/// Largest and mean absolute byte difference, and PSNR in dB.
fn compare(a: &[u8], b: &[u8]) -> (u8, f64, f64) {
    let mut max = 0u8;
    let mut sum = 0f64;
    let mut sq = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        let d = x.abs_diff(y);
        max = max.max(d);
        sum += f64::from(d);
        sq += f64::from(d) * f64::from(d);
    }
    let n = a.len() as f64;
    let mse = sq / n;
    let psnr = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    };
    (max, sum / n, psnr)
}

/// Parity tolerance of the whole GPU path against the CPU path (same model, same frame): the
/// conversions are exact, so the difference is the network's arithmetic on another device
/// (cuDNN convolution algorithms, TF32 where the card has it).
pub const PARITY_MIN_PSNR_DB: f64 = 45.0;
pub const PARITY_MAX_MEAN_ABS: f64 = 0.5;

#[test]
fn gpu_session_matches_the_cpu_path() {
    const TEST: &str = "gpu_session_matches_the_cpu_path";
    if gpu(TEST).is_none() {
        return;
    }
    let mut gpu_session = match GpuSession::open(None, "", &SessionOptions::default()) {
        Ok(s) => s,
        Err(GpuError::Runtime(e @ RuntimeError::ProviderUnavailable { .. })) => {
            skip(
                TEST,
                &format!("ONNX Runtime has no usable CUDA provider (onnxruntime-gpu): {e}"),
            );
            return;
        }
        Err(e) => panic!("GPU session: {e}"),
    };
    let mut cpu = Model::open_default(&SessionOptions::default()).expect("cpu model");
    let (w, h) = (642, 362); // not a multiple of the model's stem: padding is exercised
    let rgb = rainy_rgb(w, h, 3);
    for format in [
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Rgbx,
        PixelFormat::Bgra,
        PixelFormat::Bgr,
    ] {
        let bytes = rgb_to_format(&rgb, w, h, format);
        let frame = tight_view(format, w, h, &bytes);
        let expected = cpu_derain(&mut cpu, &frame);
        // Two frames in one batch, the second written into planes with padded strides.
        let mut outs = [vec![0u8; bytes.len()], vec![0u8; bytes.len()]];
        let mut padded: Vec<Vec<u8>> = (0..format.n_planes())
            .map(|p| vec![0u8; (padded_stride(format, w, p) * plane_rows(format, h, p)).max(1)])
            .collect();
        {
            let [a, _] = &mut outs;
            let mut it = padded.iter_mut();
            let mut planes: [&mut [u8]; 3] = [&mut [], &mut [], &mut []];
            for (slot, buf) in planes.iter_mut().zip(&mut it) {
                *slot = buf.as_mut_slice();
            }
            let strides = [0, 1, 2].map(|p| {
                if p < format.n_planes() {
                    padded_stride(format, w, p)
                } else {
                    0
                }
            });
            let mut views = [
                tight_view_mut(format, w, h, a),
                FrameMut {
                    format,
                    width: w,
                    height: h,
                    planes,
                    strides,
                },
            ];
            gpu_session
                .derain(&[frame, frame], ColorMatrix::Bt601, &mut views)
                .expect("gpu derain");
        }
        {
            let strides = [0, 1, 2].map(|p| {
                if p < format.n_planes() {
                    padded_stride(format, w, p)
                } else {
                    0
                }
            });
            let mut planes: [&[u8]; 3] = [&[], &[], &[]];
            for (slot, buf) in planes.iter_mut().zip(&padded) {
                *slot = buf.as_slice();
            }
            let src = FrameRef {
                format,
                width: w,
                height: h,
                planes,
                strides,
            };
            let [_, b] = &mut outs;
            convert::copy_frame(&src, &mut tight_view_mut(format, w, h, b)).expect("copy");
        }
        assert_eq!(outs[0], outs[1], "{format}: frames of one batch differ");
        // A partial batch after a full one reuses its buffers and gives the same frame.
        let mut single = vec![0u8; bytes.len()];
        gpu_session
            .derain(
                &[frame],
                ColorMatrix::Bt601,
                &mut [tight_view_mut(format, w, h, &mut single)],
            )
            .expect("partial batch");
        assert_eq!(single, outs[0], "{format}: a partial batch differs");
        let (max, mean, psnr) = compare(&expected, &outs[0]);
        println!("{format}: GPU vs CPU max {max}, mean {mean:.4}, PSNR {psnr:.2} dB");
        assert!(
            psnr >= PARITY_MIN_PSNR_DB && mean <= PARITY_MAX_MEAN_ABS,
            "{format}: GPU output differs from the CPU path: max {max}, mean {mean}, PSNR {psnr}"
        );
    }
}

#[test]
fn gpu_session_rejects_mixed_batches() {
    const TEST: &str = "gpu_session_rejects_mixed_batches";
    if gpu(TEST).is_none() {
        return;
    }
    let mut s = match GpuSession::open(None, "", &SessionOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            skip(TEST, &format!("GPU session unavailable: {e}"));
            return;
        }
    };
    let a = vec![0u8; 64 * 36 * 4];
    let b = vec![0u8; 32 * 36 * 4];
    let fa = tight_view(PixelFormat::Rgbx, 64, 36, &a);
    let fb = tight_view(PixelFormat::Rgbx, 32, 36, &b);
    let mut o1 = vec![0u8; a.len()];
    let mut o2 = vec![0u8; a.len()];
    let mut outs = [
        tight_view_mut(PixelFormat::Rgbx, 64, 36, &mut o1),
        tight_view_mut(PixelFormat::Rgbx, 64, 36, &mut o2),
    ];
    let e = s
        .derain(&[fa, fb], ColorMatrix::Bt601, &mut outs)
        .expect_err("mixed sizes");
    assert!(e.to_string().contains("differ"), "{e}");
}

/// A model whose weights are all NaN: every output value is NaN.
fn nan_model() -> Vec<u8> {
    let spec = nlcl::ModelSpec::from_tag("w4d1s2r").expect("tag");
    let random = nlcl::onnx::Weights::random_generator(&spec, nlcl::spec::BACK_PREFIX, 3, 0.5);
    let mut weights = nlcl::onnx::Weights::new();
    for name in random.names() {
        let t = random.get(name).expect("tensor");
        weights
            .insert(name, t.shape.clone(), vec![f32::NAN; t.data.len()])
            .expect("insert");
    }
    nlcl::onnx::write_model(
        &nlcl::onnx::ExportConfig {
            spec,
            include_rain: false,
            metadata: Vec::new(),
            dead_zone: 0.0,
        },
        &weights,
    )
    .expect("write")
}

#[test]
fn gpu_session_gives_the_input_back_for_nan_output() {
    const TEST: &str = "gpu_session_gives_the_input_back_for_nan_output";
    if gpu(TEST).is_none() {
        return;
    }
    let bytes = nan_model();
    let mut s = match GpuSession::open(Some(&bytes), "nan", &SessionOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            skip(TEST, &format!("GPU session unavailable: {e}"));
            return;
        }
    };
    let mut rng = Rng::new(4);
    for format in [PixelFormat::Rgbx, PixelFormat::I420] {
        let a = random_frame(format, 64, 36, &mut rng);
        let b = random_frame(format, 64, 36, &mut rng);
        let (fa, fb) = (
            tight_view(format, 64, 36, &a),
            tight_view(format, 64, 36, &b),
        );
        let mut o1 = vec![0u8; a.len()];
        let mut o2 = vec![0u8; b.len()];
        let times = {
            let mut outs = [
                tight_view_mut(format, 64, 36, &mut o1),
                tight_view_mut(format, 64, 36, &mut o2),
            ];
            s.derain(&[fa, fb], ColorMatrix::Bt601, &mut outs)
                .expect("derain")
        };
        assert_eq!(times.invalid, vec![0, 1], "{format}");
        assert_eq!(o1, a, "{format}: the input comes back, not a black frame");
        assert_eq!(o2, b, "{format}");
    }
}
