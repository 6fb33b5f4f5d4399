//! Derains a video file into an H.264 MP4 with the element registered in-process (no
//! GST_PLUGIN_PATH needed), printing the element's statistics at the end.
//!
//! ```sh
//! cargo run --release -p gst-plugin-nlcl --example derain_file -- rainy.mp4 clean.mp4 [model.onnx]
//! ```

use anyhow::{Context, Result, bail};
use gst::prelude::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match (args.first(), args.get(1)) {
        (Some(i), Some(o)) => (i, o),
        _ => bail!("usage: derain_file INPUT OUTPUT.mp4 [MODEL.onnx]"),
    };
    gst::init()?;
    gstnlcl::plugin_register_static()?;
    let model = args
        .get(2)
        .map(|m| format!("model-file=\"{m}\""))
        .unwrap_or_default();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{input}\" ! decodebin ! videoconvert ! nlclderain name=derain {model} \
         ! videoconvert ! x264enc ! mp4mux ! filesink location=\"{output}\""
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(anyhow::anyhow!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            _ => {}
        }
    }
    if let Some(derain) = pipeline.by_name("derain") {
        println!("{}", derain.property::<gst::Structure>("stats"));
    }
    pipeline.set_state(gst::State::Null)?;
    result
}
