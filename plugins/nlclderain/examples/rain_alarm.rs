//! Reads the rain meter from Rust: runs a video through `nlclderain` (registered in-process)
//! and prints a line whenever the `nlcl-rain` messages say rain starts or stops, the way CCTV
//! software would raise and clear a rain alarm.
//!
//! ```sh
//! cargo run --release -p gst-plugin-nlcl --example rain_alarm -- camera.mp4 [THRESHOLD] [EVERY]
//! ```
//! THRESHOLD: rain intensity in levels (mean |input - output|, default 1.0); EVERY: frames per
//! message (default 25). The element's output is discarded here; in a real pipeline it goes on
//! to a display, an encoder or a relay.

use anyhow::{Context, Result, bail};
use gst::prelude::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        bail!("usage: rain_alarm VIDEO [THRESHOLD] [EVERY]");
    };
    let threshold: f64 = match args.get(1) {
        Some(t) => t.parse().with_context(|| format!("threshold {t:?}"))?,
        None => 1.0,
    };
    let every: u32 = match args.get(2) {
        Some(n) => n
            .parse()
            .with_context(|| format!("message interval {n:?}"))?,
        None => 25,
    };
    gst::init()?;
    gstnlcl::plugin_register_static()?;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{input}\" ! decodebin ! videoconvert \
         ! nlclderain rain-threshold={threshold} message-interval={every} ! fakesink"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    let mut raining: Option<bool> = None;
    let mut messages = 0u64;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::NONE) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "nlcl-rain") else {
                    continue;
                };
                messages += 1;
                let now: bool = s.get("raining")?;
                let intensity: f64 = s.get("intensity")?;
                let at = pipeline
                    .query_position::<gst::ClockTime>()
                    .map_or("?".to_string(), |t| format!("{:.1} s", t.seconds_f64()));
                if raining != Some(now) {
                    if now {
                        println!("{at}: RAIN ALARM (intensity {intensity:.2} levels)");
                    } else {
                        println!("{at}: dry (intensity {intensity:.2} levels)");
                    }
                    raining = Some(now);
                }
            }
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(anyhow::anyhow!("{} ({:?})", e.error(), e.debug()));
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result?;
    println!("{messages} rain reports");
    Ok(())
}
