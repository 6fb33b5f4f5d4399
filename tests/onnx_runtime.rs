//! The ONNX graph written by `nlcl::onnx`, run by ONNX Runtime, against the plain-Rust reference
//! forward pass of `nlcl::reference` (an independent implementation of the same layer list).

use nlcl::ModelSpec;
use nlcl::onnx::{ExportConfig, Weights, meta, write_model};
use nlcl::reference::{Planes, generator_forward};
use nlcl::runtime::{Model, RuntimeError, SessionOptions};
use nlcl::spec::{BACK_PREFIX, RAIN_PREFIX};

fn input(h: usize, w: usize, seed: u32) -> Planes {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let data = (0..3 * h * w)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            // A smooth pattern plus noise, in [-1, 1].
            let smooth = ((i % w) as f32 / w as f32 - 0.5) * 1.2;
            (smooth + (s % 1000) as f32 / 2500.0 - 0.2).clamp(-1.0, 1.0)
        })
        .collect();
    Planes { c: 3, h, w, data }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_spec(spec: ModelSpec, include_rain: bool, h: usize, w: usize) {
    let mut weights = Weights::random_generator(&spec, BACK_PREFIX, 11, 0.5);
    if include_rain {
        weights.extend(Weights::random_generator(&spec, RAIN_PREFIX, 12, 0.5));
    }
    let cfg = ExportConfig {
        spec,
        include_rain,
        metadata: vec![(meta::TASK.into(), "derain".into())],
        dead_zone: 0.0,
    };
    let bytes = write_model(&cfg, &weights).expect("write");
    let mut model = Model::from_bytes(&bytes, "test", &SessionOptions::default()).expect("load");
    assert_eq!(model.info().size_multiple, spec.size_multiple());
    assert_eq!(model.info().has_rain, include_rain);
    assert_eq!(model.info().meta(meta::ARCH), Some(spec.tag().as_str()));

    let x = input(h, w, 3);
    let mut clean = vec![0.0; x.data.len()];
    let mut rain = vec![0.0; x.data.len()];
    model
        .run(
            &x.data,
            1,
            h,
            w,
            &mut clean,
            include_rain.then_some(&mut rain[..]),
        )
        .expect("run");
    let want = generator_forward(&spec, &weights, BACK_PREFIX, spec.global_residual, &x).unwrap();
    let err = max_abs(&clean, &want.data);
    assert!(err < 1e-4, "{spec}: clean differs from reference by {err}");
    // The case must not be trivial, or matching the reference would prove little: the output
    // is neither the input (the network adds something, residual or not) nor constant.
    let change = max_abs(&clean, &x.data);
    assert!(change > 1e-2, "{spec}: output within {change} of the input");
    let (lo, hi) = clean
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo > 1e-2, "{spec}: constant output {lo}..{hi}");
    if spec.global_residual {
        // And the skip connection is really there: without it the output would differ.
        let branch = generator_forward(&spec, &weights, BACK_PREFIX, false, &x).unwrap();
        let skip = max_abs(&clean, &branch.data);
        assert!(
            skip > 1e-2,
            "{spec}: output within {skip} of the branch alone"
        );
    }
    if include_rain {
        let want = generator_forward(&spec, &weights, RAIN_PREFIX, false, &x).unwrap();
        let err = max_abs(&rain, &want.data);
        assert!(err < 1e-4, "{spec}: rain differs from reference by {err}");
    }
}

#[test]
fn official_layout_matches_reference() {
    // Official layout with fewer blocks so the naive reference stays fast.
    check_spec(
        ModelSpec {
            depth: 2,
            ..ModelSpec::OFFICIAL
        },
        false,
        12,
        10,
    );
}

#[test]
fn unshuffle_residual_with_rain_output_matches_reference() {
    let spec = ModelSpec {
        width: 8,
        depth: 3,
        unshuffle: 2,
        global_residual: true,
        instance_norm: true,
        detail_radius: 0,
    };
    check_spec(spec, true, 10, 14);
}

#[test]
fn normalisation_free_generator_matches_reference() {
    let spec = ModelSpec {
        width: 8,
        depth: 3,
        unshuffle: 2,
        global_residual: true,
        instance_norm: false,
        detail_radius: 0,
    };
    check_spec(spec, true, 10, 14);
}

#[test]
fn detail_layer_generator_matches_reference() {
    // A radius larger than the frame's half-size: every window is cut by the frame's edges.
    for (radius, h, w) in [(1, 10, 14), (6, 10, 14)] {
        let spec = ModelSpec {
            width: 8,
            depth: 2,
            unshuffle: 2,
            global_residual: true,
            instance_norm: false,
            detail_radius: radius,
        };
        check_spec(spec, true, h, w);
    }
}

#[test]
fn unshuffle_four_matches_reference() {
    let spec = ModelSpec {
        width: 6,
        depth: 1,
        unshuffle: 4,
        global_residual: false,
        instance_norm: true,
        detail_radius: 0,
    };
    check_spec(spec, false, 8, 16);
}

#[test]
fn float16_variant_follows_the_float32_reference() {
    // Both normalisations, the detail layer and the rain output, at half precision.
    for (instance_norm, detail_radius) in [(true, 0), (false, 3)] {
        let spec = ModelSpec {
            width: 8,
            depth: 3,
            unshuffle: 2,
            global_residual: true,
            instance_norm,
            detail_radius,
        };
        let mut weights = Weights::random_generator(&spec, BACK_PREFIX, 21, 0.5);
        weights.extend(Weights::random_generator(&spec, RAIN_PREFIX, 22, 0.5));
        let cfg = ExportConfig {
            spec,
            include_rain: true,
            metadata: vec![],
            dead_zone: 0.0,
        };
        let bytes = nlcl::onnx::float16::to_float16(&write_model(&cfg, &weights).unwrap()).unwrap();
        let mut model = Model::from_bytes(&bytes, "f16", &SessionOptions::default())
            .unwrap_or_else(|e| {
                panic!("{spec}: ONNX Runtime cannot load the float16 variant: {e}")
            });
        assert_eq!(model.info().meta(meta::PRECISION), Some("float16"));
        let (h, w) = (18, 22);
        let x = input(h, w, 4);
        let (mut clean, mut rain) = (vec![0.0; x.data.len()], vec![0.0; x.data.len()]);
        model
            .run(&x.data, 1, h, w, &mut clean, Some(&mut rain[..]))
            .expect("run");
        let want = generator_forward(&spec, &weights, BACK_PREFIX, true, &x).unwrap();
        let want_rain = generator_forward(&spec, &weights, RAIN_PREFIX, false, &x).unwrap();
        let (e_clean, e_rain) = (max_abs(&clean, &want.data), max_abs(&rain, &want_rain.data));
        eprintln!("{spec} float16: max abs error clean {e_clean:e}, rain {e_rain:e}");
        // float16 keeps 11 significant bits (about 5e-4 relative): the rounding stays within
        // 1 % of the [-1, 1] range, far below a wrong graph's error. (ONNX Runtime's CPU
        // provider computes float16 nodes it has no kernel for in float32, so here this is
        // the rounding of weights and activations between nodes; a GPU also rounds inside.)
        assert!(
            e_clean < 1e-2 && e_rain < 1e-2,
            "{spec}: {e_clean} / {e_rain}"
        );
        assert!(
            e_clean > 0.0,
            "{spec}: no rounding at all: not computed in float16?"
        );
    }
}

#[test]
fn int8_variant_follows_the_float32_reference() {
    use nlcl::onnx::int8::{Range, to_int8, with_calibration_outputs};
    use std::collections::BTreeMap;
    // Both normalisations, with and without unshuffling (then the input itself is quantized),
    // the detail layer and the rain output.
    for (instance_norm, detail_radius, unshuffle) in [(true, 0, 2), (false, 3, 1), (false, 0, 2)] {
        let spec = ModelSpec {
            width: 8,
            depth: 3,
            unshuffle,
            global_residual: true,
            instance_norm,
            detail_radius,
        };
        let mut weights = Weights::random_generator(&spec, BACK_PREFIX, 23, 0.5);
        weights.extend(Weights::random_generator(&spec, RAIN_PREFIX, 24, 0.5));
        let cfg = ExportConfig {
            spec,
            include_rain: true,
            metadata: vec![],
            dead_zone: 0.0,
        };
        let bytes = write_model(&cfg, &weights).unwrap();
        let (h, w) = (18, 22);
        // Calibrated on other images than the one checked.
        let (probe, names) = with_calibration_outputs(&bytes).unwrap();
        let mut calib = Model::from_bytes(&probe, "probe", &SessionOptions::default()).unwrap();
        let mut ranges: BTreeMap<String, Range> =
            names.iter().map(|n| (n.clone(), Range::EMPTY)).collect();
        for seed in 10..14 {
            let x = input(h, w, seed);
            let values = calib.run_named(&x.data, 1, h, w, &names).unwrap();
            for (n, v) in names.iter().zip(&values) {
                ranges.get_mut(n).unwrap().include(v);
            }
        }
        let q = to_int8(&bytes, &ranges).unwrap();
        let text = String::from_utf8_lossy(&q);
        assert!(text.contains("QuantizeLinear") && text.contains("DequantizeLinear"));
        let mut model = Model::from_bytes(&q, "int8", &SessionOptions::default())
            .unwrap_or_else(|e| panic!("{spec}: ONNX Runtime cannot load the INT8 variant: {e}"));
        assert_eq!(model.info().meta(meta::PRECISION), Some("int8"));
        let x = input(h, w, 4);
        let (mut clean, mut rain) = (vec![0.0; x.data.len()], vec![0.0; x.data.len()]);
        model
            .run(&x.data, 1, h, w, &mut clean, Some(&mut rain[..]))
            .expect("run");
        let want = generator_forward(&spec, &weights, BACK_PREFIX, true, &x).unwrap();
        let want_rain = generator_forward(&spec, &weights, RAIN_PREFIX, false, &x).unwrap();
        let mean_abs = |a: &[f32], b: &[f32]| {
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
        };
        let (e_clean, e_rain) = (
            mean_abs(&clean, &want.data),
            mean_abs(&rain, &want_rain.data),
        );
        eprintln!("{spec} int8: mean abs error clean {e_clean:e}, rain {e_rain:e}");
        // Eight bits per activation over a dozen layers of random weights: under a hundredth
        // of the [-1, 1] range on average (measured 4e-4 to 9e-3); a wrong graph (a scale, a
        // zero point or a channel order wrong) is off by tenths.
        assert!(
            e_clean < 0.02 && e_rain < 0.02,
            "{spec}: {e_clean} / {e_rain}"
        );
        assert!(e_clean > 0.0, "{spec}: no rounding at all: not quantized?");
        // Written once: the variant is not converted again.
        assert!(with_calibration_outputs(&q).is_err());
    }
}

/// A width-4, one-block, full-resolution residual generator with random weights (`seed`): its
/// spec, weights and ONNX bytes.
fn tiny_residual_model(seed: u64) -> (ModelSpec, Weights, Vec<u8>) {
    let spec = ModelSpec {
        width: 4,
        depth: 1,
        unshuffle: 1,
        global_residual: true,
        instance_norm: true,
        detail_radius: 0,
    };
    let weights = Weights::random_generator(&spec, BACK_PREFIX, seed, 0.5);
    let cfg = ExportConfig {
        spec,
        include_rain: false,
        metadata: vec![],
        dead_zone: 0.0,
    };
    let bytes = write_model(&cfg, &weights).unwrap();
    (spec, weights, bytes)
}

#[test]
fn batch_of_two_runs_each_image_independently() {
    let (spec, weights, bytes) = tiny_residual_model(5);
    let mut model = Model::from_bytes(&bytes, "test", &SessionOptions::default()).unwrap();
    let (a, b) = (input(6, 7, 1), input(6, 7, 2));
    let mut batch = a.data.clone();
    batch.extend_from_slice(&b.data);
    let mut out = vec![0.0; batch.len()];
    model.run(&batch, 2, 6, 7, &mut out, None).unwrap();
    let n = a.data.len();
    let ra = generator_forward(&spec, &weights, BACK_PREFIX, true, &a).unwrap();
    let rb = generator_forward(&spec, &weights, BACK_PREFIX, true, &b).unwrap();
    assert!(max_abs(&out[..n], &ra.data) < 1e-4);
    assert!(max_abs(&out[n..], &rb.data) < 1e-4);
}

#[test]
fn a_pool_of_sessions_returns_results_in_submission_order() {
    use nlcl::worker::{InferenceWorker, Job, Payload};
    let (spec, weights, bytes) = tiny_residual_model(9);
    let opts = SessionOptions {
        threads: 1,
        ..SessionOptions::default()
    };
    let models = (0..3)
        .map(|_| Model::from_bytes(&bytes, "test", &opts).unwrap())
        .collect();
    let mut pool = InferenceWorker::spawn_pool(models, "test-pool").unwrap();
    assert_eq!(pool.sessions(), 3);
    // Jobs of different sizes and batch counts, so a result in the wrong order cannot match.
    let shapes = [
        (1, 6, 7),
        (2, 5, 9),
        (1, 8, 4),
        (1, 3, 3),
        (3, 4, 6),
        (1, 7, 7),
        (2, 6, 5),
    ];
    let mut inputs = Vec::new();
    for (tag, &(n, h, w)) in shapes.iter().enumerate() {
        let mut data = Vec::new();
        for k in 0..n {
            data.extend(input(h, w, (10 * tag + k) as u32).data);
        }
        inputs.push(data.clone());
        let job = Job {
            tag: tag as u64,
            payload: Payload::Tensors {
                input: data,
                output: Vec::new(),
                n,
                h,
                w,
            },
        };
        pool.submit(job).unwrap();
    }
    for (tag, &(n, h, w)) in shapes.iter().enumerate() {
        let done = pool.recv().unwrap();
        assert_eq!(done.tag, tag as u64, "results out of order");
        assert!(done.result.is_ok(), "{:?}", done.result);
        let Payload::Tensors { input, output, .. } = done.payload else {
            panic!("job {tag}: tensors came back as frames");
        };
        assert_eq!(input, inputs[tag], "input buffer came back changed");
        let per = 3 * h * w;
        for k in 0..n {
            let x = Planes {
                c: 3,
                h,
                w,
                data: inputs[tag][k * per..(k + 1) * per].to_vec(),
            };
            let want = generator_forward(&spec, &weights, BACK_PREFIX, true, &x).unwrap();
            let err = max_abs(&output[k * per..(k + 1) * per], &want.data);
            assert!(err < 1e-4, "job {tag} image {k}: differs by {err}");
        }
    }
    assert!(pool.try_recv().unwrap().is_none());
    assert!(InferenceWorker::spawn_pool(Vec::new(), "empty").is_err());
}

/// `InferenceWorker::open` picks the payload: tensors on the CPU provider, with no word about
/// the GPU frame path; with CUDA asked for, the GPU frame path where it starts, else tensors
/// and the reason it did not start. A job of the wrong kind fails as a result, not a panic,
/// and a model that cannot open is the model's error.
#[test]
fn open_chooses_the_payload_and_says_why_the_gpu_frame_path_is_not_used() {
    use nlcl::runtime::Provider;
    use nlcl::worker::{FrameSpec, InferenceWorker, Job, OpenError, Payload, PayloadKind};
    let (_, _, bytes) = tiny_residual_model(4);
    let cpu = SessionOptions {
        threads: 1,
        ..SessionOptions::default()
    };
    let (mut worker, why) = InferenceWorker::open(&bytes, "test", &cpu, 2, "test-open").unwrap();
    assert_eq!(worker.sessions(), 2);
    assert_eq!(worker.payload_kind(), PayloadKind::Tensors);
    assert_eq!(why, None, "the GPU frame path was not asked for");
    // Frames sent to a tensor session come back with an error and their buffers.
    let spec = FrameSpec {
        format: nlcl::convert::PixelFormat::Rgb,
        width: 2,
        height: 2,
        encoding: Default::default(),
    };
    let frames = Payload::Frames {
        spec,
        n: 1,
        frames_in: vec![7; spec.frame_len().unwrap()],
        frames_out: Vec::new(),
    };
    assert_eq!(frames.kind(), PayloadKind::Frames);
    worker
        .submit(Job {
            tag: 5,
            payload: frames,
        })
        .unwrap();
    let done = worker.recv().unwrap();
    assert_eq!(done.tag, 5);
    let error = done.result.unwrap_err();
    assert!(error.contains("frames"), "{error}");
    assert!(matches!(done.payload, Payload::Frames { ref frames_in, .. } if frames_in.len() == 12));

    let cuda = SessionOptions {
        provider: Provider::Cuda,
        ..cpu.clone()
    };
    let (worker, why) = InferenceWorker::open(&bytes, "test", &cuda, 1, "test-open").unwrap();
    match worker.payload_kind() {
        PayloadKind::Frames => assert_eq!(why, None),
        PayloadKind::Tensors => {
            let why = why.expect("CUDA was asked for: the reason the frame path is not used");
            println!("GPU frame path not used here: {why}");
            assert!(!why.is_empty());
        }
    }

    match InferenceWorker::open(b"not onnx", "junk", &cpu, 1, "test-open") {
        Err(OpenError::Model(RuntimeError::ModelInvalid { origin, .. })) => {
            assert_eq!(origin, "junk")
        }
        other => panic!(
            "expected the model's error, got {:?}",
            other.map(|(_, why)| why)
        ),
    }
}

#[test]
fn corrupt_bytes_are_a_clear_error() {
    let err = Model::from_bytes(
        b"this is not onnx",
        "broken.onnx",
        &SessionOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RuntimeError::ModelInvalid { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.onnx"));
}

#[test]
fn missing_file_is_named() {
    let err = Model::open("/nonexistent/model.onnx", &SessionOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
}

#[test]
fn sizes_not_multiple_of_the_stem_are_rejected() {
    let spec = ModelSpec {
        width: 4,
        depth: 0,
        unshuffle: 2,
        global_residual: true,
        instance_norm: true,
        detail_radius: 0,
    };
    let w = Weights::random_generator(&spec, BACK_PREFIX, 1, 0.5);
    let bytes = write_model(
        &ExportConfig {
            spec,
            include_rain: false,
            metadata: vec![],
            dead_zone: 0.0,
        },
        &w,
    )
    .unwrap();
    let mut model = Model::from_bytes(&bytes, "t", &SessionOptions::default()).unwrap();
    let x = vec![0.0; 3 * 5 * 4];
    let mut y = x.clone();
    let err = model.run(&x, 1, 5, 4, &mut y, None).unwrap_err();
    assert!(err.to_string().contains("multiple of 2"), "{err}");
}

/// The dead zone of the `clean` output (`ExportConfig::dead_zone`), run by ONNX Runtime,
/// against the gate computed here from the reference forward pass: clean = rainy - g * change,
/// g = m^2 / (m^2 + t^2) with m the channel mean of the change. The dead zone is set at the
/// change of a third of the pixels so that both faded and kept pixels are checked; the float16
/// variant follows.
#[test]
fn dead_zone_fades_small_changes_and_keeps_large_ones() {
    let spec = ModelSpec {
        width: 8,
        depth: 2,
        unshuffle: 2,
        global_residual: true,
        instance_norm: false,
        detail_radius: 0,
    };
    let weights = Weights::random_generator(&spec, BACK_PREFIX, 31, 0.3);
    let (h, w) = (16, 20);
    let x = input(h, w, 5);
    // The change the network makes (its body, unclamped in the graph: keep it inside [-1, 1]).
    let change = generator_forward(&spec, &weights, BACK_PREFIX, false, &x).unwrap();
    assert!(
        change.data.iter().all(|v| v.abs() < 0.999),
        "body saturates"
    );
    let n = h * w;
    let means: Vec<f32> = (0..n)
        .map(|i| (0..3).map(|c| change.data[c * n + i]).sum::<f32>() / 3.0)
        .collect();
    let mut sorted: Vec<f32> = means.iter().map(|m| m.abs()).collect();
    sorted.sort_by(f32::total_cmp);
    let t = sorted[n / 3];
    let levels = t * 255.0 / 2.0;
    let cfg = ExportConfig {
        spec,
        include_rain: false,
        metadata: vec![],
        dead_zone: levels,
    };
    let bytes = write_model(&cfg, &weights).unwrap();
    let md = nlcl::onnx::read_metadata(&bytes).unwrap();
    assert!(
        md.iter()
            .any(|(k, v)| k == meta::DEAD_ZONE && v == &levels.to_string()),
        "{md:?}"
    );
    let mut want = vec![0.0; 3 * n];
    let (mut faded, mut kept) = (0, 0);
    for i in 0..n {
        let g = means[i] * means[i] / (means[i] * means[i] + t * t);
        faded += usize::from(g < 0.3);
        kept += usize::from(g > 0.7);
        for c in 0..3 {
            want[c * n + i] = (x.data[c * n + i] - g * change.data[c * n + i]).clamp(-1.0, 1.0);
        }
    }
    assert!(
        faded > n / 10 && kept > n / 10,
        "faded {faded}, kept {kept}"
    );
    for (what, bytes) in [
        ("float32", bytes.clone()),
        ("float16", nlcl::onnx::float16::to_float16(&bytes).unwrap()),
    ] {
        let mut model = Model::from_bytes(&bytes, what, &SessionOptions::default()).unwrap();
        let mut out = vec![0.0; 3 * n];
        model.run(&x.data, 1, h, w, &mut out, None).unwrap();
        let err = max_abs(&out, &want);
        let tol = if what == "float16" { 1e-2 } else { 1e-5 };
        assert!(err < tol, "{what}: max abs error {err}");
    }
    // Without a dead zone the graph has no gate and the metadata no key.
    let plain = write_model(
        &ExportConfig {
            dead_zone: 0.0,
            ..cfg.clone()
        },
        &weights,
    )
    .unwrap();
    let md = nlcl::onnx::read_metadata(&plain).unwrap();
    assert!(!md.iter().any(|(k, _)| k == meta::DEAD_ZONE));
    // Out of range is refused, naming the value.
    for bad in [-1.0, f32::NAN, 300.0] {
        let err = write_model(
            &ExportConfig {
                dead_zone: bad,
                ..cfg.clone()
            },
            &weights,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dead zone") && err.contains(&bad.to_string()),
            "{err}"
        );
    }
}
