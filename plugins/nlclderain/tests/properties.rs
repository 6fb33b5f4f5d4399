//! Property behaviour while running: READY-only properties refuse changes in PAUSED/PLAYING
//! (with a warning, keeping what runs), and an unreasonable thread count is bounded.

mod common;

use common::*;
use gst::prelude::*;

/// Plays `pipeline` until it is PLAYING (errors fail the test).
fn play(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let (r, state, _) = pipeline.state(gst::ClockTime::from_seconds(30));
    assert!(r.is_ok() && state == gst::State::Playing, "{r:?} {state:?}");
}

fn warnings(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn ready_only_properties_refuse_changes_while_playing() {
    init();
    let p = pipeline(
        "videotestsrc is-live=true ! video/x-raw,format=RGB,width=32,height=32,framerate=30/1 \
         ! nlclderain name=d ! fakesink",
    );
    let d = p.by_name("d").unwrap();
    play(&p);
    let bus = p.bus().unwrap();
    d.set_property("model-file", "/nonexistent/other.onnx");
    d.set_property("threads", 3u32);
    d.set_property("batch-size", 4u32);
    // Refused: the properties still report what runs.
    assert_eq!(d.property::<String>("model-file"), "");
    assert_eq!(d.property::<u32>("threads"), 0);
    assert_eq!(d.property::<u32>("batch-size"), 1);
    let w = warnings(&bus);
    for name in ["model-file", "threads", "batch-size"] {
        assert!(
            w.iter().any(|m| m.contains(name) && m.contains("READY")),
            "no warning naming {name}: {w:?}"
        );
    }
    // Properties changeable while playing still change.
    d.set_property("bypass", true);
    assert!(d.property::<bool>("bypass"));
    p.set_state(gst::State::Null).unwrap();
    // Stopped, the change is taken.
    d.set_property("threads", 3u32);
    assert_eq!(d.property::<u32>("threads"), 3);
}

#[test]
fn absurd_thread_counts_are_lowered_with_a_warning() {
    init();
    let p = pipeline(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=32,height=32 \
         ! nlclderain threads=1024 ! fakesink",
    );
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("threads 1024 lowered") && w.contains("property threads")),
        "{:?}",
        r.warnings
    );
}
