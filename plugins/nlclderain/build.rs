use std::path::Path;

fn main() {
    gst_plugin_version_helper::info();
    // The element embeds the project's default model when one has been trained and committed.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.onnx");
    println!("cargo::rerun-if-changed={}", model.display());
    println!("cargo::rustc-check-cfg=cfg(nlcl_default_model)");
    if model.exists() {
        println!("cargo::rustc-cfg=nlcl_default_model");
    }
}
