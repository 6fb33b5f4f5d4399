//! `temporal-smoothing`: on a still scene the element's output flickers less than without it,
//! samples whose input moved (a streak arriving or leaving) come out exactly as without it,
//! and a flush or the rain view starts afresh. The element runs a real model in ONNX Runtime;
//! the same frames go through it with the property off and on.

mod common;

use common::*;
use gst::prelude::*;

const W: usize = 32;
const H: usize = 16;
const LEN: usize = W * H * 3;
const CAPS: &str = "video/x-raw,format=RGB,width=32,height=16,framerate=30/1";
const FRAMES: usize = 24;
/// Flushed before this frame.
const FLUSH_AT: usize = 16;

/// Frame `t`: a fixed scene, one level of noise on a tenth of its samples (a camera's), and a
/// bright vertical streak that moves two columns a frame.
fn frame(t: usize) -> Vec<u8> {
    let scene = bytes(LEN, 99);
    let noise = bytes(LEN, t as u32 + 1);
    let column = (t * 2) % W;
    (0..LEN)
        .map(|i| {
            let x = (i / 3) % W;
            if x == column {
                return 250;
            }
            let v = scene[i] / 2 + 64;
            match noise[i] {
                0..=12 => v + 1,
                13..=25 => v - 1,
                _ => v,
            }
        })
        .collect()
}

/// The element's output for every frame, with `extra` properties set.
fn run(model: &std::path::Path, extra: &[(&str, &str)]) -> Vec<Vec<u8>> {
    init();
    let element = gst::ElementFactory::make("nlclderain")
        .property("model-file", model.to_str().unwrap())
        .property("max-in-flight", 1u32)
        .property("sessions", 1u32)
        .property("threads", 1u32)
        .build()
        .unwrap();
    for (name, value) in extra {
        element.set_property_from_str(name, value);
    }
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str(CAPS);
    h.play();
    let mut out = Vec::new();
    for t in 0..FRAMES {
        if t == FLUSH_AT {
            assert!(h.push_event(gst::event::FlushStart::new()));
            assert!(h.push_event(gst::event::FlushStop::new(true)));
            h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()));
        }
        let mut buf = gst::Buffer::from_slice(frame(t));
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(t as u64 * 33));
        assert!(h.push(buf).is_ok(), "push of frame {t}");
        let b = h.pull().expect("one frame out per frame in");
        out.push(b.map_readable().unwrap().as_slice().to_vec());
    }
    out
}

/// Mean |a - b| over the samples where `keep` holds.
fn mean_change(a: &[u8], b: &[u8], keep: impl Fn(usize) -> bool) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for i in (0..a.len()).filter(|&i| keep(i)) {
        sum += f64::from(a[i].abs_diff(b[i]));
        n += 1;
    }
    sum / n.max(1) as f64
}

#[test]
fn a_still_scene_flickers_less_and_moving_streaks_are_derained_as_without_it() {
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "random.onnx", SMALL, 3);
    let plain = run(&model, &[]);
    let smooth = run(&model, &[("temporal-smoothing", "0.9")]);
    assert_eq!(plain[0], smooth[0], "the first frame is the model's");
    assert_eq!(
        plain[FLUSH_AT], smooth[FLUSH_AT],
        "after a flush the first frame is the model's"
    );
    let (mut plain_flicker, mut smooth_flicker) = (0.0, 0.0);
    for t in 1..FRAMES {
        if t == FLUSH_AT {
            continue;
        }
        let (before, now) = (frame(t - 1), frame(t));
        // Samples whose input moved by tens of levels (the streak came or went) are written
        // as the model made them.
        for i in 0..LEN {
            if before[i].abs_diff(now[i]) >= 40 {
                assert_eq!(
                    smooth[t][i], plain[t][i],
                    "frame {t}, sample {i}: the input moved, so the model's output stands"
                );
            }
        }
        // Far from the streak (the model's reach is a few pixels), the scene is still but for
        // the noise; there the output should change less from frame to frame.
        let far = |i: usize| {
            let x = (i / 3) % W;
            let d = |c: usize| x.abs_diff(c).min(W - x.abs_diff(c));
            d((t * 2) % W) > 6 && d(((t - 1) * 2) % W) > 6
        };
        plain_flicker += mean_change(&plain[t - 1], &plain[t], far);
        smooth_flicker += mean_change(&smooth[t - 1], &smooth[t], far);
    }
    assert!(
        plain_flicker > 0.0,
        "the model's output flickers with the noise"
    );
    assert!(
        smooth_flicker < 0.5 * plain_flicker,
        "smoothed {smooth_flicker:.3} against {plain_flicker:.3}"
    );
}

#[test]
fn the_rain_view_is_not_smoothed_and_the_properties_read_back() {
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "random.onnx", SMALL, 3);
    let rain = |extra: &[(&str, &str)]| {
        let mut props = vec![("output", "rain")];
        props.extend_from_slice(extra);
        run(&model, &props)
    };
    assert_eq!(
        rain(&[]),
        rain(&[("temporal-smoothing", "0.9")]),
        "the rain layer is a view, not a picture of the scene"
    );
    init();
    let e = gst::ElementFactory::make("nlclderain").build().unwrap();
    assert_eq!(
        e.property::<f64>("temporal-smoothing"),
        0.0,
        "off by default"
    );
    assert_eq!(e.property::<f64>("motion-threshold"), 2.0);
    e.set_property("temporal-smoothing", 0.5f64);
    e.set_property("motion-threshold", 4.0f64);
    assert_eq!(e.property::<f64>("temporal-smoothing"), 0.5);
    assert_eq!(e.property::<f64>("motion-threshold"), 4.0);
}
