//! Every bad input ends in a clear error on the bus or a negotiation failure: never a panic
//! or a hang.

mod common;

use common::*;
use gst::prelude::*;
use nlcl::onnx::proto::*;
use prost::Message;

fn error_of(launch: &str) -> String {
    init();
    let r = run_to_end(&pipeline(launch));
    r.error
        .unwrap_or_else(|| panic!("expected an error from: {launch}"))
}

/// Runs `launch` to the end (its `nlclderain` named `d`, no error allowed) and returns the bytes
/// of every buffer entering and leaving the element, in order, and the element's stats.
fn frames_through(launch: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, gst::Structure) {
    init();
    let p = pipeline(launch);
    let d = p.by_name("d").unwrap();
    let (input, output) = (record_buffers(&d, "sink"), record_buffers(&d, "src"));
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{launch}: {:?}", r.error);
    let stats = d.property::<gst::Structure>("stats");
    (input.take(), output.take(), stats)
}

#[test]
fn missing_model_file_is_named() {
    let e = error_of(
        "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=64,height=48 \
         ! nlclderain model-file=/nonexistent/model.onnx ! fakesink",
    );
    assert!(e.contains("/nonexistent/model.onnx"), "{e}");
    assert!(e.contains("not found"), "{e}");
}

/// An empty `model-file` uses the built-in default model; a build without one asks for a model.
#[test]
fn empty_model_file_uses_built_in_model_or_asks_for_one() {
    init();
    let launch = "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain name=d ! fakesink";
    if nlcl::DEFAULT_MODEL.is_some() {
        let p = pipeline(launch);
        let r = run_to_end(&p);
        assert!(r.error.is_none(), "{:?}", r.error);
        let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
        assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 3);
    } else {
        let e = error_of(launch);
        assert!(e.contains("model-file"), "{e}");
    }
}

/// Every model of the family runs by name where it is installed; where it is not, the error
/// names the model, the property and the places looked at.
#[test]
fn named_models_run_or_say_where_they_were_looked_for() {
    init();
    for name in nlcl::family::ModelName::ALL.map(|m| m.as_str()) {
        let launch = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 \
             ! nlclderain name=d model={name} ! fakesink"
        );
        let source = nlcl::family::ModelSource::parse(name);
        match source.bytes() {
            Ok(_) => {
                let p = pipeline(&launch);
                let r = run_to_end(&p);
                assert!(r.error.is_none(), "{name}: {:?}", r.error);
                let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
                assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 3, "{name}");
            }
            Err(_) => {
                println!("model {name} is not installed here: checking its error message");
                let e = error_of(&launch);
                assert!(e.contains(name) && e.contains("property model"), "{e}");
                assert!(e.contains(&format!("{name}.onnx")), "{e}");
            }
        }
    }
}

#[test]
fn model_file_wins_over_model() {
    let e = error_of(
        "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=64,height=48 \
         ! nlclderain model=standard model-file=/nonexistent/model.onnx ! fakesink",
    );
    assert!(e.contains("/nonexistent/model.onnx"), "{e}");
}

#[test]
fn corrupt_model_is_reported() {
    let dir = temp_dir();
    let path = dir.path().join("corrupt.onnx");
    std::fs::write(&path, b"\x08\x07garbage that is not a protobuf model").unwrap();
    let e = error_of(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain model-file={} ! fakesink",
        path.display()
    ));
    assert!(e.contains("corrupt.onnx"), "{e}");
}

/// A valid ONNX model that does not follow the contract: one input channel.
/// An Identity model `rainy -> clean` with the given input/output dimensions (`None` = dynamic).
fn identity_with_dims(dir: &std::path::Path, dims: [Option<i64>; 4]) -> std::path::PathBuf {
    let names = ["n", "c", "h", "w"];
    let vi = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .zip(names)
                        .map(|(v, p)| Dimension {
                            dim_value: *v,
                            dim_param: v.is_none().then(|| p.to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: String::new(),
    };
    let model = ModelProto {
        ir_version: 8,
        graph: Some(GraphProto {
            node: vec![NodeProto {
                input: vec!["rainy".into()],
                output: vec!["clean".into()],
                name: "id".into(),
                op_type: "Identity".into(),
                ..Default::default()
            }],
            name: "identity".into(),
            input: vec![vi("rainy")],
            output: vec![vi("clean")],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        ..Default::default()
    };
    let path =
        dir.join(format!("identity-{dims:?}.onnx").replace([' ', ',', '(', ')', '[', ']'], ""));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

#[test]
fn model_with_wrong_input_shape_is_rejected_with_the_shape() {
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [None, Some(1), None, None]);
    let e = error_of(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain model-file={} ! fakesink",
        path.display()
    ));
    assert!(e.contains("1 channels") && e.contains("expected 3"), "{e}");
}

/// A model fixed to batches of one refuses a larger batch-size at start, naming both.
#[test]
fn fixed_batch_model_refuses_another_batch_size() {
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [Some(1), Some(3), None, None]);
    let e = error_of(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain batch-size=4 model-file={} ! fakesink",
        path.display()
    ));
    assert!(
        e.contains("exactly 1 frames") && e.contains("batch-size=1"),
        "{e}"
    );
}

/// A model fixed to batches of three gets partly filled batches padded: every frame comes out,
/// in order, as the identity model gives it back (its own input bytes, not another frame's or
/// the padding's).
#[test]
fn fixed_batch_model_gets_partial_batches_padded() {
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [Some(3), Some(3), None, None]);
    // `snow`: every frame differs, so a frame written back from the wrong slot shows.
    let (input, output, stats) = frames_through(&format!(
        "videotestsrc num-buffers=7 pattern=snow ! video/x-raw,format=RGB,width=16,height=8 \
         ! nlclderain name=d batch-size=3 max-in-flight=6 model-file={} ! fakesink",
        path.display()
    ));
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 7);
    assert_eq!(input.len(), 7);
    assert!(input.windows(2).all(|w| w[0] != w[1]), "frames must differ");
    // RGB through an identity model is exact (v = p / 127.5 - 1 and back).
    assert_eq!(output.len(), input.len());
    for (i, (a, b)) in input.iter().zip(&output).enumerate() {
        assert!(a == b, "frame {i} differs from its input");
    }
}

/// A model with dynamic sizes whose graph reshapes every input to 1x3x8x16: it passes every
/// check before the first frame and fails inside ONNX Runtime on a 32x32 frame.
fn reshape_to_8x16_model(dir: &std::path::Path) -> std::path::PathBuf {
    let identity = identity_with_dims(dir, [None, Some(3), None, None]);
    let mut model = ModelProto::decode(std::fs::read(&identity).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.initializer.push(TensorProto {
        dims: vec![4],
        data_type: 7, // TensorProto.DataType INT64
        name: "shape".into(),
        raw_data: [1i64, 3, 8, 16]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    });
    let node = &mut graph.node[0];
    node.op_type = "Reshape".into();
    node.input.push("shape".into());
    let path = dir.join("reshape-8x16.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// Inference that fails (a graph that cannot take a 32x32 frame) is an error on the bus that
/// names the cause, not a panic or a hang.
#[test]
fn failing_inference_is_reported() {
    let dir = temp_dir();
    let path = reshape_to_8x16_model(dir.path());
    for extra in ["", "batch-size=2 max-in-flight=4", "sessions=2"] {
        let e = error_of(&format!(
            "videotestsrc num-buffers=5 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain {extra} model-file={} ! fakesink",
            path.display()
        ));
        assert!(e.contains("Inference failed"), "{extra}: {e}");
    }
}

/// A model fixed to 16x8 frames is refused when the caps are set (naming both sizes), not on
/// the first frame; a stream of its size runs.
#[test]
fn fixed_size_model_is_checked_at_negotiation() {
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [None, Some(3), Some(8), Some(16)]);
    let e = error_of(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain model-file={} ! fakesink",
        path.display()
    ));
    assert!(e.contains("16x8") && e.contains("32x32"), "{e}");
    assert!(!e.contains("Inference failed"), "{e}");
    init();
    let r = run_to_end(&pipeline(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGB,width=16,height=8 ! nlclderain model-file={} ! fakesink",
        path.display()
    )));
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn unsupported_format_fails_negotiation() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    // Linking at parse time already refuses the caps; an application that links first and
    // negotiates later gets not-negotiated from the source instead. Both are checked.
    let launch = format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=GRAY8,width=32,height=32 ! nlclderain model-file={} ! fakesink",
        model.display()
    );
    let err = gst::parse::launch(&launch).expect_err("GRAY8 must not link");
    assert!(err.to_string().contains("can't handle caps"), "{err}");

    let p = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 3)
        .build()
        .unwrap();
    let filter = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            "video/x-raw,format=GRAY8".parse::<gst::Caps>().unwrap(),
        )
        .build()
        .unwrap();
    let derain = gst::ElementFactory::make("nlclderain")
        .property("model-file", model.to_str().unwrap())
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    p.add_many([&src, &filter, &derain, &sink]).unwrap();
    src.link(&filter).unwrap();
    // Pads are linked without caps checks so the failure shows up at negotiation time.
    filter
        .static_pad("src")
        .unwrap()
        .link_full(
            &derain.static_pad("sink").unwrap(),
            gst::PadLinkCheck::empty(),
        )
        .unwrap();
    derain
        .static_pad("src")
        .unwrap()
        .link_full(
            &sink.static_pad("sink").unwrap(),
            gst::PadLinkCheck::empty(),
        )
        .unwrap();
    let e = run_to_end(&p).error.expect("negotiation must fail");
    assert!(
        e.to_lowercase().contains("not-negotiated") || e.to_lowercase().contains("negotiat"),
        "{e}"
    );
}

#[test]
fn zero_sized_frames_are_refused_at_negotiation() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    let element = gst::ElementFactory::make("nlclderain")
        .property("model-file", model.to_str().unwrap())
        .build()
        .unwrap();
    let sink = element.static_pad("sink").unwrap();
    let zero: gst::Caps = "video/x-raw,format=RGB,width=0,height=0,framerate=30/1"
        .parse()
        .unwrap();
    assert!(
        !sink.query_accept_caps(&zero),
        "0x0 caps must not be accepted"
    );
    let one: gst::Caps = "video/x-raw,format=RGB,width=1,height=1,framerate=30/1"
        .parse()
        .unwrap();
    assert!(sink.query_accept_caps(&one));
}

/// 1x1 frames (padded to the model's multiple of 2, chroma planes of one sample) come back from
/// an identity model as they went in.
#[test]
fn one_by_one_frames_work() {
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    for pattern in ["red", "blue", "white"] {
        let caps = "video/x-raw,format=I420,width=1,height=1";
        let (input, output, stats) = frames_through(&format!(
            "videotestsrc num-buffers=3 pattern={pattern} ! {caps} \
             ! nlclderain name=d model-file={} ! fakesink",
            model.display()
        ));
        assert_eq!(
            stats.get::<u64>("frames-processed").unwrap(),
            3,
            "{pattern}"
        );
        assert_eq!(output.len(), 3, "{pattern}");
        let info = gst_video::VideoInfo::from_caps(&caps.parse::<gst::Caps>().unwrap()).unwrap();
        for (a, b) in input.iter().zip(&output) {
            // Y, U and V of the one pixel (the rest of each buffer is row padding).
            let yuv = |f: &[u8]| [0, 1, 2].map(|p| f[info.offset()[p]]);
            assert_eq!(yuv(b), yuv(a), "{pattern}: Y, U, V out vs in");
        }
    }
}

/// A GPU provider that ONNX Runtime cannot use here falls back to the CPU with a warning naming
/// it, and with `fallback-to-cpu=false` is an error naming it; where it can be used, both runs
/// use it. Which case applies is asked of the engine directly (a strict session of the same
/// model), so an element that falls back silently, or runs when it should fail, is caught.
#[test]
fn unavailable_gpu_provider_falls_back_with_a_warning_or_fails_when_strict() {
    use nlcl::runtime::{Model, Provider, RuntimeError, SessionOptions};
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    let bytes = std::fs::read(&model).unwrap();
    for provider in ["cuda", "tensorrt"] {
        let strict_options = SessionOptions {
            provider: Provider::from_name(provider).unwrap(),
            strict_provider: true,
            threads: 1,
            ..SessionOptions::default()
        };
        let available = match Model::from_bytes(&bytes, "m.onnx", &strict_options) {
            Ok(_) => true,
            Err(RuntimeError::ProviderUnavailable { .. }) => false,
            Err(e) => panic!("{provider}: {e}"),
        };
        let run = |extra: &str| {
            let p = pipeline(&format!(
                "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=32,height=32 \
                 ! nlclderain name=d model-file={} execution-provider={provider} {extra} \
                 ! fakesink",
                model.display()
            ));
            let r = run_to_end(&p);
            let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
            (r, stats)
        };
        let (r, stats) = run("");
        assert!(r.error.is_none(), "{provider}: {:?}", r.error);
        assert_eq!(
            stats.get::<u64>("frames-processed").unwrap(),
            2,
            "{provider}"
        );
        let (strict, strict_stats) = run("fallback-to-cpu=false");
        if available {
            println!("the {provider} provider is usable here: checking that it is used");
            assert_eq!(stats.get::<&str>("provider").unwrap(), provider);
            assert!(
                !r.warnings.iter().any(|w| w.contains("running on the CPU")),
                "{provider}: {:?}",
                r.warnings
            );
            assert!(strict.error.is_none(), "{provider}: {:?}", strict.error);
            assert_eq!(strict_stats.get::<&str>("provider").unwrap(), provider);
        } else {
            assert!(
                r.warnings.iter().any(|w| w.contains(provider)),
                "{provider} is unavailable, yet no warning names it: {:?}",
                r.warnings
            );
            assert_eq!(stats.get::<&str>("provider").unwrap(), "cpu");
            assert_eq!(stats.get::<&str>("conversion").unwrap(), "cpu");
            let e = strict.error.unwrap_or_else(|| {
                panic!("{provider}: strict mode must fail where it is unavailable")
            });
            assert!(
                e.contains(provider) && e.contains("execution-provider"),
                "{e}"
            );
        }
    }
}

/// ONNX Runtime is loaded once per process, so the missing-library case runs in a child
/// process of this test binary with `ORT_DYLIB_PATH` pointing nowhere.
#[test]
fn missing_onnxruntime_library_is_reported_with_install_hint() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_missing_onnxruntime",
            "--ignored",
            "--nocapture",
        ])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("CHILD-OK"), "{text}");
}

#[test]
#[ignore = "run by missing_onnxruntime_library_is_reported_with_install_hint"]
fn child_missing_onnxruntime() {
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    let e = error_of(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain model-file={} ! fakesink",
        model.display()
    ));
    assert!(e.contains("/nonexistent/libonnxruntime.so"), "{e}");
    assert!(e.contains("setup.sh"), "{e}");
    println!("CHILD-OK");
}

/// A model with the SMALL architecture whose weights are all NaN: its output is NaN everywhere.
fn nan_model(dir: &std::path::Path) -> std::path::PathBuf {
    let random = nlcl::onnx::Weights::random_generator(&SMALL, nlcl::spec::BACK_PREFIX, 3, 0.5);
    let mut weights = nlcl::onnx::Weights::new();
    for name in random.names() {
        let t = random.get(name).unwrap();
        weights
            .insert(name, t.shape.clone(), vec![f32::NAN; t.data.len()])
            .unwrap();
    }
    let bytes = nlcl::onnx::write_model(
        &nlcl::onnx::ExportConfig {
            spec: SMALL,
            include_rain: false,
            metadata: vec![(nlcl::onnx::meta::TASK.into(), "derain".into())],
            dead_zone: 0.0,
        },
        &weights,
    )
    .unwrap();
    let path = dir.join("nan.onnx");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn nan_output_passes_the_input_through_counts_and_warns_once() {
    init();
    let dir = temp_dir();
    let model = nan_model(dir.path());
    for format in ["RGB", "I420"] {
        let launch = format!(
            "videotestsrc num-buffers=4 pattern=ball ! video/x-raw,format={format},width=32,height=24 \
             ! nlclderain name=d model-file=\"{}\" ! fakesink",
            model.display()
        );
        let p = pipeline(&launch);
        let d = p.by_name("d").unwrap();
        let (input, output) = (record_buffers(&d, "sink"), record_buffers(&d, "src"));
        let r = run_to_end(&p);
        assert!(r.error.is_none(), "{format}: {:?}", r.error);
        let (input, output) = (input.take(), output.take());
        assert_eq!(input.len(), 4, "{format}");
        // Untouched, not black: the ball pattern moves, so each frame is its own input.
        assert_eq!(
            input, output,
            "{format}: NaN output must leave the frames as they were"
        );
        let stats = d.property::<gst::Structure>("stats");
        assert_eq!(
            stats.get::<u64>("frames-invalid-output").unwrap(),
            4,
            "{format}"
        );
        let nan_warnings = r.warnings.iter().filter(|w| w.contains("NaN")).count();
        assert_eq!(
            nan_warnings, 1,
            "{format}: one warning, not one per frame: {:?}",
            r.warnings
        );
    }
}
