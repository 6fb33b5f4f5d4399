//! `nlcl relay`: derains a video source (an RTSP camera, a file, an HTTP stream: any URI
//! GStreamer reads) and serves the result over RTSP as H.264, to any number of clients.
//!
//! Three pipelines, joined by appsink/appsrc so that each can stop without the others:
//!
//! ```text
//! source (rebuilt when the source drops):
//!     uridecodebin ! videoconvert ! video/x-raw,format=I420 ! appsink (sync: real-time pace)
//!            │ raw frames, retimestamped on arrival; dropped (counted) when derain falls behind
//!            ▼
//! derain (one, for the whole run; the model is loaded once):
//!     appsrc ! nlclderain ! videoconvert ! x264enc tune=zerolatency (or a hardware encoder)
//!            ! h264parse config-interval=-1 ! appsink
//!            │ H.264 access units, pushed to every prepared RTSP media
//!            ▼
//! RTSP media (one, shared by every client; made by the server when the first client comes):
//!     appsrc ! rtph264pay name=pay0
//! ```
//!
//! So every client gets the same derain pass and the same encoder output. When the source
//! fails (an error, end of stream, or no frame for `--source-timeout` seconds) its pipeline is
//! torn down and rebuilt with backoff (0.5 s, doubling up to 5 s, back to 0.5 s once frames
//! flow again) while the other two keep running: clients stay connected and see a pause, then
//! frames again. A file (`file://` or a path) is played again from the start at its end.
//!
//! Credentials come from `--auth-file` (lines `user:password`) or from `NLCL_RELAY_USER` and
//! `NLCL_RELAY_PASSWORD`, never from the command line; without them the stream is open. The
//! server listens on loopback unless `--bind` says otherwise. SIGINT and SIGTERM stop
//! everything cleanly (exit status 0); a second signal exits at once.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

use crate::ModelArgs;
use crate::signals::Caught;
use nlcl::family::ModelSource;
use nlcl::runtime::Provider;

/// Environment variables holding the one user allowed in when there is no `--auth-file`.
pub const ENV_USER: &str = "NLCL_RELAY_USER";
pub const ENV_PASSWORD: &str = "NLCL_RELAY_PASSWORD";

/// First wait before reconnecting to a lost source; doubled after each failed try.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the main loop looks at signals and at the source's last frame.
const TICK: Duration = Duration::from_millis(100);
/// Time a source has to deliver its first frame (connecting, probing, loading) before it is
/// given up and tried again (or `--source-timeout` when that is longer).
const STARTUP_GRACE: Duration = Duration::from_secs(20);
/// Raw frames waiting for the derain element; a frame arriving when this many wait is dropped.
const MAX_QUEUED_FRAMES: u64 = 3;
/// Encoded frames an RTSP media may hold before its oldest are dropped (a paused media).
const MAX_QUEUED_MEDIA: u32 = 60;
/// Name of the appsrc in the RTSP media's launch line.
const MEDIA_SRC: &str = "relaysrc";
/// Hardware H.264 encoders `--encoder auto` tries, in order, before x264enc.
const HW_ENCODERS: &[&str] = &[
    "nvh264enc",
    "vah264enc",
    "vaapih264enc",
    "qsvh264enc",
    "v4l2h264enc",
];

#[derive(clap::Args)]
pub struct RelayArgs {
    /// The video to derain: any URI GStreamer reads (rtsp://camera/stream, http://..., file://...)
    /// or a file path. A file is played in a loop.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// RTSP port to serve on (0: any free port; the URL served is printed).
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// Mount path of the derained stream.
    #[arg(long, default_value = "/derained")]
    pub path: String,
    /// Address to listen on: loopback by default; 0.0.0.0 (or ::) exposes the stream to the
    /// network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: String,
    /// Users allowed in: one `user:password` a line (# comments). Without it, NLCL_RELAY_USER
    /// and NLCL_RELAY_PASSWORD give one user; with neither the stream is open to anyone.
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Authentication methods offered: digest and basic (clients pick digest when they can),
    /// or only one of them. Basic sends the password in the clear.
    #[arg(long, default_value = "any", value_parser = ["any", "digest", "basic"])]
    pub auth_method: String,
    /// Print frames per second, derain latency and dropped frames every this many seconds.
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<f64>,
    /// H.264 encoder: `auto` (a hardware encoder when one works here, else x264), `x264`, or a
    /// GStreamer element name (nvh264enc, vah264enc, ...).
    #[arg(long, default_value = "auto")]
    pub encoder: String,
    /// Target bitrate in kbit/s.
    #[arg(long, default_value_t = 2048)]
    pub bitrate: u32,
    /// x264 speed preset.
    #[arg(long, default_value = "veryfast", value_parser = clap::builder::PossibleValuesParser::new(crate::video_files::PRESETS))]
    pub preset: String,
    /// At most this many frames between key frames (a client that joins also gets one at once).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub key_int: u32,
    /// Seconds without a frame after which the source counts as lost and is reconnected.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub source_timeout: f64,
    /// Jitter buffer of an rtsp:// source in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub source_latency: u32,
    /// For a still camera: the element's `temporal-smoothing` (0 = off, up to 0.99; 0.9 keeps a
    /// dry still scene as steady as the camera sends it).
    #[arg(long, default_value_t = 0.0, value_name = "CARRY")]
    pub temporal_smoothing: f64,
    #[command(flatten)]
    pub model: ModelArgs,
}

// ---------------------------------------------------------------------------------------------
// Logging

/// Local wall-clock time, `HH:MM:SS`.
fn clock() -> String {
    // SAFETY: time and localtime_r only write into the zeroed struct owned here.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return "--:--:--".into();
        }
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

/// One line of the relay's log (stderr), time-stamped.
fn log(msg: impl std::fmt::Display) {
    eprintln!("{} relay: {msg}", clock());
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A URI as it can be logged: the password of `scheme://user:password@host` hidden.
pub fn redact(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else {
        return uri.to_string();
    };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return uri.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let hidden = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_string()
    };
    format!("{}{hidden}{}", &uri[..scheme_end + 3], &rest[at..])
}

// ---------------------------------------------------------------------------------------------
// SIGINT / SIGTERM

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    // Only atomics and _exit: safe in a signal handler.
    if STOP_SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // A second signal: the clean stop is taking too long; leave at once.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Records SIGINT and SIGTERM instead of ending the process, while it lives (the main loop
/// looks every [`TICK`]); dropping it restores the previous handlers.
struct StopSignals {
    _caught: Vec<Caught>,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        STOP_SIGNAL.store(0, Ordering::SeqCst);
        let caught = [libc::SIGINT, libc::SIGTERM]
            .into_iter()
            .map(|signal| {
                Caught::install(signal, on_stop_signal)
                    .with_context(|| format!("cannot catch signal {signal}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StopSignals { _caught: caught })
    }

    /// The signal received, if any.
    fn received() -> Option<&'static str> {
        match STOP_SIGNAL.load(Ordering::SeqCst) {
            0 => None,
            libc::SIGINT => Some("SIGINT"),
            libc::SIGTERM => Some("SIGTERM"),
            _ => Some("a signal"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Users allowed in, `(user, password)`.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials(pub Vec<(String, String)>);

/// Parses an auth file: one `user:password` a line (the password may hold `:`); blank lines and
/// lines starting with `#` are skipped.
pub fn parse_auth_file(text: &str) -> Result<Credentials> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            bail!("line {}: expected user:password", n + 1);
        };
        let user = user.trim();
        if user.is_empty() || password.is_empty() {
            bail!("line {}: empty user or password", n + 1);
        }
        if users.iter().any(|(u, _)| u == user) {
            bail!("line {}: user {user} is listed twice", n + 1);
        }
        users.push((user.to_string(), password.to_string()));
    }
    if users.is_empty() {
        bail!("no user:password line");
    }
    Ok(Credentials(users))
}

/// The credentials asked for: `--auth-file`, else the environment, else none (open stream).
fn credentials(auth_file: Option<&Path>) -> Result<Option<Credentials>> {
    if let Some(path) = auth_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the auth file {}", path.display()))?;
        let creds = parse_auth_file(&text).with_context(|| format!("{}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            log(format!(
                "warning: {} can be read by other users (chmod 600 it)",
                path.display()
            ));
        }
        return Ok(Some(creds));
    }
    let user = std::env::var(ENV_USER).ok().filter(|u| !u.is_empty());
    let password = std::env::var(ENV_PASSWORD).ok().filter(|p| !p.is_empty());
    match (user, password) {
        (Some(u), Some(p)) => Ok(Some(Credentials(vec![(u, p)]))),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{ENV_USER} is set but {ENV_PASSWORD} is not"),
        (None, Some(_)) => bail!("{ENV_PASSWORD} is set but {ENV_USER} is not"),
    }
}

// ---------------------------------------------------------------------------------------------
// State shared with the streaming threads

/// One RTSP media's appsrc and the caps last set on it.
struct Output {
    src: glib::WeakRef<gst_app::AppSrc>,
    caps: Option<gst::Caps>,
}

#[derive(Default)]
struct Shared {
    /// The appsrc of every prepared RTSP media (normally one: the factory is shared).
    outputs: Mutex<Vec<Output>>,
    /// Caps of the encoded stream, for a media made later.
    out_caps: Mutex<Option<gst::Caps>>,
    /// Caps of the source's decoded frames.
    source_caps: Mutex<Option<gst::Caps>>,
    /// Source pipeline now fed into the derain pipeline; frames of older ones are dropped.
    generation: AtomicU64,
    /// Frames the source delivered (every generation).
    source_frames: AtomicU64,
    /// When the last of them came.
    last_source_frame: Mutex<Option<Instant>>,
    /// Source frames dropped because the derain element was behind.
    dropped: AtomicU64,
    /// Encoded frames out of the derain pipeline.
    frames_out: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().with_context(|| {
        format!("the GStreamer element {factory} is missing (scripts/setup.sh installs it)")
    })
}

/// Sets a property from its string form when the element has it; false otherwise.
fn try_set(element: &gst::Element, name: &str, value: &str) -> bool {
    let Some(pspec) = element.find_property(name) else {
        return false;
    };
    match glib::Value::deserialize_with_pspec(value, &pspec) {
        Ok(v) => {
            element.set_property_from_value(name, &v);
            true
        }
        Err(_) => false,
    }
}

/// A copy of `buffer` (sharing its memory) without timestamps: the next pipeline's appsrc
/// stamps it with its own running time on arrival.
fn unstamped(buffer: gst::Buffer) -> gst::Buffer {
    let mut buffer = buffer;
    {
        let b = buffer.make_mut();
        b.set_pts(None);
        b.set_dts(None);
    }
    buffer
}

/// `WxH @ F fps` of raw video caps.
fn describe(caps: Option<&gst::Caps>) -> String {
    let Some(s) = caps.and_then(|c| c.structure(0)) else {
        return "no caps yet".into();
    };
    let w = s.get::<i32>("width").unwrap_or(0);
    let h = s.get::<i32>("height").unwrap_or(0);
    let fps = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.denom() > 0 && f.numer() > 0)
        .map(|f| format!(" @ {:.3} fps", f64::from(f.numer()) / f64::from(f.denom())))
        .unwrap_or_default();
    format!("{w}x{h}{}", fps.replace(".000", ""))
}

/// Asks the encoder for a key frame with SPS/PPS (a client just joined).
fn request_key_unit(sink: &gst_app::AppSink) {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    // Sent into the sink element, an upstream event travels up to the encoder.
    sink.send_event(event);
}

// ---------------------------------------------------------------------------------------------
// The derain pipeline

struct Derain {
    pipeline: gst::Pipeline,
    input: gst_app::AppSrc,
    element: gst::Element,
    output: gst_app::AppSink,
    encoder: String,
}

fn configure_derain(derain: &gst::Element, model: &ModelArgs) -> Result<()> {
    match model.source() {
        ModelSource::Named(name) => derain.set_property_from_str("model", name.as_str()),
        ModelSource::File(path) => derain.set_property(
            "model-file",
            path.to_str()
                .with_context(|| format!("model path {} is not UTF-8", path.display()))?,
        ),
    }
    let provider = Provider::from_name(&model.provider)?;
    let (threads, lowered) = nlcl::runtime::bound_threads(model.threads);
    if let Some(msg) = lowered {
        log(format!("warning: {msg} (--threads)"));
    }
    derain.set_property_from_str("execution-provider", provider.name());
    derain.set_property("device-id", model.device_id);
    derain.set_property("threads", u32::try_from(threads).unwrap_or(u32::MAX));
    Ok(())
}

fn configure_x264(enc: &gst::Element, args: &RelayArgs) {
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property_from_str("speed-preset", &args.preset);
    enc.set_property("bitrate", args.bitrate);
    enc.set_property("key-int-max", args.key_int);
}

/// Low-latency settings under the names the common hardware encoders use; those an element
/// lacks are skipped.
fn configure_other(enc: &gst::Element, args: &RelayArgs) {
    let kbps = args.bitrate.to_string();
    let gop = args.key_int.to_string();
    try_set(enc, "bitrate", &kbps);
    try_set(enc, "zerolatency", "true");
    try_set(enc, "preset", "low-latency-hq");
    try_set(enc, "gop-size", &gop);
    try_set(enc, "key-int-max", &gop);
    try_set(enc, "keyframe-period", &gop);
    try_set(enc, "b-frames", "0");
    try_set(enc, "bframes", "0");
}

/// The H.264 encoder asked for by `--encoder`, with its name.
fn make_encoder(args: &RelayArgs) -> Result<(gst::Element, String)> {
    let choice = args.encoder.as_str();
    if choice == "auto" {
        for name in HW_ENCODERS {
            let Ok(enc) = gst::ElementFactory::make(name).build() else {
                continue;
            };
            configure_other(&enc, args);
            // Registered is not enough: opening the device tells whether it works here.
            let works = enc.set_state(gst::State::Ready).is_ok();
            let _ = enc.set_state(gst::State::Null);
            if works {
                return Ok((enc, name.to_string()));
            }
            log(format!(
                "{name} is installed but does not open here; trying the next"
            ));
        }
    }
    if matches!(choice, "auto" | "x264" | "x264enc") {
        let enc = make("x264enc")?;
        configure_x264(&enc, args);
        return Ok((enc, "x264enc".into()));
    }
    let enc = make(choice)?;
    let klass = enc
        .factory()
        .map(|f| f.metadata("klass").unwrap_or_default().to_string())
        .unwrap_or_default();
    if !klass.contains("Encoder") {
        bail!("--encoder {choice}: not an encoder ({klass})");
    }
    configure_other(&enc, args);
    Ok((enc, choice.to_string()))
}

fn build_derain(args: &RelayArgs, shared: &Arc<Shared>) -> Result<Derain> {
    let pipeline = gst::Pipeline::with_name("relay-derain");
    let input = gst_app::AppSrc::builder()
        .name("relay-in")
        .is_live(true)
        .do_timestamp(true)
        .format(gst::Format::Time)
        .max_buffers(MAX_QUEUED_FRAMES * 4)
        .build();
    let element = make("nlclderain")?;
    configure_derain(&element, &args.model)?;
    nlcl::temporal::check_carry(args.temporal_smoothing as f32).context("--temporal-smoothing")?;
    element.set_property("temporal-smoothing", args.temporal_smoothing);
    let convert = make("videoconvert")?;
    let (encoder, encoder_name) = make_encoder(args)?;
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    let output = gst_app::AppSink::builder()
        .name("relay-out")
        .caps(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .sync(false)
        .enable_last_sample(false)
        .build();
    {
        let shared = shared.clone();
        output.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    shared.frames_out.fetch_add(1, Ordering::Relaxed);
                    let caps = sample.caps_owned();
                    let Some(buffer) = sample.buffer_owned() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    drop(sample);
                    let mut outputs = lock(&shared.outputs);
                    outputs.retain_mut(|out| {
                        let Some(src) = out.src.upgrade() else {
                            return false;
                        };
                        if out.caps != caps {
                            src.set_caps(caps.as_ref());
                            out.caps = caps.clone();
                        }
                        // A media not started yet (or stopping) refuses buffers: skip it.
                        let _ = src.push_buffer(unstamped(buffer.clone()));
                        true
                    });
                    drop(outputs);
                    let mut known = lock(&shared.out_caps);
                    if *known != caps {
                        *known = caps;
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let chain = [
        input.upcast_ref::<gst::Element>(),
        &element,
        &convert,
        &encoder,
        &parse,
        output.upcast_ref(),
    ];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain).context("linking the derain pipeline")?;
    Ok(Derain {
        pipeline,
        input,
        element,
        output,
        encoder: encoder_name,
    })
}

// ---------------------------------------------------------------------------------------------
// The source pipeline and its reconnection

struct SourcePipeline {
    pipeline: gst::Pipeline,
    _watch: gst::bus::BusWatchGuard,
}

enum SourceEvent {
    Error(String),
    Eos,
}

struct Relay {
    uri: String,
    is_file: bool,
    source_timeout: Duration,
    source_latency: u32,
    shared: Arc<Shared>,
    input: gst_app::AppSrc,
    source: Option<SourcePipeline>,
    /// Wait before the next try.
    backoff: Duration,
    retry: Option<glib::SourceId>,
    /// Frames flow from the current source pipeline.
    up: bool,
    built_at: Instant,
    frames_at_build: u64,
    this: Weak<RefCell<Relay>>,
}

impl Relay {
    fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// Builds and starts a source pipeline; a failure counts as a lost source.
    fn connect(&mut self) {
        self.retry = None;
        log(format!("source: connecting to {}", redact(&self.uri)));
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.built_at = Instant::now();
        self.frames_at_build = self.shared.source_frames.load(Ordering::SeqCst);
        self.up = false;
        match self.build_source(generation) {
            Ok(source) => {
                let started = source.pipeline.set_state(gst::State::Playing);
                self.source = Some(source);
                if started.is_err() {
                    self.lost("the source pipeline does not start".into(), false);
                }
            }
            Err(e) => self.lost(format!("{e:#}"), false),
        }
    }

    fn build_source(&self, generation: u64) -> Result<SourcePipeline> {
        let pipeline = gst::Pipeline::with_name(&format!("relay-source-{generation}"));
        let decode = make("uridecodebin")?;
        decode.set_property("uri", &self.uri);
        let latency = self.source_latency;
        decode.connect("source-setup", false, move |values| {
            if let Ok(src) = values[1].get::<gst::Element>()
                && src.factory().is_some_and(|f| f.name() == "rtspsrc")
            {
                src.set_property("latency", latency);
            }
            None
        });
        let convert = make("videoconvert")?;
        let sink = gst_app::AppSink::builder()
            .caps(
                &gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .build(),
            )
            // Synchronised: a file or HTTP clip plays at its frame rate, not as fast as it
            // decodes (a live source is paced by its camera either way).
            .sync(true)
            .max_buffers(2)
            .enable_last_sample(false)
            .build();
        pipeline.add_many([&decode, &convert, sink.upcast_ref()])?;
        convert.link(&sink)?;

        let convert_weak = convert.downgrade();
        let pipeline_weak = pipeline.downgrade();
        decode.connect_pad_added(move |_, pad| {
            let (Some(convert), Some(pipeline)) = (convert_weak.upgrade(), pipeline_weak.upgrade())
            else {
                return;
            };
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            let sink_pad = convert
                .static_pad("sink")
                .expect("videoconvert has a sink pad");
            if is_video && !sink_pad.is_linked() {
                if let Err(e) = pad.link(&sink_pad) {
                    log(format!("source: cannot link its video: {e:?}"));
                }
                return;
            }
            // Audio, subtitles, a second video: not relayed.
            if let Ok(fake) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                && pipeline.add(&fake).is_ok()
            {
                let _ = fake.sync_state_with_parent();
                let _ = pad.link(&fake.static_pad("sink").expect("fakesink has a sink pad"));
            }
        });

        let shared = self.shared.clone();
        let input = self.input.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if shared.generation.load(Ordering::SeqCst) != generation {
                        return Err(gst::FlowError::Flushing);
                    }
                    shared.source_frames.fetch_add(1, Ordering::SeqCst);
                    *lock(&shared.last_source_frame) = Some(Instant::now());
                    if let Some(caps) = sample.caps_owned()
                        && input.caps().as_ref() != Some(&caps)
                    {
                        input.set_caps(Some(&caps));
                        *lock(&shared.source_caps) = Some(caps);
                    }
                    if input.current_level_buffers() >= MAX_QUEUED_FRAMES {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    let Some(buffer) = sample.buffer_owned() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    drop(sample);
                    // Flushing only while stopping.
                    let _ = input.push_buffer(unstamped(buffer));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );

        let this = self.this.clone();
        let watch = pipeline
            .bus()
            .context("pipeline without a bus")?
            .add_watch_local(move |_, msg| {
                let event = match msg.view() {
                    gst::MessageView::Error(e) => {
                        let mut text = e.error().to_string();
                        if let Some(d) = e.debug() {
                            // The last line of the debug text is the cause.
                            if let Some(first) = d.lines().last() {
                                let _ = write!(text, " ({})", first.trim());
                            }
                        }
                        Some(SourceEvent::Error(text))
                    }
                    gst::MessageView::Eos(_) => Some(SourceEvent::Eos),
                    gst::MessageView::Warning(w) => {
                        log(format!("source warning: {}", w.error()));
                        None
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    // Handled outside the watch, which the handler removes.
                    let this = this.clone();
                    glib::idle_add_local_once(move || {
                        if let Some(relay) = this.upgrade() {
                            relay.borrow_mut().on_event(generation, event);
                        }
                    });
                }
                glib::ControlFlow::Continue
            })
            .context("watching the source pipeline's bus")?;
        Ok(SourcePipeline {
            pipeline,
            _watch: watch,
        })
    }

    fn on_event(&mut self, generation: u64, event: SourceEvent) {
        if generation != self.generation() || self.source.is_none() {
            return; // from a pipeline already replaced
        }
        match event {
            SourceEvent::Error(e) => self.lost(e, false),
            SourceEvent::Eos => self.lost("end of stream".into(), true),
        }
    }

    /// Stops the current source pipeline (in the background: an unreachable server may keep
    /// its teardown waiting) and schedules the next try.
    fn lost(&mut self, reason: String, eos: bool) {
        let was_up = self.up;
        self.up = false;
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(source) = self.source.take() {
            let SourcePipeline { pipeline, _watch } = source;
            drop(_watch);
            std::thread::spawn(move || {
                let _ = pipeline.set_state(gst::State::Null);
            });
        }
        let delay = if eos && self.is_file && was_up {
            log("source ended (end of file): playing it again");
            self.backoff = FIRST_BACKOFF;
            Duration::ZERO
        } else {
            let delay = self.backoff;
            log(format!(
                "source lost: {reason}; reconnecting in {}",
                seconds(delay)
            ));
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            delay
        };
        let this = self.this.clone();
        self.retry = Some(glib::timeout_add_local_once(delay, move || {
            if let Some(relay) = this.upgrade() {
                relay.borrow_mut().connect();
            }
        }));
    }

    /// Every [`TICK`]: notices the first frame of a source, and a source that went quiet.
    fn tick(&mut self) {
        if self.source.is_none() {
            return;
        }
        let frames = self.shared.source_frames.load(Ordering::SeqCst) - self.frames_at_build;
        if !self.up && frames > 0 {
            self.up = true;
            self.backoff = FIRST_BACKOFF;
            log(format!(
                "source up: {}",
                describe(lock(&self.shared.source_caps).as_ref())
            ));
        }
        if self.up {
            let quiet =
                lock(&self.shared.last_source_frame).map_or(Duration::ZERO, |t| t.elapsed());
            if quiet > self.source_timeout {
                self.lost(format!("no frame for {}", seconds(quiet)), false);
            }
        } else {
            let grace = STARTUP_GRACE.max(self.source_timeout);
            if self.built_at.elapsed() > grace {
                self.lost(format!("no frame within {}", seconds(grace)), false);
            }
        }
    }

    fn stop(&mut self) {
        if let Some(id) = self.retry.take() {
            id.remove();
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(source) = self.source.take() {
            let _ = source.pipeline.set_state(gst::State::Null);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The RTSP server

fn source_uri(source: &str) -> Result<String> {
    if source.contains("://") {
        return Ok(source.to_string());
    }
    let path = Path::new(source);
    let abs = path.canonicalize().with_context(|| {
        format!("{source}: no such file (or give a URI: rtsp://, http://, file://)")
    })?;
    Ok(glib::filename_to_uri(&abs, None)
        .map_err(|e| anyhow!("{}: {e}", abs.display()))?
        .to_string())
}

fn url_host(bind: &str) -> String {
    if bind.contains(':') && !bind.starts_with('[') {
        format!("[{bind}]")
    } else {
        bind.to_string()
    }
}

fn is_loopback(bind: &str) -> bool {
    bind == "localhost"
        || bind
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

fn build_server(
    args: &RelayArgs,
    creds: Option<&Credentials>,
    shared: &Arc<Shared>,
    output: &gst_app::AppSink,
) -> Result<gst_rtsp_server::RTSPServer> {
    use gst_rtsp_server::{RTSPAuth, RTSPMediaFactory, RTSPServer, RTSPToken};
    let server = RTSPServer::new();
    server.set_address(&args.bind);
    server.set_service(&args.port.to_string());
    let mounts = server
        .mount_points()
        .context("the RTSP server has no mount points")?;
    let factory = RTSPMediaFactory::new();
    factory.set_launch(&format!(
        "( appsrc name={MEDIA_SRC} is-live=true do-timestamp=true format=time \
         max-buffers={MAX_QUEUED_MEDIA} leaky-type=downstream \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    ));
    // One media (one pipeline, one appsrc) for every client.
    factory.set_shared(true);
    {
        let shared = shared.clone();
        let output = output.clone();
        factory.connect_media_configure(move |_, media| {
            let Some(src) = media
                .element()
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name(MEDIA_SRC))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            else {
                log("error: the RTSP media has no appsrc");
                return;
            };
            let caps = lock(&shared.out_caps).clone().unwrap_or_else(|| {
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build()
            });
            src.set_caps(Some(&caps));
            let mut outputs = lock(&shared.outputs);
            outputs.retain(|o| o.src.upgrade().is_some());
            outputs.push(Output {
                src: src.downgrade(),
                caps: Some(caps),
            });
            drop(outputs);
            request_key_unit(&output);
        });
    }
    if let Some(Credentials(users)) = creds {
        let auth = RTSPAuth::new();
        let (basic, digest) = match args.auth_method.as_str() {
            "basic" => (true, false),
            "digest" => (false, true),
            _ => (true, true),
        };
        let token = RTSPToken::builder()
            .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
            .build();
        for (user, password) in users {
            if basic {
                auth.add_basic(&RTSPAuth::make_basic(user, password), &token);
            }
            if digest {
                auth.add_digest(user, password, &token);
            }
        }
        // Methods are flags in C, an enum in the bindings: set both through the C call.
        let mut methods = 0;
        if digest {
            methods |= gst_rtsp_server::gst_rtsp::ffi::GST_RTSP_AUTH_DIGEST;
        }
        if basic {
            methods |= gst_rtsp_server::gst_rtsp::ffi::GST_RTSP_AUTH_BASIC;
        }
        // SAFETY: a valid RTSPAuth and a combination of GstRTSPAuthMethod flags.
        unsafe {
            use glib::translate::ToGlibPtr;
            gst_rtsp_server::ffi::gst_rtsp_auth_set_supported_methods(
                auth.to_glib_none().0,
                methods,
            );
        }
        auth.set_realm(Some("nlcl relay"));
        server.set_auth(Some(&auth));
        factory.add_role_from_structure(
            &gst::Structure::builder("viewer")
                .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build(),
        );
    }
    mounts.add_factory(&args.path, factory);
    {
        let output = output.clone();
        server.connect_client_connected(move |_, client| {
            log("client connected");
            client.connect_closed(|_| log("client disconnected"));
            // A client that joins the shared media mid-stream decodes from the next key frame:
            // ask for one now rather than waiting up to --key-int frames.
            let output = output.clone();
            client.connect_play_request(move |_, _| request_key_unit(&output));
        });
    }
    Ok(server)
}

// ---------------------------------------------------------------------------------------------
// Stats

struct StatsState {
    at: Instant,
    frames: u64,
    drops: u64,
}

fn print_stats(
    state: &mut StatsState,
    shared: &Shared,
    element: &gst::Element,
    server: &gst_rtsp_server::RTSPServer,
    up: bool,
) {
    let now = Instant::now();
    let frames = shared.frames_out.load(Ordering::Relaxed);
    let stats = element.property::<gst::Structure>("stats");
    let late = stats.get::<u64>("frames-late-dropped").unwrap_or(0);
    let latency = stats.get::<f64>("latency-mean-ms").unwrap_or(f64::NAN);
    let drops = shared.dropped.load(Ordering::Relaxed) + late;
    let secs = now.duration_since(state.at).as_secs_f64().max(1e-9);
    let fps = (frames - state.frames) as f64 / secs;
    let clients = server.client_filter(None).len();
    println!(
        "stats: {fps:.1} fps, latency {latency:.1} ms, drops {} (total {drops}), frames {frames}, \
         clients {clients}, source {}",
        drops - state.drops,
        if up { "up" } else { "down" }
    );
    *state = StatsState {
        at: now,
        frames,
        drops,
    };
}

// ---------------------------------------------------------------------------------------------
// Run

fn validate(args: &RelayArgs) -> Result<()> {
    if !args.path.starts_with('/') || args.path.len() < 2 {
        bail!("--path {:?}: expected a path such as /derained", args.path);
    }
    if let Some(s) = args.stats_interval
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--stats-interval {s}: expected a positive number of seconds");
    }
    if !(args.source_timeout.is_finite() && args.source_timeout > 0.0) {
        bail!(
            "--source-timeout {}: expected a positive number of seconds",
            args.source_timeout
        );
    }
    Ok(())
}

pub fn run(args: &RelayArgs) -> Result<()> {
    validate(args)?;
    let creds = credentials(args.auth_file.as_deref())?;
    gst::init().context("initialising GStreamer")?;
    gstnlcl::plugin_register_static().context("registering the nlclderain element")?;
    let uri = source_uri(&args.source)?;
    gst::Element::make_from_uri(gst::URIType::Src, &uri, None)
        .map_err(|e| anyhow!("{}: no GStreamer source reads it ({e})", redact(&uri)))?;
    let is_file = uri.starts_with("file:");

    let signals = StopSignals::install()?;
    let main_loop = glib::MainLoop::new(None, false);
    let shared = Arc::new(Shared::default());

    // The derain pipeline runs for the whole session: load the model before serving.
    let derain = build_derain(args, &shared)?;
    let fatal: Rc<RefCell<Option<String>>> = Rc::default();
    let _derain_watch = {
        let fatal = fatal.clone();
        let main_loop = main_loop.clone();
        derain
            .pipeline
            .bus()
            .context("pipeline without a bus")?
            .add_watch_local(move |_, msg| {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let text = match e.debug() {
                            Some(d) => format!("{} ({d})", e.error()),
                            None => e.error().to_string(),
                        };
                        fatal.borrow_mut().get_or_insert(text);
                        main_loop.quit();
                    }
                    gst::MessageView::Warning(w) => log(format!("warning: {}", w.error())),
                    _ => {}
                }
                glib::ControlFlow::Continue
            })
            .context("watching the derain pipeline's bus")?
    };
    if derain.pipeline.set_state(gst::State::Playing).is_err() {
        let bus = derain.pipeline.bus().context("pipeline without a bus")?;
        let reason = bus
            .pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(match e.debug() {
                    Some(d) => format!("{} ({})", e.error(), d.lines().last().unwrap_or("").trim()),
                    None => e.error().to_string(),
                }),
                _ => None,
            })
            .unwrap_or_else(|| "it does not start".into());
        let _ = derain.pipeline.set_state(gst::State::Null);
        bail!("the derain pipeline: {reason}");
    }
    let provider = derain
        .element
        .property::<gst::Structure>("stats")
        .get::<String>("provider")
        .unwrap_or_else(|_| args.model.provider.clone());

    let server = build_server(args, creds.as_ref(), &shared, &derain.output)?;
    let server_source = server.attach(None).map_err(|_| {
        anyhow!(
            "cannot serve RTSP on {}:{} (the port is taken, or the address is not this \
             machine's)",
            args.bind,
            args.port
        )
    })?;
    let port = server.bound_port();
    let url = format!("rtsp://{}:{port}{}", url_host(&args.bind), args.path);
    log(format!(
        "derain: model {}, provider {provider}; encoder {}",
        match args.model.source() {
            ModelSource::Named(n) => n.to_string(),
            ModelSource::File(f) => f.display().to_string(),
        },
        derain.encoder
    ));
    match &creds {
        Some(Credentials(users)) => log(format!(
            "authentication: {} user(s), {}",
            users.len(),
            match args.auth_method.as_str() {
                "any" => "digest or basic",
                m => m,
            }
        )),
        None if is_loopback(&args.bind) => log(format!(
            "note: no credentials (--auth-file, or {ENV_USER} and {ENV_PASSWORD}): the stream \
             is open to every user of this machine"
        )),
        None => log(format!(
            "warning: no credentials (--auth-file, or {ENV_USER} and {ENV_PASSWORD}): the \
             stream is open to anyone who reaches {}:{port}",
            args.bind
        )),
    }
    println!("serving {url}");

    let relay = Rc::new_cyclic(|this| {
        RefCell::new(Relay {
            uri,
            is_file,
            source_timeout: Duration::from_secs_f64(args.source_timeout),
            source_latency: args.source_latency,
            shared: shared.clone(),
            input: derain.input.clone(),
            source: None,
            backoff: FIRST_BACKOFF,
            retry: None,
            up: false,
            built_at: Instant::now(),
            frames_at_build: 0,
            this: this.clone(),
        })
    });
    relay.borrow_mut().connect();

    let tick = {
        let relay = relay.clone();
        let main_loop = main_loop.clone();
        glib::timeout_add_local(TICK, move || {
            if StopSignals::received().is_some() {
                main_loop.quit();
                return glib::ControlFlow::Break;
            }
            relay.borrow_mut().tick();
            glib::ControlFlow::Continue
        })
    };
    let stats = args.stats_interval.map(|secs| {
        let relay = relay.clone();
        let shared = shared.clone();
        let element = derain.element.clone();
        let server = server.clone();
        let mut state = StatsState {
            at: Instant::now(),
            frames: 0,
            drops: 0,
        };
        glib::timeout_add_local(Duration::from_secs_f64(secs), move || {
            print_stats(&mut state, &shared, &element, &server, relay.borrow().up);
            glib::ControlFlow::Continue
        })
    });

    main_loop.run();

    // Stop: no new clients, close those connected (their media stops with their session),
    // then the source and the derain pipeline.
    let how = StopSignals::received().unwrap_or("error");
    if StopSignals::received().is_some() {
        log(format!("{how}: stopping"));
    } else {
        // The tick removes itself only on a signal.
        tick.remove();
    }
    if let Some(id) = stats {
        id.remove();
    }
    server_source.remove();
    server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
    }
    lock(&shared.outputs).clear();
    relay.borrow_mut().stop();
    let _ = derain.pipeline.set_state(gst::State::Null);
    // Let the closed connections and removed sessions finish what they queued.
    let context = glib::MainContext::default();
    for _ in 0..1000 {
        if !context.iteration(false) {
            break;
        }
    }
    drop(signals);
    if let Some(e) = fatal.borrow_mut().take() {
        bail!("the derain pipeline failed: {e}");
    }
    log("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_lines() {
        let c = parse_auth_file("# viewers\n\nalice:s3cret\nbob:pa:ss\r\n").unwrap();
        assert_eq!(
            c.0,
            vec![
                ("alice".to_string(), "s3cret".to_string()),
                ("bob".to_string(), "pa:ss".to_string())
            ]
        );
        assert!(parse_auth_file("alice\n").is_err());
        assert!(parse_auth_file("alice:\n").is_err());
        assert!(parse_auth_file("# nothing\n").is_err());
        assert!(parse_auth_file("a:1\na:2\n").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("rtsp://admin:hunter2@cam/stream"),
            "rtsp://admin:***@cam/stream"
        );
        assert_eq!(redact("rtsp://cam/a@b"), "rtsp://cam/a@b");
        assert_eq!(redact("file:///x.mp4"), "file:///x.mp4");
        assert_eq!(redact("rtsp://admin@cam/"), "rtsp://admin@cam/");
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("0.0.0.0"));
        assert_eq!(url_host("::1"), "[::1]");
    }
}
