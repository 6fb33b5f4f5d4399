//! Bounded fuzzing of the two places where bytes from outside meet the engine: model files
//! (random and mutated ONNX bytes and metadata) and frame conversion (random formats, sizes,
//! strides, buffer lengths and tensors). Nothing may panic or read out of bounds; a bad input
//! is an `Err`, and an accepted one gives values in range.
//!
//! The test command runs a few hundred cases of each; run them longer with
//! `PROPTEST_CASES=100000 cargo test --release -p nlcl --test fuzz` (see the README).

use nlcl::ModelSpec;
use nlcl::convert::{
    self, ChromaUpsampling, ColorMatrix, ColorRange, FrameMut, FrameRef, PixelFormat, YuvEncoding,
};
use nlcl::runtime::{Model, RuntimeError, SessionOptions};
use proptest::prelude::*;

/// A small model to mutate (2 KiB or so: mutations land everywhere in it).
fn seed_model() -> Vec<u8> {
    let spec = ModelSpec::from_tag("w4d1s2r").expect("tag");
    nlcl::onnx::identity_model(spec).expect("identity model")
}

/// How a test case changes the seed model's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match m {
        Mutation::Flip { at, mask } => bytes[at % n] ^= mask,
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::Insert { at, bytes: b } => {
            let at = at % (n + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let at = at % n;
            bytes.drain(at..(at + len).min(n));
        }
    }
}

/// Everything the engine does with model bytes before and while opening a session.
fn load(bytes: &[u8]) {
    let _ = nlcl::onnx::read_metadata(bytes);
    let _ = nlcl::onnx::read_generators(bytes);
    match Model::from_bytes(bytes, "fuzzed", &SessionOptions::default()) {
        Ok(model) => {
            // Whatever opened must also describe itself sanely.
            let info = model.info();
            assert!((1..=64).contains(&info.size_multiple), "{info:?}");
        }
        Err(RuntimeError::LibraryNotFound { .. }) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mutated_models_load_or_fail_cleanly(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = seed_model();
        for m in &mutations {
            if !bytes.is_empty() {
                apply(&mut bytes, m);
            }
        }
        load(&bytes);
    }

    #[test]
    fn random_bytes_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        load(&bytes);
    }

    #[test]
    fn model_metadata_and_tags_are_parsed_or_refused(tag in "[wdsrn0-9]{0,12}", value in ".{0,12}") {
        let _ = ModelSpec::from_tag(&tag);
        // A valid model with an arbitrary size multiple and architecture tag in its metadata.
        let spec = ModelSpec::from_tag("w4d1s2r").expect("tag");
        let weights = nlcl::onnx::Weights::random_generator(&spec, nlcl::spec::BACK_PREFIX, 1, 0.1);
        let config = nlcl::onnx::ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![
                (nlcl::onnx::meta::SIZE_MULTIPLE.into(), value.clone()),
                (nlcl::onnx::meta::ARCH.into(), tag.clone()),
            ],
            dead_zone: 0.0,
        };
        if let Ok(bytes) = nlcl::onnx::write_model(&config, &weights) {
            load(&bytes);
        }
    }
}

fn format() -> impl Strategy<Value = PixelFormat> {
    prop::sample::select(PixelFormat::ALL.to_vec())
}

fn encoding() -> impl Strategy<Value = YuvEncoding> {
    (
        prop::sample::select(vec![
            ColorMatrix::Bt601,
            ColorMatrix::Bt709,
            ColorMatrix::Bt2020,
            ColorMatrix::Smpte240m,
            ColorMatrix::Fcc,
        ]),
        prop::bool::ANY,
    )
        .prop_map(|(m, full)| {
            YuvEncoding::new(
                m,
                if full {
                    ColorRange::Full
                } else {
                    ColorRange::Limited
                },
            )
        })
}

/// A frame description that may or may not be consistent: sizes, strides and plane lengths
/// are drawn independently, so most cases are wrong in some way.
#[derive(Debug, Clone)]
struct RawFrame {
    format: PixelFormat,
    width: usize,
    height: usize,
    strides: [usize; 3],
    lens: [usize; 3],
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    (
        format(),
        0usize..24,
        0usize..24,
        prop::array::uniform3(0usize..120),
        prop::array::uniform3(0usize..2400),
    )
        .prop_map(|(format, width, height, strides, lens)| RawFrame {
            format,
            width,
            height,
            strides,
            lens,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn conversion_of_arbitrary_frames_never_panics(
        raw in raw_frame(),
        enc in encoding(),
        pad in 0usize..9,
        tensor_len in 0usize..8000,
        bilinear in prop::bool::ANY,
        fill in any::<u8>(),
        value in prop::num::f32::ANY,
    ) {
        let planes: Vec<Vec<u8>> = raw.lens.iter().map(|&n| vec![fill; n]).collect();
        let frame = FrameRef {
            format: raw.format,
            width: raw.width,
            height: raw.height,
            planes: [&planes[0], &planes[1], &planes[2]],
            strides: raw.strides,
        };
        let up = if bilinear { ChromaUpsampling::Bilinear } else { ChromaUpsampling::Nearest };
        let mut tensor = vec![0f32; tensor_len];
        if let Ok((ph, pw)) = convert::frame_to_tensor_with(&frame, enc, up, pad, &mut tensor) {
            prop_assert!(3 * ph * pw <= tensor.len());
            prop_assert!(ph >= raw.height && pw >= raw.width);
            prop_assert!(tensor[..3 * ph * pw].iter().all(|v| (-1.0..=1.0).contains(v)));
        }
        // Back into a frame of the same description, from a tensor of arbitrary values
        // (NaN and infinities included) and claimed size.
        let tensor = vec![value; tensor_len];
        let mut out: Vec<Vec<u8>> = raw.lens.iter().map(|&n| vec![0u8; n]).collect();
        let [a, b, c] = &mut out[..] else { unreachable!() };
        let mut dst = FrameMut {
            format: raw.format,
            width: raw.width,
            height: raw.height,
            planes: [a, b, c],
            strides: raw.strides,
        };
        let (th, tw) = (raw.height + pad % 3, raw.width + pad / 3);
        let _ = convert::tensor_to_frame(&tensor, th, tw, enc, Some(&frame), &mut dst);
        let _ = convert::copy_frame(&frame, &mut dst);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Well-formed frames with random content, size and row padding always convert; packed RGB
    /// formats come back byte for byte, grey YUV frames within 1 level.
    #[test]
    fn well_formed_frames_convert_and_rgb_round_trips(
        format in format(),
        width in 1usize..40,
        height in 1usize..40,
        row_padding in 0usize..9,
        enc in encoding(),
        pad in 1usize..9,
        seed in any::<u64>(),
    ) {
        let mut rng = nlcl::rng::Rng::new(seed);
        let tight = convert::tight_frame_len(format, width, height).expect("size");
        let mut bytes: Vec<u8> = (0..tight).map(|_| (rng.f32() * 255.0) as u8).collect();
        if format.is_yuv() {
            // Grey: neutral chroma, luma within the range's limits (see the check below).
            let luma = width * height;
            let (lo, hi) = match enc.range {
                ColorRange::Limited => (16.0, 235.0),
                ColorRange::Full => (0.0, 255.0),
            };
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = if i < luma { (lo + f32::from(*b) / 255.0 * (hi - lo)).round() as u8 } else { 128 };
            }
        }
        let tight_view = convert::tight_frame(format, width, height, &bytes).expect("tight");
        // The same frame with `row_padding` extra bytes at the end of every row.
        let strides = tight_view.strides.map(|s| if s == 0 { 0 } else { s + row_padding });
        let padded: Vec<Vec<u8>> = (0..3)
            .map(|p| {
                let (s, t) = (strides[p], tight_view.strides[p]);
                if t == 0 {
                    return Vec::new();
                }
                tight_view.planes[p].chunks(t).flat_map(|row| {
                    row.iter().copied().chain(std::iter::repeat_n(0xEE, s - t))
                }).collect()
            })
            .collect();
        let frame = FrameRef {
            format,
            width,
            height,
            planes: [&padded[0], &padded[1], &padded[2]],
            strides,
        };
        let mut tensor = vec![0f32; convert::tensor_len(height, width, pad)];
        let (ph, pw) = convert::frame_to_tensor(&frame, enc, pad, &mut tensor)
            .map_err(|e| TestCaseError::fail(format!("{format} {width}x{height}: {e}")))?;
        let mut out: Vec<Vec<u8>> = padded.iter().map(|p| vec![0u8; p.len()]).collect();
        let [a, b, c] = &mut out[..] else { unreachable!() };
        let mut dst = FrameMut { format, width, height, planes: [a, b, c], strides };
        convert::tensor_to_frame(&tensor, ph, pw, enc, Some(&frame), &mut dst)
            .map_err(|e| TestCaseError::fail(format!("{format} {width}x{height}: {e}")))?;
        if !format.is_yuv() {
            // The fourth byte of 4-byte formats comes from `alpha_from` (the input frame).
            let row = tight_view.strides[0];
            for y in 0..height {
                let i = y * strides[0];
                prop_assert_eq!(&out[0][i..i + row], &padded[0][i..i + row], "{} {}x{} row {}", format, width, height, y);
            }
        } else {
            // Grey YUV (neutral chroma, luma inside the range's limits) is always a valid
            // colour: it must come back within 1 level, whatever the size and strides.
            for p in 0..3 {
                let t = tight_view.strides[p];
                if t == 0 {
                    continue;
                }
                for (y, (r1, r2)) in padded[p].chunks(strides[p]).zip(out[p].chunks(strides[p])).enumerate() {
                    let worst = r1[..t].iter().zip(&r2[..t]).map(|(x, z)| x.abs_diff(*z)).max().unwrap_or(0);
                    prop_assert!(worst <= 1, "{} {}x{} {:?} plane {} row {}: {} levels", format, width, height, enc, p, y, worst);
                }
            }
        }
    }
}
