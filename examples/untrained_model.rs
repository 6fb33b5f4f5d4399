//! Writes an *untrained* NLCL-architecture model with deterministic random weights, for trying
//! pipelines and measuring speed before a trained model is at hand. It does not remove rain.
//!
//! ```sh
//! cargo run --example untrained_model -- w16d4s2r /tmp/untrained.onnx
//! gst-launch-1.0 videotestsrc num-buffers=60 ! video/x-raw,format=NV12,width=320,height=240 \
//!   ! nlclderain model-file=/tmp/untrained.onnx ! fakesink
//! ```

use anyhow::{Context, Result};
use nlcl::ModelSpec;
use nlcl::onnx::{ExportConfig, Weights, meta, write_model_file};
use nlcl::spec::BACK_PREFIX;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let tag = args.next().unwrap_or_else(|| ModelSpec::OFFICIAL.tag());
    let out = args.next().unwrap_or_else(|| "untrained.onnx".into());
    let spec = ModelSpec::from_tag(&tag)?;
    let weights = Weights::random_generator(&spec, BACK_PREFIX, 42, 0.5);
    let config = ExportConfig {
        spec,
        include_rain: false,
        metadata: vec![
            (meta::TASK.into(), "untrained".into()),
            (
                meta::DATA.into(),
                "none: random weights for pipeline tests".into(),
            ),
        ],
        dead_zone: 0.0,
    };
    write_model_file(&config, &weights, &out).with_context(|| format!("writing {out}"))?;
    println!("wrote {out}: {spec}, {} parameters", spec.parameter_count());
    Ok(())
}
