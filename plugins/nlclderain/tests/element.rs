//! `nlclderain` in real pipelines and in a `gst_check::Harness`, with numeric checks against the
//! engine's independent plain-Rust reference forward pass.

mod common;

use common::*;
use gst::prelude::*;
use nlcl::reference::{Planes, generator_forward};
use nlcl::spec::BACK_PREFIX;

/// Pushes `len` pseudo-random bytes (from `seed`) as one frame stamped `pts`.
fn push_frame(h: &mut gst_check::Harness, len: usize, seed: u32, pts: gst::ClockTime) {
    let mut b = gst::Buffer::from_slice(bytes(len, seed));
    b.get_mut().unwrap().set_pts(pts);
    h.push(b).unwrap();
}

/// A harness with synchronous processing (one frame in flight): each push yields its output.
fn harness_for(model: &std::path::Path, caps: &str) -> gst_check::Harness {
    harness_with(model, caps, 1)
}

fn harness_with(model: &std::path::Path, caps: &str, max_in_flight: u32) -> gst_check::Harness {
    harness_props(model, caps, &[("max-in-flight", max_in_flight)])
}

/// A playing harness around an element with `model-file` and the given uint properties.
fn harness_props(model: &std::path::Path, caps: &str, props: &[(&str, u32)]) -> gst_check::Harness {
    let mut b =
        gst::ElementFactory::make("nlclderain").property("model-file", model.to_str().unwrap());
    for &(k, v) in props {
        b = b.property(k, v);
    }
    let element = b.build().unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str(caps);
    h.play();
    h
}

#[test]
fn every_property_is_registered_with_its_default() {
    init();
    let e = gst::ElementFactory::make("nlclderain").build().unwrap();
    assert_eq!(e.property::<String>("model-file"), "");
    assert_eq!(e.property::<i32>("device-id"), 0);
    assert_eq!(e.property::<u32>("threads"), 0);
    assert_eq!(e.property::<u32>("sessions"), 0, "automatic");
    assert_eq!(e.property::<u32>("batch-size"), 1);
    assert_eq!(e.property::<u32>("max-in-flight"), 2);
    assert_eq!(e.property::<String>("model-cache-dir"), "");
    assert!(!e.property::<bool>("fp16"));
    assert!(!e.property::<bool>("bypass"));
    assert!(e.property::<bool>("qos"), "qos on by default");
    assert!(e.property::<bool>("fallback-to-cpu"));
    assert_eq!(
        e.property::<gstnlcl::ExecutionProvider>("execution-provider"),
        gstnlcl::ExecutionProvider::Cpu
    );
    e.set_property_from_str("execution-provider", "cuda");
    assert_eq!(
        e.property::<gstnlcl::ExecutionProvider>("execution-provider"),
        gstnlcl::ExecutionProvider::Cuda
    );
    let stats = e.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 0);
    let factory = gst::ElementFactory::find("nlclderain").unwrap();
    assert_eq!(factory.metadata("klass"), Some("Filter/Effect/Video"));
}

/// RGB frames through the element equal the reference network applied to the same pixels,
/// converted with the model contract's formula (v = p / 127.5 - 1, p = round((v + 1) * 127.5)).
#[test]
fn rgb_output_matches_reference_forward() {
    init();
    let dir = temp_dir();
    for (spec, w, h) in [
        (SMALL, 18usize, 12usize),
        (SMALL_FULL_RES, 13, 7),
        (SMALL, 7, 5),
    ] {
        let (model, weights) = write_random_model(dir.path(), "m.onnx", spec, 3);
        let mut harness = harness_for(
            &model,
            &format!("video/x-raw,format=RGB,width={w},height={h},framerate=30/1"),
        );
        // GStreamer rounds RGB rows up to 4 bytes.
        let stride = (w * 3).div_ceil(4) * 4;
        let data = bytes(stride * h, 9);
        let mut buf = gst::Buffer::from_slice(data.clone());
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40));
        harness.push(buf).unwrap();
        let out = harness.pull().unwrap();
        assert_eq!(out.pts(), Some(gst::ClockTime::from_mseconds(40)));
        let map = out.map_readable().unwrap();

        // Reference: pad with edge replication to the model's multiple, run, crop.
        let m = spec.size_multiple();
        let (ph, pw) = (h.div_ceil(m) * m, w.div_ceil(m) * m);
        let mut planes = Planes::zeros(3, ph, pw);
        for c in 0..3 {
            for y in 0..ph {
                for x in 0..pw {
                    let p = data[y.min(h - 1) * stride + x.min(w - 1) * 3 + c];
                    planes.data[(c * ph + y) * pw + x] = p as f32 / 127.5 - 1.0;
                }
            }
        }
        let want =
            generator_forward(&spec, &weights, BACK_PREFIX, spec.global_residual, &planes).unwrap();
        let mut worst = 0i32;
        let mut changed = 0;
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let v = want.data[(c * ph + y) * pw + x];
                    let expect = ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as i32;
                    let got = map[y * stride + x * 3 + c] as i32;
                    worst = worst.max((expect - got).abs());
                    changed += (got != data[y * stride + x * 3 + c] as i32) as usize;
                }
            }
        }
        assert!(
            worst <= 1,
            "{spec} {w}x{h}: off by {worst} from the reference"
        );
        assert!(changed > w * h, "{spec}: the network must change the frame");
    }
}

/// With an identity model every format comes back unchanged (RGB family exactly, YUV within
/// the colour conversion's rounding), at odd and tiny sizes too.
#[test]
fn all_formats_and_odd_sizes_round_trip_through_identity_model() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    for format in [
        "RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "I420", "NV12",
    ] {
        for (w, h) in [(1, 1), (3, 5), (33, 17), (64, 48)] {
            let caps = format!("video/x-raw,format={format},width={w},height={h},framerate=25/1");
            let info =
                gst_video::VideoInfo::from_caps(&caps.parse::<gst::Caps>().unwrap()).unwrap();
            let mut harness = harness_for(&model, &caps);
            let mut data = bytes(info.size(), 77);
            let yuv = matches!(format, "I420" | "NV12");
            if yuv {
                // Smooth, in-gamut content: a ramp in Y, constant chroma near grey.
                let y_size = info.offset()[1];
                for (i, v) in data[..y_size].iter_mut().enumerate() {
                    *v = 40 + (i % 150) as u8;
                }
                for v in &mut data[y_size..] {
                    *v = 120;
                }
            }
            harness.push(gst::Buffer::from_slice(data.clone())).unwrap();
            let out = harness.pull().unwrap();
            let map = out.map_readable().unwrap();
            let in_buf = gst::Buffer::from_slice(data.clone());
            let frame_in =
                gst_video::VideoFrameRef::from_buffer_ref_readable(in_buf.as_ref(), &info).unwrap();
            let frame_out =
                gst_video::VideoFrameRef::from_buffer_ref_readable(out.as_ref(), &info).unwrap();
            for plane in 0..info.n_planes() {
                let (a, b) = (
                    frame_in.plane_data(plane).unwrap(),
                    frame_out.plane_data(plane).unwrap(),
                );
                let stride = info.stride()[plane as usize] as usize;
                let comp_w = info.comp_width(plane as u8) as usize;
                let comp_h = info.comp_height(plane as u8) as usize;
                let row_bytes = if yuv {
                    if format == "NV12" && plane == 1 {
                        comp_w * 2
                    } else {
                        comp_w
                    }
                } else {
                    w * info.format_info().pixel_stride()[0] as usize
                };
                // The x byte of RGBx-style formats is padding with no defined value.
                let padding_byte = match format {
                    "RGBx" | "BGRx" => Some(3),
                    "xRGB" | "xBGR" => Some(0),
                    _ => None,
                };
                for y in 0..comp_h {
                    for x in 0..row_bytes {
                        if padding_byte == Some(x % 4) {
                            continue;
                        }
                        let (va, vb) = (a[y * stride + x] as i32, b[y * stride + x] as i32);
                        let tol = if yuv { 2 } else { 0 };
                        assert!(
                            (va - vb).abs() <= tol,
                            "{format} {w}x{h} plane {plane} at ({x},{y}): {va} -> {vb}"
                        );
                    }
                }
            }
            drop(map);
        }
    }
}

/// The pipeline: NV12 from videotestsrc, every frame comes out once with its timestamps.
#[test]
fn nv12_pipeline_processes_every_frame_once_in_order() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 4);
    let p = pipeline(&format!(
        "videotestsrc num-buffers=24 pattern=ball ! video/x-raw,format=NV12,width=320,height=240,framerate=30/1 \
         ! identity name=before ! nlclderain name=derain model-file={} ! appsink name=sink sync=false",
        model.display()
    ));
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let pts_out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let pts_clone = pts_out.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                pts_clone.lock().unwrap().push((buf.pts(), buf.duration()));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{:?}", r.error);
    let pts = pts_out.lock().unwrap().clone();
    assert_eq!(pts.len(), 24);
    let frame = gst::ClockTime::SECOND.mul_div_floor(1, 30).unwrap();
    for (i, (pts, dur)) in pts.iter().enumerate() {
        let expect = gst::ClockTime::SECOND.mul_div_floor(i as u64, 30).unwrap();
        assert_eq!(*pts, Some(expect), "frame {i}");
        assert!(dur.unwrap() >= frame);
    }
    let stats = p
        .by_name("derain")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 24);
    assert!(stats.get::<f64>("inference-p50-ms").unwrap() > 0.0);
    assert_eq!(stats.get::<&str>("provider").unwrap(), "cpu");
}

/// `bypass` switched on while playing passes frames untouched and counts them.
#[test]
fn bypass_while_playing_passes_frames_untouched() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 5);
    let mut harness = harness_for(
        &model,
        "video/x-raw,format=RGBx,width=16,height=8,framerate=30/1",
    );
    let data = bytes(16 * 8 * 4, 3);
    harness.push(gst::Buffer::from_slice(data.clone())).unwrap();
    let processed = harness.pull().unwrap();
    assert_ne!(
        processed.map_readable().unwrap().as_slice(),
        data.as_slice()
    );
    let element = harness.element().unwrap();
    element.set_property("bypass", true);
    harness.push(gst::Buffer::from_slice(data.clone())).unwrap();
    let passed = harness.pull().unwrap();
    assert_eq!(passed.map_readable().unwrap().as_slice(), data.as_slice());
    let stats = element.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 1);
    assert_eq!(stats.get::<u64>("frames-bypassed").unwrap(), 1);
}

/// A caps change in the middle of a stream renegotiates and keeps producing correct frames.
#[test]
fn mid_stream_resolution_change_keeps_working() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    let mut harness = harness_for(
        &model,
        "video/x-raw,format=RGBx,width=32,height=24,framerate=30/1",
    );
    let a = bytes(32 * 24 * 4, 1);
    harness.push(gst::Buffer::from_slice(a.clone())).unwrap();
    assert_eq!(harness.pull().unwrap().size(), a.len());
    harness.set_src_caps_str("video/x-raw,format=RGBx,width=50,height=31,framerate=30/1");
    let b: Vec<u8> = bytes(50 * 31 * 4, 2)
        .chunks(4)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    harness.push(gst::Buffer::from_slice(b.clone())).unwrap();
    let out = harness.pull().unwrap();
    let map = out.map_readable().unwrap();
    // Identity model: colour bytes unchanged at the new size.
    for (i, (x, y)) in b.iter().zip(map.iter()).enumerate() {
        if i % 4 != 3 {
            assert_eq!(x, y, "byte {i}");
        }
    }
}

/// With several frames in flight, output waits for later input or a drain, keeps order and
/// timestamps, and EOS pushes every frame still inside before the EOS itself.
#[test]
fn frames_in_flight_come_out_in_order_and_eos_drains_them() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 6);
    let mut h = harness_with(
        &model,
        "video/x-raw,format=RGB,width=16,height=8,framerate=30/1",
        3,
    );
    for i in 0..5u64 {
        push_frame(
            &mut h,
            16 * 8 * 3,
            i as u32 + 1,
            gst::ClockTime::from_mseconds(i * 33),
        );
    }
    // At most three frames are held back; two have been released by the later pushes.
    assert!(h.buffers_in_queue() >= 2, "{} out", h.buffers_in_queue());
    assert!(h.push_event(gst::event::Eos::new()));
    let mut pts = Vec::new();
    while let Some(b) = h.try_pull() {
        pts.push(b.pts().unwrap().mseconds());
    }
    assert_eq!(pts, vec![0, 33, 66, 99, 132]);
    // EOS arrives after the drained frames.
    let mut saw_eos = false;
    while let Some(ev) = h.try_pull_event() {
        saw_eos |= ev.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos);
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 5);
}

/// A flush throws away the frames in flight: nothing stale comes out afterwards, and the first
/// frame after it gets its own result, not one of a job submitted before the flush.
#[test]
fn flush_discards_frames_in_flight() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 6);
    let caps = "video/x-raw,format=RGB,width=16,height=8,framerate=30/1";
    let len = 16 * 8 * 3;
    // Batches of two, one session, at most four frames inside: frame 0 cannot leave before
    // frame 1 has arrived (its batch is not run before), and must leave by frame 3 (the element
    // is full then and waits for it). A blocking probe holds it at the element's output, so
    // the streaming thread stops there with at least frame 1 still inside the element (its
    // result collected, or a later batch submitted and not yet collected, depending on how
    // fast inference is; both must be discarded).
    let mut h = harness_props(
        &model,
        caps,
        &[("batch-size", 2), ("max-in-flight", 4), ("sessions", 1)],
    );
    let element = h.element().unwrap();
    let upstream = h.srcpad().unwrap();
    let out_pad = element.static_pad("src").unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let probe = out_pad
        .add_probe(
            gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER,
            move |_, info| {
                let pts = info.buffer().and_then(|b| b.pts());
                let _ = held_tx.send(pts);
                gst::PadProbeReturn::Ok
            },
        )
        .unwrap();
    let pusher = std::thread::spawn(move || {
        for i in 0..4u32 {
            // Refused (flushing) from the held frame on.
            let _ = h.push({
                let mut b = gst::Buffer::from_slice(bytes(len, 20 + i));
                b.get_mut()
                    .unwrap()
                    .set_pts(gst::ClockTime::from_mseconds(u64::from(i) * 33));
                b
            });
        }
        h
    });
    let held = held_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("frame 0 never left the element");
    assert_eq!(held, Some(gst::ClockTime::ZERO), "frames leave in order");
    let stats = element.property::<gst::Structure>("stats");
    assert_eq!(
        stats.get::<u64>("frames-processed").unwrap(),
        1,
        "only frame 0 has left; the others are in flight"
    );
    // Flush while the streaming thread is held: the probe gives up the held frame.
    assert!(upstream.push_event(gst::event::FlushStart::new()));
    let mut h = pusher.join().unwrap();
    out_pad.remove_probe(probe);
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let fresh = bytes(len, 99);
    let mut b = gst::Buffer::from_slice(fresh.clone());
    b.get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_seconds(5));
    h.push(b).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        out.push((
            b.pts().unwrap().seconds(),
            b.map_readable().unwrap().to_vec(),
        ));
    }
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        vec![5],
        "only the post-flush frame comes out"
    );
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 2);
    // The same frame through a fresh element: the result must be its own.
    let mut reference = harness_for(&model, caps);
    reference.push(gst::Buffer::from_slice(fresh)).unwrap();
    let want = reference.pull().unwrap();
    assert!(
        out[0].1 == want.map_readable().unwrap().as_slice(),
        "the post-flush frame got another frame's result"
    );
}

/// Pushes `n` distinct RGB 16x8 frames through an element with the given properties, then EOS;
/// returns (pts in ms, bytes) of every frame that came out, and the element's stats.
fn run_frames(
    model: &std::path::Path,
    n: u64,
    props: &[(&str, u32)],
) -> (Vec<(u64, Vec<u8>)>, gst::Structure) {
    let mut h = harness_props(
        model,
        "video/x-raw,format=RGB,width=16,height=8,framerate=30/1",
        props,
    );
    for i in 0..n {
        push_frame(
            &mut h,
            16 * 8 * 3,
            i as u32 + 100,
            gst::ClockTime::from_mseconds(i * 33),
        );
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        let map = b.map_readable().unwrap();
        out.push((b.pts().unwrap().mseconds(), map.as_slice().to_vec()));
    }
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    (out, stats)
}

/// Batches (a partly filled one at EOS included) and parallel sessions give the same frames,
/// in the same order, as one frame at a time.
#[test]
fn batches_and_parallel_sessions_match_single_frames_in_order() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 8);
    let n = 11;
    let (want, _) = run_frames(&model, n, &[("max-in-flight", 1), ("sessions", 1)]);
    let pts: Vec<u64> = (0..n).map(|i| i * 33).collect();
    assert_eq!(want.iter().map(|f| f.0).collect::<Vec<_>>(), pts);
    for props in [
        &[("sessions", 3), ("max-in-flight", 3)][..],
        &[("batch-size", 4), ("max-in-flight", 8), ("sessions", 1)][..],
        &[("batch-size", 3), ("sessions", 2)][..],
        &[("batch-size", 16)][..],
    ] {
        let (got, stats) = run_frames(&model, n, props);
        assert_eq!(
            got.iter().map(|f| f.0).collect::<Vec<_>>(),
            pts,
            "{props:?}: order or count"
        );
        for ((_, a), (t, b)) in want.iter().zip(&got) {
            // Batched convolutions may sum in another order: at most one level apart.
            let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
            assert!(worst <= 1, "{props:?}: frame at {t} ms differs by {worst}");
        }
        assert_eq!(
            stats.get::<u64>("frames-processed").unwrap(),
            n,
            "{props:?}"
        );
    }
}

/// Frames passed through (bypass) behind a partly filled batch do not hold it back: the batch is
/// handed to the worker when the first bypassed frame arrives (counted in `batches-submitted`,
/// so no timing is involved), and everything leaves in order.
#[test]
fn bypass_behind_a_partly_filled_batch_does_not_stall_it() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 6);
    let mut h = harness_props(
        &model,
        "video/x-raw,format=RGB,width=16,height=8,framerate=30/1",
        &[("batch-size", 4), ("max-in-flight", 8), ("sessions", 1)],
    );
    let push = |h: &mut gst_check::Harness, i: u64| {
        push_frame(h, 16 * 8 * 3, 3, gst::ClockTime::from_mseconds(i * 33));
    };
    let submitted = |h: &gst_check::Harness| {
        h.element()
            .unwrap()
            .property::<gst::Structure>("stats")
            .get::<u64>("batches-submitted")
            .unwrap()
    };
    push(&mut h, 0);
    push(&mut h, 1);
    assert_eq!(
        h.buffers_in_queue(),
        0,
        "half a batch waits for more frames"
    );
    assert_eq!(submitted(&h), 0, "half a batch is not submitted on its own");
    h.element().unwrap().set_property("bypass", true);
    push(&mut h, 2);
    assert_eq!(
        submitted(&h),
        1,
        "the partly filled batch must go to the worker when a bypassed frame arrives"
    );
    for i in 3..6 {
        push(&mut h, i);
    }
    // No second batch: bypassed frames are never batched.
    assert_eq!(submitted(&h), 1);
    assert!(h.push_event(gst::event::Eos::new()));
    let mut pts = Vec::new();
    while let Some(b) = h.try_pull() {
        pts.push(b.pts().unwrap().mseconds() / 33);
    }
    assert_eq!(pts, (0..6).collect::<Vec<_>>());
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 2);
    assert_eq!(stats.get::<u64>("frames-bypassed").unwrap(), 4);
}

/// A flush in the middle of a batch drops the partly filled batch too.
#[test]
fn flush_discards_a_partly_filled_batch() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 6);
    let mut h = harness_props(
        &model,
        "video/x-raw,format=RGB,width=16,height=8,framerate=30/1",
        &[("batch-size", 8), ("max-in-flight", 16)],
    );
    // Six frames filling a batch of eight: none is submitted, so none can leave before the
    // flush, whatever the timing (a submitted batch could finish and be released early).
    for i in 0..6u64 {
        push_frame(&mut h, 16 * 8 * 3, 9, gst::ClockTime::from_mseconds(i * 33));
    }
    assert_eq!(h.buffers_in_queue(), 0, "all six still inside");
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    for s in [5u64, 6] {
        push_frame(&mut h, 16 * 8 * 3, 9, gst::ClockTime::from_seconds(s));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut pts = Vec::new();
    while let Some(b) = h.try_pull() {
        pts.push(b.pts().unwrap().seconds());
    }
    assert_eq!(pts, vec![5, 6], "only the post-flush frames come out");
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 2);
}

/// The LATENCY query includes the frames the element holds back.
#[test]
fn latency_query_counts_frames_in_flight() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 6);
    let run = |in_flight: u32| {
        let p = pipeline(&format!(
            "videotestsrc is-live=true ! video/x-raw,format=RGB,width=32,height=24,framerate=25/1 \
             ! nlclderain name=d model-file={} max-in-flight={in_flight} ! fakesink name=s",
            model.display()
        ));
        p.set_state(gst::State::Playing).unwrap();
        let _ = p.state(gst::ClockTime::from_seconds(10));
        let mut q = gst::query::Latency::new();
        assert!(
            p.by_name("s")
                .unwrap()
                .static_pad("sink")
                .unwrap()
                .peer_query(&mut q)
        );
        p.set_state(gst::State::Null).unwrap();
        q.result().1
    };
    let one = run(1);
    let three = run(3);
    // Two extra frames of 40 ms each.
    assert!(
        three >= one + gst::ClockTime::from_mseconds(79),
        "{one} vs {three}"
    );
}

/// Frames late downstream, in a live pipeline: the first frame is held at the element's input
/// (a blocking probe) for 50 frame intervals of a 100 fps live source, so the source's frames
/// after it are late whatever the machine's speed. With `late-frames=drop` late frames are
/// dropped, with `pass-through` they come out untouched; either way every frame is accounted
/// for.
#[test]
fn late_frames_policy_drops_or_passes_and_counts() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 2);
    for policy in ["drop", "pass-through"] {
        // Synchronous processing: the sink's QoS report on frame 0 reaches the element before
        // frame 1 does.
        let p = pipeline(&format!(
            "videotestsrc is-live=true num-buffers=40 ! video/x-raw,format=RGB,width=32,height=24,framerate=100/1 \
             ! nlclderain name=d model-file={} late-frames={policy} max-in-flight=1 sessions=1 \
             ! appsink name=s sync=true qos=true",
            model.display()
        ));
        let sink = p
            .by_name("s")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = count.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let _ = s.pull_sample();
                    c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let input = p.by_name("d").unwrap().static_pad("sink").unwrap();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let probe = input
            .add_probe(
                gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER,
                move |_, _| {
                    let _ = held_tx.send(());
                    gst::PadProbeReturn::Ok
                },
            )
            .unwrap();
        let release = std::thread::spawn(move || {
            held_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("no frame reached the element");
            std::thread::sleep(std::time::Duration::from_millis(500));
            input.remove_probe(probe);
        });
        let r = run_to_end(&p);
        release.join().unwrap();
        assert!(r.error.is_none(), "{policy}: {:?}", r.error);
        let st = p.by_name("d").unwrap().property::<gst::Structure>("stats");
        let processed = st.get::<u64>("frames-processed").unwrap();
        let dropped = st.get::<u64>("frames-late-dropped").unwrap();
        let passed = st.get::<u64>("frames-late-passed").unwrap();
        let out = count.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(processed + dropped + passed, 40, "{policy}: {st}");
        assert!(processed >= 1, "{policy}: frame 0 is never late: {st}");
        match policy {
            "drop" => {
                assert!(dropped > 0, "{policy}: nothing was late? {st}");
                assert_eq!(passed, 0);
            }
            _ => {
                assert!(passed > 0, "{policy}: nothing was late? {st}");
                assert_eq!(dropped, 0);
            }
        }
        // The sink may itself drop frames that arrive too late to render; the element pushed
        // processed + passed frames.
        assert!(out <= processed + passed, "{policy}: {out} out");
    }
}

/// The late-frames policy against an exact lateness report: a QoS event saying that the frame
/// at 50 ms rendered 10 ms late makes every frame ending by 50 + 2 x 10 = 70 ms late (as
/// GstBaseTransform counts), so of frames every 10 ms those at 50 and 60 ms are late, 70 ms
/// on are not. No clock is involved.
#[test]
fn late_frames_policy_follows_the_reported_lateness_exactly() {
    init();
    let dir = temp_dir();
    let (model, _) = write_random_model(dir.path(), "m.onnx", SMALL, 2);
    let len = 16 * 8 * 3;
    for policy in ["drop", "pass-through", "process"] {
        let mut h = harness_for(
            &model,
            "video/x-raw,format=RGB,width=16,height=8,framerate=100/1",
        );
        let element = h.element().unwrap();
        element.set_property_from_str("late-frames", policy);
        let mut inputs = Vec::new();
        for i in 0..10u64 {
            if i == 5 {
                assert!(h.push_upstream_event(gst::event::Qos::new(
                    gst::QOSType::Underflow,
                    1.0,
                    10_000_000,
                    gst::ClockTime::from_mseconds(50),
                )));
            }
            let data = bytes(len, 40 + i as u32);
            let mut b = gst::Buffer::from_slice(data.clone());
            let bm = b.get_mut().unwrap();
            bm.set_pts(gst::ClockTime::from_mseconds(i * 10));
            bm.set_duration(gst::ClockTime::from_mseconds(10));
            h.push(b).unwrap();
            inputs.push(data);
        }
        assert!(h.push_event(gst::event::Eos::new()));
        let mut out = Vec::new();
        while let Some(b) = h.try_pull() {
            let i = b.pts().unwrap().mseconds() / 10;
            out.push((
                i,
                b.map_readable().unwrap().as_slice() == inputs[i as usize],
            ));
        }
        let st = element.property::<gst::Structure>("stats");
        let count = |k: &str| st.get::<u64>(k).unwrap();
        let (late_dropped, late_passed, late_processed) = (
            count("frames-late-dropped"),
            count("frames-late-passed"),
            count("frames-late-processed"),
        );
        // (frame, left untouched) for every frame that came out.
        let want: Vec<(u64, bool)> = match policy {
            "drop" => [0, 1, 2, 3, 4, 7, 8, 9].map(|i| (i, false)).to_vec(),
            "pass-through" => (0..10).map(|i| (i, i == 5 || i == 6)).collect(),
            _ => (0..10).map(|i| (i, false)).collect(),
        };
        assert_eq!(out, want, "{policy}: {st}");
        let expect = match policy {
            "drop" => (2, 0, 0),
            "pass-through" => (0, 2, 0),
            _ => (0, 0, 2),
        };
        assert_eq!(
            (late_dropped, late_passed, late_processed),
            expect,
            "{policy}: {st}"
        );
        assert_eq!(
            count("frames-processed"),
            10 - late_dropped - late_passed,
            "{policy}: {st}"
        );
    }
}

/// With frames in flight, new caps first drain the frames of the old size.
#[test]
fn caps_change_with_frames_in_flight_drains_old_size_first() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    let mut h = harness_with(
        &model,
        "video/x-raw,format=RGB,width=8,height=6,framerate=30/1",
        4,
    );
    let small = bytes(8 * 6 * 3, 1);
    for _ in 0..2 {
        h.push(gst::Buffer::from_slice(small.clone())).unwrap();
    }
    h.set_src_caps_str("video/x-raw,format=RGB,width=20,height=10,framerate=30/1");
    let big = bytes(20 * 10 * 3, 2);
    h.push(gst::Buffer::from_slice(big.clone())).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    let sizes: Vec<usize> = std::iter::from_fn(|| h.try_pull())
        .map(|b| b.size())
        .collect();
    assert_eq!(sizes, vec![small.len(), small.len(), big.len()]);
}
