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
/// Every model of the family runs by name where it is installed; where it is not, the error
/// names the model, the property and the places looked at.
#[test]
fn named_models_run_or_say_where_they_were_looked_for() {
    init();
    for name in ["lite", "standard", "full"] {
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

/// A model fixed to batches of three gets partly filled batches padded: every frame comes out.
#[test]
fn fixed_batch_model_gets_partial_batches_padded() {
    init();
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [Some(3), Some(3), None, None]);
    let p = pipeline(&format!(
        "videotestsrc num-buffers=7 ! video/x-raw,format=RGB,width=16,height=8 ! nlclderain name=d batch-size=3 max-in-flight=6 model-file={} ! fakesink",
        path.display()
    ));
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{:?}", r.error);
    let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 7);
}

/// Inference that fails (a model fixed to 8x16 frames fed 32x32) is an error on the bus that
/// names the cause, not a panic or a hang.
#[test]
fn failing_inference_is_reported() {
    let dir = temp_dir();
    let path = identity_with_dims(dir.path(), [None, Some(3), Some(8), Some(16)]);
    for extra in ["", "batch-size=2 max-in-flight=4", "sessions=2"] {
        let e = error_of(&format!(
            "videotestsrc num-buffers=5 ! video/x-raw,format=RGB,width=32,height=32 ! nlclderain {extra} model-file={} ! fakesink",
            path.display()
        ));
        assert!(e.contains("Inference failed"), "{extra}: {e}");
    }
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

#[test]
fn one_by_one_frames_work() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    let r = run_to_end(&pipeline(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=I420,width=1,height=1 ! nlclderain model-file={} ! fakesink",
        model.display()
    )));
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn unavailable_gpu_provider_falls_back_with_a_warning_or_fails_when_strict() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 1);
    // The CPU-only ONNX Runtime has neither GPU provider; where a GPU build is installed this
    // test still passes, since it only checks that the run ends cleanly either way.
    for provider in ["cuda", "tensorrt"] {
        let p = pipeline(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=32,height=32 \
             ! nlclderain name=d model-file={} execution-provider={provider} ! fakesink",
            model.display()
        ));
        let r = run_to_end(&p);
        assert!(r.error.is_none(), "{provider}: {:?}", r.error);
        let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
        let strict = run_to_end(&pipeline(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=32,height=32 \
             ! nlclderain model-file={} execution-provider={provider} fallback-to-cpu=false \
             ! fakesink",
            model.display()
        )));
        if r.warnings.iter().any(|w| w.contains(provider)) {
            assert_eq!(stats.get::<&str>("provider").unwrap(), "cpu");
            assert_eq!(stats.get::<&str>("conversion").unwrap(), "cpu");
            let e = strict
                .error
                .expect("strict mode must fail where fallback warned");
            assert!(
                e.contains(provider) && e.contains("execution-provider"),
                "{e}"
            );
        } else {
            println!("note: the {provider} provider loaded here, fallback not exercised");
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
