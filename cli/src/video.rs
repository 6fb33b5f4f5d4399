//! `nlcl derain` on video files: any file GStreamer can decode in, an MP4 with H.264 video out,
//! derained by the `nlclderain` element registered in-process.
//!
//! One pipeline per file:
//!
//! ```text
//! filesrc ! parsebin ┬ video: decodebin ! videoconvert ! queue ! nlclderain ! videoconvert
//!                    │        ! video/x-raw,format=I420 ! x264enc ! h264parse ! mp4mux ! filesink
//!                    ├ audio MP4 can hold (AAC, MP3, AC-3, Opus, ALAC): [aacparse] ! tee
//!                    │        ! queue ! mp4mux               (not decoded, not re-encoded)
//!                    ├ other audio (Vorbis, PCM, ...): decodebin ! audioconvert ! audioresample
//!                    │        ! AAC encoder ! tee ! queue ! mp4mux          (with a note)
//!                    └ anything else (subtitles, a second video): fakesink  (with a note)
//! ```
//!
//! Frames keep their timestamps (the element pushes every frame, in order, with its timestamps;
//! `qos` is off so none is dropped) and compressed audio keeps its own. `--side-by-side` tees
//! the decoded frames before the element into a `compositor` that puts input and output next to
//! each other, encoded into a second file of twice the width.
//!
//! Files are written as `NAME.part` and renamed when complete, so a crash never leaves a broken
//! file under the output's name. Ctrl-C sends end-of-stream into every branch, so the muxer
//! finishes a playable (shorter) file, its audio cut where the derained video ends
//! ([`AudioCut`]); a second Ctrl-C stops at once and removes the partial file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use nlcl::family::ModelSource;

use crate::signals::Caught;
use crate::video_files::{Outcome, Report, Settings};

// ---------------------------------------------------------------------------------------------
// Ctrl-C

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic add: safe in a signal handler.
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Counts Ctrl-C (SIGINT) instead of ending the process, while it lives; dropping it restores
/// the previous handler.
pub struct CtrlC {
    _caught: Caught,
}

impl CtrlC {
    pub fn install() -> Result<CtrlC> {
        INTERRUPTS.store(0, Ordering::SeqCst);
        let caught = Caught::install(libc::SIGINT, on_sigint).context("cannot catch Ctrl-C")?;
        Ok(CtrlC { _caught: caught })
    }

    /// How many times Ctrl-C was pressed since [`CtrlC::install`].
    pub fn count(&self) -> usize {
        INTERRUPTS.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline

/// Structure name of the application messages that carry an error from a pad-added callback.
const NLCL_ERROR: &str = "nlcl-error";

fn init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| format!("initialising GStreamer: {e}"))?;
        gstnlcl::plugin_register_static()
            .map_err(|e| format!("registering the nlclderain element: {e}"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().with_context(|| {
        format!("the GStreamer element {factory} is missing (scripts/setup.sh installs it)")
    })
}

/// A queue that never blocks on size (its upstream bounds it).
fn unbounded_queue() -> Result<gst::Element> {
    let q = make("queue")?;
    q.set_property("max-size-buffers", 0u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", 0u64);
    Ok(q)
}

/// A queue of at most `n` buffers (frames), whatever their size.
fn frame_queue(n: u32) -> Result<gst::Element> {
    let q = unbounded_queue()?;
    q.set_property("max-size-buffers", n);
    Ok(q)
}

fn static_pad(e: &gst::Element, name: &str) -> Result<gst::Pad> {
    e.static_pad(name)
        .with_context(|| format!("{} has no pad {name}", e.name()))
}

fn link_pads(src: &gst::Pad, sink: &gst::Pad) -> Result<()> {
    src.link(sink).map(|_| ()).map_err(|e| {
        anyhow!(
            "cannot link {} to {}: {e:?}",
            src.path_string(),
            sink.path_string()
        )
    })
}

/// Requests a pad of `template` on `element` and links `src`'s source pad to it.
fn link_request(src: &gst::Element, element: &gst::Element, template: &str) -> Result<()> {
    let pad = element
        .request_pad_simple(template)
        .with_context(|| format!("{} gives no {template} pad", element.name()))?;
    link_pads(&static_pad(src, "src")?, &pad)
}

/// Adds elements to the running pipeline, links them in a chain and starts them (downstream
/// first, so nothing pushes into a stopped element).
fn add_chain(pipeline: &gst::Pipeline, chain: &[gst::Element]) -> Result<()> {
    pipeline.add_many(chain).context("adding elements")?;
    gst::Element::link_many(chain).context("linking elements")?;
    for e in chain.iter().rev() {
        e.sync_state_with_parent()
            .with_context(|| format!("starting {}", e.name()))?;
    }
    Ok(())
}

/// Links a stream that is not written to `queue ! fakesink` (the queue keeps the fakesink's
/// wait for PLAYING from holding up the demuxer, which feeds every stream from one thread).
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
    let queue = unbounded_queue()?;
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    add_chain(pipeline, &[queue.clone(), sink])?;
    link_pads(pad, &static_pad(&queue, "sink")?)
}

fn post_error(element: &gst::Element, message: String) {
    let s = gst::Structure::builder(NLCL_ERROR)
        .field("message", message)
        .build();
    let _ = element.post_message(gst::message::Application::builder(s).src(element).build());
}

/// A readable codec name for the caps of a stream.
fn codec(caps: &gst::CapsRef) -> String {
    let Some(s) = caps.structure(0) else {
        return "unknown".into();
    };
    let version = s.get::<i32>("mpegversion").unwrap_or(0);
    match (s.name().as_str(), version) {
        ("audio/mpeg", 2 | 4) => "AAC".into(),
        ("audio/mpeg", 1) => "MP3".into(),
        ("audio/x-ac3", _) => "AC-3".into(),
        ("audio/x-eac3", _) => "E-AC-3".into(),
        ("audio/x-opus", _) => "Opus".into(),
        ("audio/x-vorbis", _) => "Vorbis".into(),
        ("audio/x-flac", _) => "FLAC".into(),
        ("audio/x-alac", _) => "ALAC".into(),
        ("audio/x-raw", _) => "PCM".into(),
        ("video/x-h264", _) => "H.264".into(),
        ("video/x-h265", _) => "H.265".into(),
        (name, _) => name.to_string(),
    }
}

/// The first AAC encoder installed, for audio MP4 cannot hold as it is.
fn aac_encoder() -> Option<gst::Element> {
    ["fdkaacenc", "avenc_aac", "voaacenc"]
        .into_iter()
        .find_map(|f| gst::ElementFactory::make(f).build().ok())
}

/// x264's rate control: CRF through `pass=qual` (x264enc's constant-quality mode) with
/// `quantizer` as the rate factor. In that mode x264enc also turns its `bitrate` into a VBV
/// ceiling (2 Mbit/s by default, which would starve HD video); it is set from the frame size
/// once known, see [`vbv_ceiling_kbps`].
fn x264(settings: &Settings) -> Result<gst::Element> {
    let enc = make("x264enc")?;
    enc.set_property_from_str("speed-preset", &settings.preset);
    enc.set_property_from_str("pass", "qual");
    enc.set_property("quantizer", settings.crf);
    Ok(enc)
}

/// One bit per pixel per frame: far above what CRF needs at any sane rate factor (1080p30 at
/// CRF 18-23 takes 4-20 Mbit/s; this allows 62), and keeps the H.264 level that x264 derives
/// from the ceiling within what players accept (4.2 for 1080p30, 5.1 for 2160p30) instead of
/// the 6.2 an unbounded ceiling gives.
fn vbv_ceiling_kbps(width: i32, height: i32, fps: f64) -> u32 {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        30.0
    };
    let kbps = f64::from(width.max(1)) * f64::from(height.max(1)) * fps / 1000.0;
    kbps.clamp(1000.0, 2_048_000.0) as u32
}

/// `videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse ! mp4mux ! filesink`: the
/// first element and the muxer, and the encoder. I420 (4:2:0, 8 bits) plays everywhere.
fn encoder_chain(
    pipeline: &gst::Pipeline,
    settings: &Settings,
    location: &Path,
) -> Result<(gst::Element, gst::Element, gst::Element)> {
    let convert = make("videoconvert")?;
    let filter = make("capsfilter")?;
    filter.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
    );
    let enc = x264(settings)?;
    let parse = make("h264parse")?;
    let mux = make("mp4mux")?;
    let sink = make("filesink")?;
    sink.set_property(
        "location",
        location
            .to_str()
            .with_context(|| format!("{} is not UTF-8", location.display()))?,
    );
    pipeline.add_many([&convert, &filter, &enc, &parse, &mux, &sink])?;
    gst::Element::link_many([&convert, &filter, &enc, &parse])?;
    link_request(&parse, &mux, "video_%u")?;
    mux.link(&sink)?;
    Ok((convert, mux, enc))
}

fn configure_derain(derain: &gst::Element, settings: &Settings) -> Result<()> {
    match &settings.model {
        ModelSource::Named(name) => derain.set_property_from_str("model", name.as_str()),
        ModelSource::File(path) => derain.set_property(
            "model-file",
            path.to_str()
                .with_context(|| format!("model path {} is not UTF-8", path.display()))?,
        ),
    }
    derain.set_property_from_str("execution-provider", settings.provider.name());
    derain.set_property("device-id", settings.device_id);
    derain.set_property("threads", settings.threads);
    derain.set_property("temporal-smoothing", settings.temporal_smoothing);
    // Every frame is derained: a file has no deadline (and filesink sends no QoS anyway).
    derain.set_property("qos", false);
    Ok(())
}

/// Where the audio of an interrupted file ends. The copied audio runs many seconds ahead of
/// the derained video (the video waits in the decoders' and the element's queues), so after
/// Ctrl-C the muxer would write far more audio than video, and players take a video track
/// shorter than a fifth of the file for a preview image and skip it (GStreamer's qtdemux
/// does). Once the video has ended, audio past its end is dropped before the muxer.
#[derive(Default)]
struct AudioCut {
    interrupted: AtomicBool,
    video: Mutex<VideoEnd>,
}

#[derive(Default)]
struct VideoEnd {
    /// Running time of the end of the last derained frame so far.
    end: Option<gst::ClockTime>,
    /// The video has ended (end-of-stream left the element): `end` is final.
    ended: bool,
}

impl AudioCut {
    /// Notes a derained frame (`pad`: the element's source pad, for the segment).
    fn frame(&self, pad: &gst::Pad, buffer: &gst::BufferRef) {
        let end = buffer
            .pts()
            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO))
            .and_then(|t| running_time(pad, t));
        let mut video = self.video.lock().unwrap_or_else(|e| e.into_inner());
        if end > video.end {
            video.end = end;
        }
    }

    fn video_ended(&self) {
        self.video.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
    }

    /// Whether an audio buffer arriving at `pad` is to be dropped.
    fn drops(&self, pad: &gst::Pad, buffer: &gst::BufferRef) -> bool {
        if !self.interrupted.load(Ordering::SeqCst) {
            return false;
        }
        let video = self.video.lock().unwrap_or_else(|e| e.into_inner());
        match (video.ended, video.end) {
            (true, Some(end)) => buffer
                .pts()
                .and_then(|pts| running_time(pad, pts))
                .is_some_and(|t| t >= end),
            _ => false,
        }
    }
}

/// `t` (a timestamp on `pad`) as running time, through the pad's current segment.
fn running_time(pad: &gst::Pad, t: gst::ClockTime) -> Option<gst::ClockTime> {
    let event = pad.sticky_event::<gst::event::Segment>(0)?;
    event
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(t)
}

/// Links one audio stream of `parsebin` to every muxer: as it is when MP4 can hold it, else
/// decoded and encoded to AAC; dropped with a note when no AAC encoder is installed.
fn link_audio(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    caps: &gst::CapsRef,
    muxes: &[gst::Element],
    cut: &Arc<AudioCut>,
) -> Result<String> {
    let name = codec(caps);
    let template = muxes[0]
        .pad_template("audio_%u")
        .context("mp4mux has no audio pads")?;
    let template = template.caps();
    let adts_aac = caps.structure(0).is_some_and(|s| {
        s.name() == "audio/mpeg"
            && s.get::<i32>("mpegversion").ok() == Some(4)
            && s.get::<&str>("stream-format").ok() == Some("adts")
    });
    // The tail shared by both cases: a tee, and an unbounded queue per muxer (the muxer waits
    // for the video, which the encoder's look-ahead holds back by a second or two).
    let tee = make("tee")?;
    let mut tail = vec![tee.clone()];
    let mut queues = Vec::new();
    for _ in muxes {
        let q = unbounded_queue()?;
        tail.push(q.clone());
        queues.push(q);
    }
    let (head, note) = if template.can_intersect(caps) || adts_aac {
        // ADTS (MPEG-TS) AAC is re-framed, not re-encoded, by aacparse.
        let mut chain = Vec::new();
        if adts_aac {
            chain.push(make("aacparse")?);
        }
        chain.push(tee.clone());
        pipeline.add_many(&tail[1..])?;
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        (chain, format!("audio ({name}) passed through"))
    } else if let Some(encoder) = aac_encoder() {
        let decode = make("decodebin")?;
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let chain = vec![convert.clone(), resample, encoder, tee.clone()];
        pipeline.add_many(&tail[1..])?;
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        pipeline.add(&decode)?;
        let sink = static_pad(&convert, "sink")?;
        decode.connect_pad_added(move |decode, pad| {
            if sink.is_linked() {
                return;
            }
            if let Err(e) = link_pads(pad, &sink) {
                post_error(decode, format!("decoding the audio: {e}"));
            }
        });
        let mut head = vec![decode];
        head.extend(chain);
        (
            head,
            format!("audio ({name}) re-encoded to AAC: MP4 cannot hold {name}"),
        )
    } else {
        discard(pipeline, pad)?;
        return Ok(format!(
            "audio ({name}) dropped: MP4 cannot hold {name} and no AAC encoder is installed"
        ));
    };
    for (q, mux) in queues.iter().zip(muxes) {
        tee.link(q)?;
        link_request(q, mux, "audio_%u")?;
        let cut = cut.clone();
        static_pad(q, "src")?.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
            match probe.buffer() {
                Some(b) if cut.drops(pad, b) => gst::PadProbeReturn::Drop,
                _ => gst::PadProbeReturn::Ok,
            }
        });
    }
    for e in tail.iter().rev().chain(head.iter().rev()) {
        e.sync_state_with_parent()
            .with_context(|| format!("starting {}", e.name()))?;
    }
    link_pads(pad, &static_pad(&head[0], "sink")?)?;
    Ok(note)
}

/// What `parsebin`'s pad-added callback found.
#[derive(Default)]
struct Streams {
    video: bool,
    notes: Vec<String>,
}

/// Derains `input` into `dst` (and the comparison video into `side`), showing a progress bar.
/// Errors name the input; on any error, and on an aborted run, nothing is left under `dst`.
pub fn derain_video(
    input: &Path,
    dst: &Path,
    side: Option<&Path>,
    settings: &Settings,
    ctrl_c: &CtrlC,
) -> Result<Outcome> {
    init()?;
    let show = input.display().to_string();
    let mut targets = vec![dst.to_path_buf()];
    targets.extend(side.map(Path::to_path_buf));
    let parts: Vec<PathBuf> = targets
        .iter()
        .map(|t| {
            let mut p = t.clone().into_os_string();
            p.push(".part");
            PathBuf::from(p)
        })
        .collect();
    for t in &targets {
        if let Some(parent) = t.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let partial = Partial(parts.clone());
    let pipeline = gst::Pipeline::new();
    let result = run_pipeline(&pipeline, input, &parts, settings, ctrl_c);
    pipeline.set_state(gst::State::Null).ok();
    let result = result.with_context(|| format!("derain {show}"))?;
    match result {
        Outcome::Aborted => Ok(Outcome::Aborted), // `partial` removes the files
        Outcome::Done(report) | Outcome::Interrupted(report) if report.frames == 0 => {
            bail!("derain {show}: no video frames were decoded")
        }
        done => {
            for (part, target) in parts.iter().zip(&targets) {
                std::fs::rename(part, target).with_context(|| {
                    format!("renaming {} to {}", part.display(), target.display())
                })?;
            }
            partial.keep();
            Ok(done)
        }
    }
}

/// Files being written: removed when dropped unless kept.
struct Partial(Vec<PathBuf>);

impl Partial {
    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.exists() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn run_pipeline(
    pipeline: &gst::Pipeline,
    input: &Path,
    parts: &[PathBuf],
    settings: &Settings,
    ctrl_c: &CtrlC,
) -> Result<Outcome> {
    let location = input
        .to_str()
        .with_context(|| format!("{} is not UTF-8", input.display()))?;
    if !input.is_file() {
        bail!("{} is not a file", input.display());
    }
    let src = make("filesrc")?;
    src.set_property("location", location);
    let parse = make("parsebin")?;
    let decode = make("decodebin")?;
    let pre = make("videoconvert")?;
    let derain = make("nlclderain")?;
    configure_derain(&derain, settings)?;
    // Decoding runs ahead of the element by a few frames, in its own thread.
    let feed = frame_queue(8)?;
    pipeline.add_many([&src, &parse, &decode, &pre, &feed, &derain])?;
    src.link(&parse)?;
    gst::Element::link_many([&feed, &derain])?;

    let (main_head, main_mux, main_enc) = encoder_chain(pipeline, settings, &parts[0])?;
    let mut muxes = vec![main_mux];
    let mut encoders = vec![(main_enc, 1)];
    let mut compositor_right = None;
    if let Some(side_part) = parts.get(1) {
        // pre ! tee ┬ queue ! nlclderain ! tee ┬ queue ! (main encoder)
        //           │                          └ queue ! compositor.sink_1 (right)
        //           └ queue (unbounded) ! compositor.sink_0 (left)
        // compositor ! (side-by-side encoder)
        let tee_in = make("tee")?;
        let tee_out = make("tee")?;
        let q_left = unbounded_queue()?;
        let q_main = frame_queue(8)?;
        let q_right = frame_queue(8)?;
        let comp = make("compositor")?;
        comp.set_property_from_str("background", "black");
        pipeline.add_many([&tee_in, &tee_out, &q_left, &q_main, &q_right, &comp])?;
        gst::Element::link_many([&pre, &tee_in, &feed])?;
        gst::Element::link_many([&derain, &tee_out, &q_main, &main_head])?;
        tee_in.link(&q_left)?;
        tee_out.link(&q_right)?;
        link_request(&q_left, &comp, "sink_%u")?;
        let right = comp
            .request_pad_simple("sink_%u")
            .context("compositor gives no sink pad")?;
        link_pads(&static_pad(&q_right, "src")?, &right)?;
        compositor_right = Some(right);
        let (side_head, side_mux, side_enc) = encoder_chain(pipeline, settings, side_part)?;
        comp.link(&side_head)?;
        muxes.push(side_mux);
        encoders.push((side_enc, 2));
    } else {
        gst::Element::link_many([&pre, &feed])?;
        gst::Element::link_many([&derain, &main_head])?;
    }

    // The decoded video's caps: frame rate for the progress bar, width for the compositor, and
    // the encoders' VBV ceiling, all set before the caps reach them.
    let fps_seen: Arc<Mutex<Option<f64>>> = Arc::default();
    {
        let fps_seen = fps_seen.clone();
        static_pad(&pre, "src")?.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, probe| {
            if let Some(gst::EventView::Caps(c)) = probe.event().map(|e| e.view()) {
                let s = c.caps().structure(0);
                let width = s.and_then(|s| s.get::<i32>("width").ok()).unwrap_or(0);
                let height = s.and_then(|s| s.get::<i32>("height").ok()).unwrap_or(0);
                let fps = s
                    .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                    .filter(|f| f.denom() > 0)
                    .map_or(0.0, |f| f64::from(f.numer()) / f64::from(f.denom()));
                if let Some(right) = &compositor_right {
                    right.set_property("xpos", width);
                }
                for (enc, columns) in &encoders {
                    enc.set_property("bitrate", vbv_ceiling_kbps(width * columns, height, fps));
                }
                *fps_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(fps);
            }
            gst::PadProbeReturn::Ok
        });
    }
    // Frames out of the element, and where the video ends.
    let frames = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AudioCut::default());
    {
        let frames = frames.clone();
        let cut = cut.clone();
        static_pad(&derain, "src")?.add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::BUFFER_LIST
                | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |pad, probe| {
                match &probe.data {
                    Some(gst::PadProbeData::BufferList(l)) => {
                        l.iter().for_each(|b| cut.frame(pad, b));
                        frames.fetch_add(l.len() as u64, Ordering::Relaxed);
                    }
                    Some(gst::PadProbeData::Buffer(b)) => {
                        cut.frame(pad, b);
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                        cut.video_ended();
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    let streams: Arc<Mutex<Streams>> = Arc::default();
    {
        let streams = streams.clone();
        let cut = cut.clone();
        // Weak: the pipeline owns parsebin, which owns this callback.
        let pipeline = pipeline.downgrade();
        let video_sink = static_pad(&decode, "sink")?;
        parse.connect_pad_added(move |parse, pad| {
            let Some(pipeline) = pipeline.upgrade() else {
                return;
            };
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let kind = caps
                .structure(0)
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let mut streams = streams.lock().unwrap_or_else(|e| e.into_inner());
            let result = if kind.starts_with("video/") && !streams.video {
                streams.video = true;
                link_pads(pad, &video_sink)
            } else if kind.starts_with("audio/") {
                link_audio(&pipeline, pad, &caps, &muxes, &cut).map(|note| streams.notes.push(note))
            } else {
                let what = if kind.starts_with("video/") {
                    format!("a further video stream ({}) dropped", codec(&caps))
                } else {
                    format!("stream {kind} dropped")
                };
                streams.notes.push(what);
                discard(&pipeline, pad)
            };
            if let Err(e) = result {
                post_error(parse, format!("{e:#}"));
            }
        });
    }
    {
        let streams = streams.clone();
        // A file without video is normally caught by parsebin's stream collection (below);
        // this catches it when parsebin has read everything without exposing a video stream
        // (the muxer, waiting for video, would otherwise wait forever).
        parse.connect("drained", false, move |values| {
            if let Ok(parse) = values[0].get::<gst::Element>()
                && !streams.lock().unwrap_or_else(|e| e.into_inner()).video
            {
                post_error(&parse, "the file has no video stream".into());
            }
            None
        });
    }
    decode.connect_pad_added(move |decode, pad| {
        let Some(sink) = pre.static_pad("sink") else {
            return;
        };
        if sink.is_linked() {
            return;
        }
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let raw = caps.structure(0).is_some_and(|s| s.name() == "video/x-raw");
        if !raw {
            post_error(
                decode,
                format!("no decoder for its video ({}) is installed", codec(&caps)),
            );
        } else if let Err(e) = link_pads(pad, &sink) {
            post_error(decode, format!("{e:#}"));
        }
    });

    let bus = pipeline.bus().context("pipeline without a bus")?;
    let bar = progress_bar(input);
    let started = Instant::now();
    let error_text = |msg: &gst::MessageRef, error: &gst::glib::Error, debug: Option<String>| {
        let from = msg
            .src()
            .map(|s| format!(" ({})", s.name()))
            .unwrap_or_default();
        // GStreamer's debug text: a line saying where in GStreamer's source it was raised
        // (`file.c(123): function (): /GstPipeline:...`), then, from some elements (the
        // nlclderain element among them), the actual reason.
        let detail: Vec<String> = debug
            .iter()
            .flat_map(|d| d.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains("(): /"))
            .map(str::to_string)
            .collect();
        if detail.is_empty() {
            format!("{error}{from}")
        } else {
            format!("{error}{from}: {}", detail.join("; "))
        }
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus.
        let reason = bus
            .timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => {
                    Some(error_text(&m, &e.error(), e.debug().map(|d| d.to_string())))
                }
                _ => None,
            })
            .unwrap_or_else(|| "the pipeline would not start".into());
        bar.finish_and_clear();
        bail!("{reason}");
    }
    let mut eos_sent = false;
    let mut has_length = false;
    let outcome = loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(eos_sent),
                gst::MessageView::Error(e) => {
                    break Err(anyhow!(error_text(
                        &msg,
                        &e.error(),
                        e.debug().map(|d| d.to_string())
                    )));
                }
                gst::MessageView::Warning(w) => {
                    bar.suspend(|| eprintln!("warning: {}: {}", input.display(), w.error()));
                }
                gst::MessageView::StreamCollection(c) => {
                    let collection = c.stream_collection();
                    let video = collection
                        .iter()
                        .any(|s| s.stream_type().contains(gst::StreamType::VIDEO));
                    if !collection.is_empty() && !video {
                        break Err(anyhow!("the file has no video stream"));
                    }
                }
                gst::MessageView::Application(a) => {
                    if let Some(s) = a.structure().filter(|s| s.name() == NLCL_ERROR) {
                        let text = s.get::<String>("message").unwrap_or_default();
                        break Err(anyhow!(text));
                    }
                }
                _ => {}
            }
        }
        let done = frames.load(Ordering::Relaxed);
        bar.set_position(done);
        if !has_length {
            let fps = fps_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(0.0);
            let duration = derain
                .static_pad("sink")
                .and_then(|p| p.peer_query_duration::<gst::ClockTime>());
            if let Some(d) = duration.filter(|_| fps > 0.0) {
                // N frames last N / fps; a longer audio track may add a little.
                let total = (d.nseconds() as f64 / 1e9 * fps + 1e-3).floor() as u64;
                if total > 0 {
                    bar.set_style(bar_style());
                    bar.set_length(total.max(done));
                    has_length = true;
                }
            }
        }
        let presses = ctrl_c.count();
        if presses >= 2 || (presses == 1 && done == 0) {
            bar.finish_and_clear();
            eprintln!(
                "interrupted: stopped {} and removed the partial output",
                input.display()
            );
            return Ok(Outcome::Aborted);
        }
        if presses == 1 && !eos_sent {
            eos_sent = true;
            cut.interrupted.store(true, Ordering::SeqCst);
            bar.suspend(|| {
                eprintln!(
                    "interrupted: finishing a playable file after {done} frames (Ctrl-C again \
                     to stop and remove it)"
                )
            });
            // End-of-stream into every branch (not into filesrc: a demuxer reading in pull
            // mode would not see it). Sent from a thread: a serialized event waits for the
            // branch's streaming lock.
            let heads: Vec<gst::Pad> = parse.src_pads().iter().filter_map(|p| p.peer()).collect();
            std::thread::spawn(move || {
                for pad in heads {
                    pad.send_event(gst::event::Eos::new());
                }
            });
        }
    };
    let frames = frames.load(Ordering::Relaxed);
    bar.finish_and_clear();
    let interrupted = outcome?;
    if ctrl_c.count() >= 2 {
        // Pressed again while the file was being finished.
        eprintln!(
            "interrupted: stopped {} and removed the partial output",
            input.display()
        );
        return Ok(Outcome::Aborted);
    }
    let provider = derain
        .property::<gst::Structure>("stats")
        .get::<String>("provider")
        .unwrap_or_else(|_| settings.provider.name().to_string());
    let notes = std::mem::take(&mut streams.lock().unwrap_or_else(|e| e.into_inner()).notes);
    let report = Report {
        frames,
        seconds: started.elapsed().as_secs_f64(),
        provider,
        notes,
    };
    Ok(if interrupted {
        Outcome::Interrupted(report)
    } else {
        Outcome::Done(report)
    })
}

fn fps_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.1} fps", state.per_sec());
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} frames, {fps}, ETA {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("fps", fps_key)
        .progress_chars("=> ")
}

/// A spinner until the number of frames is known (duration x frame rate), then a bar.
fn progress_bar(input: &Path) -> ProgressBar {
    let bar = ProgressBar::no_length();
    bar.set_style(
        ProgressStyle::with_template("{prefix} {spinner} {pos} frames, {fps}, {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("fps", fps_key),
    );
    bar.set_prefix(
        input
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_element_gets_the_temporal_smoothing_asked_for() -> Result<()> {
        init()?;
        let derain = make("nlclderain")?;
        let settings = Settings {
            model: ModelSource::Named(nlcl::family::ModelName::Lite),
            provider: nlcl::runtime::Provider::Cpu,
            device_id: 0,
            threads: 1,
            crf: 20,
            preset: "medium".into(),
            temporal_smoothing: 0.9,
        };
        configure_derain(&derain, &settings)?;
        assert_eq!(derain.property::<f64>("temporal-smoothing"), 0.9);
        Ok(())
    }

    #[test]
    fn vbv_ceiling_keeps_sane_levels() {
        assert_eq!(vbv_ceiling_kbps(1920, 1080, 30.0), 62208);
        assert_eq!(vbv_ceiling_kbps(160, 120, 0.0), 1000);
    }
}
