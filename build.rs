use std::path::Path;

fn main() {
    // The engine embeds the project's default model when one has been trained and committed,
    // so the element and the command work with no model file.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.onnx");
    println!("cargo::rerun-if-changed={}", model.display());
    println!("cargo::rustc-check-cfg=cfg(nlcl_default_model)");
    if model.exists() {
        println!("cargo::rustc-cfg=nlcl_default_model");
    }
}
