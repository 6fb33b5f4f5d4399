//! The engine's `untrained_model` example writes a model ONNX Runtime runs (cargo builds the
//! examples with the tests; they sit next to the test binary in target/PROFILE/examples).

use std::path::Path;

#[test]
fn untrained_model_example_writes_a_loadable_model() {
    let exe = std::env::current_exe().expect("test binary path");
    let example = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder")
        .join("examples/untrained_model");
    assert!(
        example.exists(),
        "{} is missing: `cargo test` without a target filter builds the examples",
        example.display()
    );
    let dir = std::env::temp_dir().join(format!("nlcl-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("untrained.onnx");
    let status = std::process::Command::new(&example)
        .arg("w4d1s2r")
        .arg(&model)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&model).unwrap();
    let opened = nlcl::runtime::Model::from_bytes(
        &bytes,
        "untrained",
        &nlcl::runtime::SessionOptions::default(),
    );
    match opened {
        Ok(m) => assert_eq!(m.info().size_multiple, 2),
        Err(nlcl::runtime::RuntimeError::LibraryNotFound { .. }) => {
            // Still a valid model file for the writer's reader.
            assert!(nlcl::onnx::read_metadata(&bytes).is_ok());
        }
        Err(e) => panic!("{e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
