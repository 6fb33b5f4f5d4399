#![cfg(feature = "gstreamer")]
//! `nlcl derain` on video files end to end, on clips the tests make with GStreamer's own
//! elements (small, so each test takes seconds), derained with the built-in model: frame count,
//! duration and audio kept, errors that name the file and leave nothing behind, the
//! side-by-side video, other containers and audio codecs, and Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;

mod common;
use common::{nlcl, output_of};

#[path = "../../tests/support/skip.rs"]
mod skip_log;
use skip_log::skip;

/// The first of `factories` installed here.
fn installed(factories: &[&'static str]) -> Option<&'static str> {
    gst::init().unwrap();
    factories
        .iter()
        .copied()
        .find(|f| gst::ElementFactory::find(f).is_some())
}

/// The elements every test needs to make and check clips; `None` (after logging the skip)
/// when one is missing.
fn aac_encoder(test: &str) -> Option<&'static str> {
    for f in ["x264enc", "mp4mux", "qtdemux", "avdec_h264", "aacparse"] {
        if installed(&[f]).is_none() {
            skip(test, &format!("GStreamer element {f} is not installed"));
            return None;
        }
    }
    let enc = installed(&["avenc_aac", "voaacenc", "fdkaacenc"]);
    if enc.is_none() {
        skip(
            test,
            "no AAC encoder (avenc_aac, voaacenc, fdkaacenc) is installed",
        );
    }
    enc
}

/// `frames` frames of 160x120 at 30 fps, H.264, with `audio` (a gst-launch fragment ending in
/// an encoder, or empty for none) muxed by `mux` into `path`.
fn make_clip(path: &Path, frames: u32, audio: &str, mux: &str) {
    make_sized_clip(path, frames, (160, 120), audio, mux);
}

/// As [`make_clip`], `width` x `height`.
fn make_sized_clip(path: &Path, frames: u32, (width, height): (u32, u32), audio: &str, mux: &str) {
    let mut desc = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width={width},\
         height={height},framerate=30/1 ! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! queue \
         ! {mux} name=m ! filesink location=\"{}\"",
        path.display()
    );
    if !audio.is_empty() {
        // 1470 samples at 44.1 kHz are one video frame.
        desc += &format!(
            " audiotestsrc num-buffers={frames} samplesperbuffer=1470 ! \
             audio/x-raw,rate=44100,channels=2 ! {audio} ! queue ! m."
        );
    }
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .status()
        .expect("gst-launch-1.0 (scripts/setup.sh installs it)");
    assert!(status.success(), "could not make the test clip: {desc}");
}

/// What a test reads back from an MP4.
#[derive(Debug, Default)]
struct Media {
    /// Decoded video frames.
    frames: u64,
    width: i32,
    height: i32,
    /// Caps name of the compressed video (video/x-h264).
    video_codec: String,
    /// The container's duration.
    duration: Duration,
    /// Stream time (timestamps as a player sees them, edit lists applied) of the first video
    /// frame, and of the end of the last.
    video_start: Option<Duration>,
    video_end: Option<Duration>,
    /// The decoded video's segment (maps timestamps to stream time).
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// Caps of the compressed audio, as the demuxer gives them (no decoding).
    audio: Option<String>,
    /// Sum of the audio buffers' durations.
    audio_span: Duration,
}

/// Demuxes `path` (MP4), decodes its video and reads its audio without decoding it.
fn probe(path: &Path) -> Result<Media, String> {
    use std::sync::{Arc, Mutex};
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let demux = gst::ElementFactory::make("qtdemux").build().unwrap();
    pipeline.add_many([&src, &demux]).unwrap();
    src.link(&demux).unwrap();
    let media = Arc::new(Mutex::new(Media::default()));
    let m = media.clone();
    demux.connect_pad_added(move |demux, pad| {
        let pipeline = demux.parent().unwrap().downcast::<gst::Pipeline>().unwrap();
        let caps = pad.current_caps().unwrap();
        let s = caps.structure(0).unwrap();
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        let sinkpad = sink.static_pad("sink").unwrap();
        let m = m.clone();
        if s.name().starts_with("video/") {
            m.lock().unwrap().video_codec = s.name().to_string();
            let queue = gst::ElementFactory::make("queue").build().unwrap();
            let decode = gst::ElementFactory::make("decodebin").build().unwrap();
            pipeline.add_many([&queue, &decode, &sink]).unwrap();
            queue.link(&decode).unwrap();
            let target = sinkpad.clone();
            decode.connect_pad_added(move |_, p| {
                p.link(&target).unwrap();
            });
            sinkpad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, info| {
                    let mut m = m.lock().unwrap();
                    if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                        m.frames += 1;
                        let segment = m.segment.clone();
                        let stream_time = |t: Option<gst::ClockTime>| {
                            let t = segment.as_ref()?.to_stream_time(t?)?;
                            Some(Duration::from_nanos(t.nseconds()))
                        };
                        if m.video_start.is_none() {
                            m.video_start = stream_time(b.pts());
                        }
                        m.video_end = stream_time(b.pts().zip(b.duration()).map(|(p, d)| p + d));
                    } else if let Some(e) = info.event() {
                        match e.view() {
                            gst::EventView::Caps(c) => {
                                let s = c.caps().structure(0).unwrap();
                                m.width = s.get("width").unwrap();
                                m.height = s.get("height").unwrap();
                            }
                            gst::EventView::Segment(seg) => {
                                m.segment = seg.segment().downcast_ref::<gst::ClockTime>().cloned();
                            }
                            _ => {}
                        }
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            for e in [&sink, &decode, &queue] {
                e.sync_state_with_parent().unwrap();
            }
            pad.link(&queue.static_pad("sink").unwrap()).unwrap();
        } else {
            if s.name().starts_with("audio/") {
                m.lock().unwrap().audio = Some(caps_summary(s));
            }
            // Queued: the sink waits for PLAYING, which waits for the video to decode.
            let queue = gst::ElementFactory::make("queue")
                .property("max-size-buffers", 0u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .build()
                .unwrap();
            pipeline.add_many([&queue, &sink]).unwrap();
            queue.link(&sink).unwrap();
            sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    m.lock().unwrap().audio_span += b
                        .duration()
                        .map_or(Duration::ZERO, |d| Duration::from_nanos(d.nseconds()));
                }
                gst::PadProbeReturn::Ok
            });
            sink.sync_state_with_parent().unwrap();
            queue.sync_state_with_parent().unwrap();
            pad.link(&queue.static_pad("sink").unwrap()).unwrap();
        }
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{}: {}", path.display(), e.error()));
                break;
            }
            _ => {}
        }
    }
    let duration = pipeline.query_duration::<gst::ClockTime>();
    pipeline.set_state(gst::State::Null).unwrap();
    result?;
    let mut media = std::mem::take(&mut *media.lock().unwrap());
    media.duration = Duration::from_nanos(duration.map_or(0, |d| d.nseconds()));
    Ok(media)
}

/// The caps fields that say which codec (not its private data).
fn caps_summary(s: &gst::StructureRef) -> String {
    let mut out = s.name().to_string();
    for field in ["mpegversion", "layer", "channels", "rate"] {
        if let Ok(v) = s.get::<i32>(field) {
            out += &format!(", {field}={v}");
        }
    }
    out
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .collect()
}

const FRAME: Duration = Duration::from_nanos(1_000_000_000 / 30);

fn close(a: Duration, b: Duration, tolerance: Duration) -> bool {
    a.abs_diff(b) <= tolerance
}

#[test]
fn derain_video_keeps_frames_duration_and_audio() {
    const TEST: &str = "derain_video_keeps_frames_duration_and_audio";
    let Some(aac) = aac_encoder(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip, 45, aac, "mp4mux");
    let out = dir.path().join("out.mp4");
    let (ok, text) = output_of(nlcl().arg("derain").arg(&clip).arg("-o").arg(&out));
    assert!(ok, "{text}");
    assert!(text.contains("45 frames"), "{text}");
    assert!(text.contains("audio (AAC) passed through"), "{text}");
    let a = probe(&clip).unwrap();
    let b = probe(&out).unwrap();
    assert_eq!(a.frames, 45, "{a:?}");
    assert_eq!(b.frames, a.frames, "input {a:?}\noutput {b:?}");
    assert_eq!((b.width, b.height), (160, 120));
    assert_eq!(b.video_codec, "video/x-h264");
    assert!(
        close(a.duration, b.duration, FRAME),
        "input {a:?}\noutput {b:?}"
    );
    // Timestamps kept: the first and last frames are shown at the same times (the encoder's
    // B-frame delay is undone by the MP4's edit list).
    let ms = Duration::from_millis(1);
    assert!(
        close(a.video_start.unwrap(), b.video_start.unwrap(), ms)
            && close(a.video_end.unwrap(), b.video_end.unwrap(), ms),
        "input {a:?}\noutput {b:?}"
    );
    assert!(a.audio.is_some(), "{a:?}");
    assert_eq!(a.audio, b.audio, "the audio changed codec");
    // Passed through, not re-encoded: the same packets, so the same span.
    assert_eq!(a.audio_span, b.audio_span, "input {a:?}\noutput {b:?}");
    assert!(part_files(dir.path()).is_empty());

    // Existing output kept unless --overwrite.
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    let (ok, text) = output_of(nlcl().arg("derain").arg(&clip).arg("-o").arg(&out));
    assert!(ok && text.contains("1 existing output(s) kept"), "{text}");
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), before);
    // The output may not be the input.
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&clip)
            .arg("-o")
            .arg(&clip)
            .arg("--overwrite"),
    );
    assert!(!ok && text.contains("overwrite an input"), "{text}");
}

/// A folder of images and videos: images become PNGs, videos MP4s, under the output folder.
#[test]
fn derain_folder_of_images_and_videos() {
    const TEST: &str = "derain_folder_of_images_and_videos";
    if aac_encoder(TEST).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    make_clip(&src.join("a.mp4"), 10, "", "mp4mux");
    make_clip(&src.join("a.mov"), 10, "", "qtmux");
    make_clip(&src.join("sub/b.mp4"), 10, "", "mp4mux");
    image::RgbImage::from_pixel(16, 8, image::Rgb([90, 120, 200]))
        .save(src.join("photo.png"))
        .unwrap();
    let out = dir.path().join("out");
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .arg("--recursive"),
    );
    assert!(ok, "{text}");
    for f in ["a.mp4.mp4", "a.mov.mp4", "sub/b.mp4", "photo.png"] {
        assert!(out.join(f).is_file(), "{f} missing:\n{text}");
    }
    assert_eq!(probe(&out.join("a.mov.mp4")).unwrap().frames, 10);
    assert!(part_files(&out).is_empty());
}

#[test]
fn bad_videos_fail_naming_the_file_and_leave_nothing() {
    const TEST: &str = "bad_videos_fail_naming_the_file_and_leave_nothing";
    let Some(aac) = aac_encoder(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.mp4");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&corrupt, noise).unwrap();
    // A real MP4 without a video track.
    let audio_only = dir.path().join("sound-only.mp4");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(
            format!(
                "audiotestsrc num-buffers=20 ! {aac} ! aacparse ! mp4mux ! filesink location={}",
                audio_only.display()
            )
            .split_whitespace(),
        )
        .status()
        .unwrap();
    assert!(status.success());
    for (input, why) in [
        (&corrupt, "type of stream"),
        (&audio_only, "no video stream"),
    ] {
        let out = dir.path().join("out.mp4");
        let (ok, text) = output_of(nlcl().arg("derain").arg(input).arg("-o").arg(&out));
        assert!(!ok, "{text}");
        let name = input.file_name().unwrap().to_str().unwrap();
        assert!(
            text.contains(&format!("failed: derain {}", input.display())) && text.contains(why),
            "{name}: {text}"
        );
        assert!(!out.exists(), "{name} left {}", out.display());
        assert!(
            part_files(dir.path()).is_empty(),
            "{name} left a partial file"
        );
    }
}

#[test]
fn side_by_side_video_is_twice_as_wide() {
    const TEST: &str = "side_by_side_video_is_twice_as_wide";
    let Some(aac) = aac_encoder(TEST) else { return };
    if installed(&["compositor"]).is_none() {
        skip(TEST, "GStreamer element compositor is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("rain.mp4");
    make_clip(&clip, 20, aac, "mp4mux");
    let out = dir.path().join("out");
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&clip)
            .arg("-o")
            .arg(&out)
            .arg("--side-by-side")
            .args(["--crf", "28", "--preset", "veryfast"]),
    );
    assert!(ok, "{text}");
    let main = probe(&out.join("rain.mp4")).unwrap();
    let side = probe(&out.join("rain-side-by-side.mp4")).unwrap();
    assert_eq!((main.width, main.height), (160, 120), "{main:?}");
    assert_eq!((side.width, side.height), (320, 120), "{side:?}");
    assert_eq!(main.frames, 20, "{main:?}");
    assert_eq!(side.frames, 20, "{side:?}");
    assert!(side.audio.is_some(), "{side:?}");
}

/// A video derains with `--temporal-smoothing` (every frame comes out; that the element gets
/// the value is checked in `video.rs`'s unit tests); a value outside its range is refused by
/// name before anything is written; for images it is noted as unused.
#[test]
fn temporal_smoothing_of_a_video() {
    const TEST: &str = "temporal_smoothing_of_a_video";
    let Some(aac) = aac_encoder(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("still.mp4");
    make_clip(&clip, 12, aac, "mp4mux");
    let out = dir.path().join("out");
    let (ok, text) = output_of(nlcl().arg("derain").arg(&clip).arg("-o").arg(&out).args([
        "--temporal-smoothing",
        "0.9",
        "--preset",
        "veryfast",
    ]));
    assert!(ok, "{text}");
    assert_eq!(probe(&out.join("still.mp4")).unwrap().frames, 12);
    let refused = dir.path().join("refused");
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&clip)
            .arg("-o")
            .arg(&refused)
            .args(["--temporal-smoothing", "1.2"]),
    );
    assert!(!ok);
    assert!(text.contains("temporal smoothing 1.2"), "{text}");
    assert!(!refused.join("still.mp4").exists());
    let image = dir.path().join("photo.png");
    image::RgbImage::from_pixel(32, 16, image::Rgb([90, 100, 110]))
        .save(&image)
        .unwrap();
    let (ok, text) = output_of(
        nlcl()
            .arg("derain")
            .arg(&image)
            .arg("-o")
            .arg(dir.path().join("images"))
            .args(["--temporal-smoothing", "0.9"]),
    );
    assert!(ok, "{text}");
    assert!(text.contains("applies to videos only"), "{text}");
}

/// MPEG-TS with ADTS AAC (re-framed, not re-encoded) and Matroska with Vorbis (MP4 cannot hold
/// it: re-encoded to AAC, with a note).
#[test]
fn other_containers_and_audio_codecs() {
    const TEST: &str = "other_containers_and_audio_codecs";
    let Some(aac) = aac_encoder(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    if installed(&["mpegtsmux", "tsdemux"]).is_some() {
        cases.push(("clip.ts", aac.to_string(), "mpegtsmux", "passed through"));
    } else {
        skip(TEST, "mpegtsmux is not installed: MPEG-TS not checked");
    }
    if installed(&["vorbisenc"]).is_some() && installed(&["matroskamux"]).is_some() {
        cases.push((
            "clip.mkv",
            "audioconvert ! vorbisenc".into(),
            "matroskamux",
            "re-encoded to AAC",
        ));
    } else {
        skip(TEST, "vorbisenc or matroskamux missing: Vorbis not checked");
    }
    for (name, audio, mux, note) in cases {
        let clip = dir.path().join(name);
        make_clip(&clip, 30, &audio, mux);
        let out = dir.path().join(format!("{name}.mp4"));
        let (ok, text) = output_of(nlcl().arg("derain").arg(&clip).arg("-o").arg(&out));
        assert!(ok && text.contains(note), "{name}: {text}");
        let b = probe(&out).unwrap();
        assert_eq!(b.frames, 30, "{name}: {b:?}");
        assert!(
            b.audio
                .as_deref()
                .is_some_and(|a| a.contains("mpegversion=4")),
            "{name}: {b:?}"
        );
        assert!(
            close(b.audio_span, Duration::from_secs(1), 3 * FRAME),
            "{name}: {b:?}"
        );
    }
}

/// A second Ctrl-C while the file is being finished removes it.
#[test]
fn ctrl_c_twice_removes_the_partial_file() {
    ctrl_c(2, "ctrl_c_twice_removes_the_partial_file");
}

/// Ctrl-C during a long clip ends with a playable, shorter file whose audio ends with its
/// video. (The copied audio runs seconds ahead of the derained video; before the audio was cut
/// at the video's end, about one run in five wrote far more audio than video, and qtdemux
/// skipped the short video track as a preview image.)
#[test]
fn ctrl_c_once_leaves_a_playable_file() {
    ctrl_c(1, "ctrl_c_once_leaves_a_playable_file");
}

/// Runs a long clip and presses Ctrl-C `presses` times (1 or 2), checking what is left.
fn ctrl_c(presses: u32, test: &str) {
    use std::io::{BufRead, BufReader};
    let Some(aac) = aac_encoder(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("long.mp4");
    // Half a minute or more of derain time on a small CPU; interrupted after a second or two.
    // Frames this size take a good fraction of a second to drain from the pipeline after the
    // first Ctrl-C, which leaves time for the second.
    const FRAMES: u64 = 900;
    make_sized_clip(&clip, FRAMES as u32, (480, 360), aac, "mp4mux");
    {
        let out = dir.path().join(format!("out{presses}.mp4"));
        let part = dir.path().join(format!("out{presses}.mp4.part"));
        let mut child = nlcl()
            .arg("derain")
            .arg(&clip)
            .arg("-o")
            .arg(&out)
            .args(["--preset", "ultrafast"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Standard error line by line, as it comes.
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Wait until frames are being written.
        let started = Instant::now();
        while std::fs::metadata(&part).map_or(0, |m| m.len()) < 50_000 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no output after two minutes"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: signals the child this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let mut text = String::new();
        if presses == 2 {
            // The second only once the first was seen (signals pending together merge).
            loop {
                let line = lines
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("no reaction to Ctrl-C:\n{text}"));
                text += &line;
                text.push('\n');
                if line.contains("interrupted: finishing") {
                    break;
                }
            }
            // SAFETY: as above.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        text.extend(lines.try_iter().map(|l| l + "\n"));
        assert_eq!(status.code(), Some(130), "{text}");
        assert!(!part.exists(), "partial file left behind:\n{text}");
        if presses == 1 {
            assert!(
                text.contains("interrupted: wrote a playable partial file"),
                "{text}"
            );
            let m = probe(&out).unwrap_or_else(|e| panic!("not playable: {e}\n{text}"));
            assert!(m.frames > 0 && m.frames < FRAMES, "{m:?}\n{text}");
            assert!(m.audio.is_some(), "{m:?}\n{text}");
            let video = m.video_end.unwrap_or_default();
            assert!(
                m.audio_span <= video + Duration::from_millis(250),
                "audio runs past the video: {m:?}\n{text}"
            );
        } else {
            assert!(text.contains("removed the partial output"), "{text}");
            assert!(!out.exists(), "a second Ctrl-C keeps nothing:\n{text}");
        }
    }
}
