//! `temporal-smoothing`: on a still scene the element's output flickers less than without it,
//! samples whose input moved (a streak arriving or leaving) come out exactly as without it,
//! and a flush, a frame left untouched or the rain view starts afresh; in RGB and in I420 with
//! padded rows, one frame per session run or two. The element runs a real model in ONNX
//! Runtime; the same frames go through it with the property off and on.

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

/// The element's output for every frame, with `extra` properties set; `bypass_at`: that frame
/// is pushed with `bypass` on.
fn run(model: &std::path::Path, extra: &[(&str, &str)]) -> Vec<Vec<u8>> {
    run_with_bypass(model, extra, None)
}

fn run_with_bypass(
    model: &std::path::Path,
    extra: &[(&str, &str)],
    bypass_at: Option<usize>,
) -> Vec<Vec<u8>> {
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
        element.set_property("bypass", bypass_at == Some(t));
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
fn a_frame_left_untouched_starts_afresh() {
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "random.onnx", SMALL, 3);
    let at = 6;
    let plain = run_with_bypass(&model, &[], Some(at));
    let smooth = run_with_bypass(&model, &[("temporal-smoothing", "0.9")], Some(at));
    assert_eq!(smooth[at], frame(at), "bypass leaves the frame untouched");
    assert_eq!(
        smooth[at + 1],
        plain[at + 1],
        "the frame after an untouched one is the model's"
    );
    assert_ne!(
        smooth[at + 2],
        plain[at + 2],
        "and smoothing resumes after it"
    );
}

/// I420 frames of `w` x `h` (rows padded to GStreamer's strides): luma as [`frame`] draws it in
/// grey, chroma neutral.
fn i420_frame(t: usize, info: &gst_video::VideoInfo) -> Vec<u8> {
    let (w, h) = (info.width() as usize, info.height() as usize);
    let grey = frame(t);
    let mut out = vec![128u8; info.size()];
    let (offset, stride) = (info.offset()[0], info.stride()[0] as usize);
    for y in 0..h {
        for x in 0..w {
            out[offset + y * stride + x] = grey[(y * W + x) * 3];
        }
    }
    out
}

#[test]
fn i420_with_padded_rows_in_batches_of_two() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "random.onnx", SMALL, 3);
    // 30 pixels: luma rows of 32 bytes, chroma rows of 16 for 15 samples.
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 30, 16)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    assert!(info.stride()[0] as usize > 30, "rows are padded");
    let run_i420 = |carry: &str| -> Vec<Vec<u8>> {
        let element = gst::ElementFactory::make("nlclderain")
            .property("model-file", model.to_str().unwrap())
            .property("batch-size", 2u32)
            .property("max-in-flight", 4u32)
            .property("sessions", 1u32)
            .property("threads", 1u32)
            .build()
            .unwrap();
        element.set_property_from_str("temporal-smoothing", carry);
        let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        h.set_src_caps(info.to_caps().unwrap());
        h.play();
        for t in 0..FRAMES {
            let mut buf = gst::Buffer::from_slice(i420_frame(t, &info));
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(t as u64 * 33));
            assert!(h.push(buf).is_ok(), "push of frame {t}");
        }
        assert!(h.push_event(gst::event::Eos::new()));
        let mut out = Vec::new();
        while let Some(b) = h.try_pull() {
            out.push(b.map_readable().unwrap().as_slice().to_vec());
        }
        assert_eq!(out.len(), FRAMES, "every frame leaves");
        out
    };
    let (plain, smooth) = (run_i420("0"), run_i420("0.9"));
    assert_eq!(plain[0], smooth[0]);
    let stride = info.stride()[0] as usize;
    let luma = |y: usize, x: usize| info.offset()[0] + y * stride + x;
    let (mut plain_flicker, mut smooth_flicker) = (0.0, 0.0);
    for t in 1..FRAMES {
        let (before, now) = (i420_frame(t - 1, &info), i420_frame(t, &info));
        for i in 0..now.len() {
            if before[i].abs_diff(now[i]) >= 40 {
                assert_eq!(
                    smooth[t][i], plain[t][i],
                    "frame {t}, byte {i}: the input moved"
                );
            }
        }
        let (mut p, mut s, mut n) = (0.0, 0.0, 0usize);
        for y in 0..16 {
            for x in 0..30usize {
                let d = |c: usize| x.abs_diff(c).min(W - x.abs_diff(c));
                if d((t * 2) % W) > 6 && d(((t - 1) * 2) % W) > 6 {
                    let i = luma(y, x);
                    p += f64::from(plain[t - 1][i].abs_diff(plain[t][i]));
                    s += f64::from(smooth[t - 1][i].abs_diff(smooth[t][i]));
                    n += 1;
                }
            }
        }
        plain_flicker += p / n.max(1) as f64;
        smooth_flicker += s / n.max(1) as f64;
    }
    assert!(plain_flicker > 0.0);
    assert!(
        smooth_flicker < 0.5 * plain_flicker,
        "smoothed {smooth_flicker:.3} against {plain_flicker:.3}"
    );
    // The padding at the end of each luma row leaves as it came.
    for t in 0..FRAMES {
        for y in 0..16 {
            let pad = luma(y, 30)..luma(y, 0) + stride;
            assert_eq!(smooth[t][pad.clone()], plain[t][pad], "frame {t}, row {y}");
        }
    }
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
