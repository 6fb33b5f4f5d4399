//! `nlclderain` on the CUDA frame path against the same element converting on the CPU. Without
//! a build with the `cuda` feature, a GPU, NVRTC or onnxruntime-gpu every test records why it
//! skips (see `common::skip`: scripts/test.sh lists the skipped checks at the end).

mod common;

use common::*;
use gst::prelude::*;

/// Deterministic pseudo-random bytes within limited-range YUV.
fn yuv_bytes(n: usize, seed: u32) -> Vec<u8> {
    bytes(n, seed).into_iter().map(|b| 16 + b % 220).collect()
}

/// Why the GPU frame path cannot run here, if it cannot: asks the engine for a CUDA worker on
/// the built-in model, as the element does.
fn gpu_unavailable() -> Option<String> {
    let options = nlcl::runtime::SessionOptions {
        provider: nlcl::runtime::Provider::Cuda,
        ..nlcl::runtime::SessionOptions::default()
    };
    let Some(model) = nlcl::DEFAULT_MODEL else {
        return Some("this build has no built-in model".into());
    };
    match nlcl::worker::InferenceWorker::open(model, "built-in", &options, 1, "probe") {
        Ok((w, _)) if w.payload_kind() == nlcl::worker::PayloadKind::Frames => None,
        Ok((_, reason)) => Some(reason.unwrap_or_else(|| "no GPU frame path".into())),
        Err(e) => Some(e.to_string()),
    }
}

/// Pushes `sizes.len()` I420 frames (each of its own size) through an element with the given
/// properties, then EOS; returns the output frames and the element's stats.
fn run(props: &[(&str, &str)], sizes: &[(usize, usize)]) -> (Vec<Vec<u8>>, gst::Structure) {
    let mut b = gst::ElementFactory::make("nlclderain");
    for &(k, v) in props {
        b = b.property_from_str(k, v);
    }
    let element = b.build().unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    let mut out = Vec::new();
    let mut last = None;
    for (i, &(w, hgt)) in sizes.iter().enumerate() {
        if last != Some((w, hgt)) {
            h.set_src_caps_str(&format!(
                "video/x-raw,format=I420,width={w},height={hgt},framerate=30/1"
            ));
            last = Some((w, hgt));
        }
        // GStreamer's layout: rows padded to 4 bytes.
        let len = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w as u32, hgt as u32)
            .build()
            .unwrap()
            .size();
        let mut buf = gst::Buffer::from_slice(yuv_bytes(len, i as u32 + 7));
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(i as u64 * 33));
        h.push(buf).unwrap();
        while let Some(b) = h.try_pull() {
            out.push(b.map_readable().unwrap().as_slice().to_vec());
        }
    }
    assert!(h.push_event(gst::event::Eos::new()));
    while let Some(b) = h.try_pull() {
        out.push(b.map_readable().unwrap().as_slice().to_vec());
    }
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    (out, stats)
}

/// The GPU frame path gives the CPU path's frames (same model, same input) within the parity
/// tolerance stated in the README, with batches, two sessions, odd sizes and a mid-stream
/// resolution change, and every frame comes out once, in order.
#[test]
fn gpu_frame_path_matches_cpu_conversion() {
    init();
    let sizes: Vec<(usize, usize)> = [(96, 64); 4]
        .into_iter()
        .chain([(75, 41); 3])
        .chain([(96, 64); 2])
        .collect();
    let (want, cpu_stats) = run(&[("execution-provider", "cpu"), ("sessions", "1")], &sizes);
    assert_eq!(cpu_stats.get::<&str>("conversion").unwrap(), "cpu");
    assert_eq!(want.len(), sizes.len());
    if let Some(reason) = gpu_unavailable() {
        skip(
            "gpu_frame_path_matches_cpu_conversion",
            &format!("GPU half not run: {reason}"),
        );
        return;
    }
    for props in [
        &[("execution-provider", "cuda"), ("fallback-to-cpu", "false")][..],
        &[
            ("execution-provider", "cuda"),
            ("fallback-to-cpu", "false"),
            ("batch-size", "3"),
            ("sessions", "2"),
        ][..],
    ] {
        let (got, stats) = run(props, &sizes);
        assert_eq!(stats.get::<&str>("provider").unwrap(), "cuda", "{props:?}");
        assert_eq!(stats.get::<&str>("conversion").unwrap(), "gpu", "{props:?}");
        assert_eq!(got.len(), sizes.len(), "{props:?}: frame count");
        assert_eq!(
            stats.get::<u64>("frames-processed").unwrap(),
            sizes.len() as u64
        );
        for (i, (a, b)) in want.iter().zip(&got).enumerate() {
            assert_eq!(a.len(), b.len(), "{props:?}: frame {i} size");
            let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
            let mean = a
                .iter()
                .zip(b)
                .map(|(x, y)| f64::from(x.abs_diff(*y)))
                .sum::<f64>()
                / a.len() as f64;
            println!("{props:?} frame {i}: max {worst}, mean {mean:.4}");
            assert!(
                worst <= 2 && mean <= 0.05,
                "{props:?}: frame {i} differs from the CPU path: max {worst}, mean {mean}"
            );
        }
    }
}

/// In a real pipeline with `videoconvert` in front, as users run it.
#[test]
fn gpu_frame_path_runs_in_a_pipeline() {
    init();
    if let Some(reason) = gpu_unavailable() {
        skip("gpu_frame_path_runs_in_a_pipeline", &reason);
        return;
    }
    let p = pipeline(
        "videotestsrc num-buffers=30 ! video/x-raw,format=RGB,width=320,height=180 \
         ! videoconvert ! video/x-raw,format=NV12 \
         ! nlclderain name=d execution-provider=cuda fallback-to-cpu=false batch-size=2 \
         ! videoconvert ! fakesink",
    );
    let r = run_to_end(&p);
    assert!(r.error.is_none(), "{:?}", r.error);
    let stats = p.by_name("d").unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-processed").unwrap(), 30);
    assert_eq!(stats.get::<&str>("conversion").unwrap(), "gpu");
}
