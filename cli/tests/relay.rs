#![cfg(feature = "gstreamer")]
//! `nlcl relay` end to end: an RTSP source served in-process (videotestsrc, 160x120, H.264) on
//! a free loopback port, the built `nlcl relay` reading it with the built-in model, and real
//! `rtspsrc` clients reading the relay: frames arrive; the source stops and comes back and the
//! same client gets frames again within 10 s; a wrong password is refused; two clients at once
//! both get frames; a file source loops. Each relay is stopped with SIGTERM and must exit 0.
//!
//! The tests take the machine one at a time (a lock), so the 10 s bound is not measured on a
//! machine busy with the other tests' relays.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

#[path = "../../tests/support/skip.rs"]
mod skip_log;
use skip_log::skip;

/// One relay test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The elements the tests and the relay need; false (after logging the skip) when one is
/// missing.
fn elements_present(test: &str) -> bool {
    gst::init().unwrap();
    for f in [
        "x264enc",
        "rtph264pay",
        "rtspsrc",
        "uridecodebin",
        "h264parse",
        "videotestsrc",
    ] {
        if gst::ElementFactory::find(f).is_none() {
            skip(test, &format!("GStreamer element {f} is not installed"));
            return false;
        }
    }
    if ["avdec_h264", "openh264dec"]
        .iter()
        .all(|f| gst::ElementFactory::find(f).is_none())
    {
        skip(
            test,
            "no H.264 decoder (avdec_h264, openh264dec) is installed",
        );
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The source: an RTSP server in this process, on its own thread and main context

struct SourceServer {
    port: u16,
    server: gst_rtsp_server::RTSPServer,
    /// The media made for the relay (shared), to freeze it.
    medias: Arc<Mutex<Vec<gst_rtsp_server::RTSPMedia>>>,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    attached: Option<glib::SourceId>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SourceServer {
    /// Serves `rtsp://127.0.0.1:PORT/test` (port 0: any free port).
    fn start(port: u16) -> SourceServer {
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            "( videotestsrc is-live=true pattern=ball \
             ! video/x-raw,width=160,height=120,framerate=30/1 ! valve name=gate \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 \
             ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        );
        factory.set_shared(true);
        let medias = Arc::new(Mutex::new(Vec::new()));
        {
            let medias = medias.clone();
            factory.connect_media_configure(move |_, media| {
                medias.lock().unwrap().push(media.clone());
            });
        }
        server.mount_points().unwrap().add_factory("/test", factory);
        // Binding can fail for a moment after a stop on the same port: retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        let attached = loop {
            match server.attach(Some(&context)) {
                Ok(id) => break id,
                Err(e) if Instant::now() > deadline => panic!("source server on {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let port = u16::try_from(server.bound_port()).expect("a bound port");
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::spawn(move || main_loop.run())
        };
        SourceServer {
            port,
            server,
            medias,
            context,
            main_loop,
            attached: Some(attached),
            thread: Some(thread),
        }
    }

    /// Stops (or restarts) the frames while the connections stay open: a frozen camera.
    fn freeze(&self, frozen: bool) {
        for media in self.medias.lock().unwrap().iter() {
            let bin = media.element().downcast::<gst::Bin>().unwrap();
            bin.by_name("gate").unwrap().set_property("drop", frozen);
        }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    /// Stops listening, drops every client and session (their pipelines stop), ends the thread.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Not the default context: SourceId::remove would look there.
        if let Some(id) = self.attached.take()
            && let Some(listening) = self.context.find_source_by_id(&id)
        {
            listening.destroy();
        }
        let (tx, rx) = mpsc::channel();
        let server = self.server.clone();
        self.context.invoke(move || {
            server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
            if let Some(pool) = server.session_pool() {
                pool.filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
            }
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("source server did not close its clients");
        self.main_loop.quit();
        thread.join().unwrap();
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// The relay, as a child process

struct Relay {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Relay {
    /// Starts `nlcl relay SOURCE --port 0 EXTRA...` and waits for the URL it serves.
    fn start(source: &str, extra: &[&str], env: &[(&str, &str)]) -> Relay {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nlcl"));
        cmd.args(["relay", source, "--port", "0", "--source-timeout", "2"])
            .args(extra)
            .env_remove("NLCL_RELAY_USER")
            .env_remove("NLCL_RELAY_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting nlcl relay");
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        {
            let mut err = child.stderr.take().unwrap();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        {
            let out = child.stdout.take().unwrap();
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("serving ") {
                        let _ = tx.send(url.to_string());
                    }
                    let mut s = stdout.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "nlcl relay printed no URL; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Relay {
            child,
            url,
            log,
            stdout,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM; the relay must stop within 20 s with status 0.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: signals our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the log reader finish
                assert!(
                    status.success(),
                    "nlcl relay exited with {status} after SIGTERM; its log:\n{}",
                    self.log()
                );
                assert!(self.log().contains("SIGTERM: stopping"), "{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "nlcl relay did not stop within 20 s of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A client: rtspsrc ! decodebin ! fakesink, counting decoded frames

struct Client {
    pipeline: gst::Pipeline,
    frames: Arc<AtomicU64>,
    size: Arc<Mutex<Option<(i32, i32)>>>,
}

impl Client {
    fn start(url: &str, credentials: Option<(&str, &str)>) -> Client {
        let pipeline = gst::parse::launch(&format!(
            "rtspsrc name=src location={url} latency=100 ! decodebin ! videoconvert \
             ! fakesink name=sink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        if let Some((user, password)) = credentials {
            let src = pipeline.by_name("src").unwrap();
            src.set_property("user-id", user);
            src.set_property("user-pw", password);
        }
        let frames = Arc::new(AtomicU64::new(0));
        let size = Arc::new(Mutex::new(None));
        let pad = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        {
            let frames = frames.clone();
            let size = size.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(_)) => {
                            frames.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(gst::PadProbeData::Event(e)) => {
                            if let gst::EventView::Caps(c) = e.view()
                                && let Some(s) = c.caps().structure(0)
                            {
                                *size.lock().unwrap() = Some((
                                    s.get::<i32>("width").unwrap_or(0),
                                    s.get::<i32>("height").unwrap_or(0),
                                ));
                            }
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
        pipeline.set_state(gst::State::Playing).unwrap();
        Client {
            pipeline,
            frames,
            size,
        }
    }

    fn frames(&self) -> u64 {
        self.frames.load(Ordering::SeqCst)
    }

    /// The first error on the bus, if any (EOS counts as one: a relay never ends its stream).
    fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        let msg = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])?;
        Some(match msg.view() {
            gst::MessageView::Error(e) => format!(
                "{} ({})",
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => "end of stream".into(),
        })
    }

    /// Waits until `n` more frames than `from` have arrived; the time it took.
    fn wait_frames(&self, from: u64, n: u64, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if self.frames() >= from + n {
                return Ok(start.elapsed());
            }
            if let Some(e) = self.error() {
                return Err(format!("client error after {} frames: {e}", self.frames()));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{} frames in {timeout:?} (wanted {n} more than {from})",
                    self.frames()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the client's first error.
    fn wait_error(&self, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(e) = self.error() {
                return Some(e);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// First connection: the relay's source connects, its model loads, the client negotiates.
const FIRST_FRAMES_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn relay_serves_derained_frames() {
    let _lock = serial();
    if !elements_present("relay_serves_derained_frames") {
        return;
    }
    let source = SourceServer::start(0);
    let relay = Relay::start(&source.url(), &["--stats-interval", "1"], &[]);
    assert!(
        relay.url.starts_with("rtsp://127.0.0.1:") && relay.url.ends_with("/derained"),
        "served on loopback by default: {}",
        relay.url
    );
    let client = Client::start(&relay.url, None);
    let took = client
        .wait_frames(0, 60, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; relay log:\n{}", relay.log()));
    println!("60 frames in {took:?}");
    assert_eq!(*client.size.lock().unwrap(), Some((160, 120)));
    drop(client);
    let log = relay.log();
    assert!(log.contains("source up: 160x120"), "{log}");
    assert!(
        log.contains("no credentials"),
        "an open stream is announced: {log}"
    );
    let stats = relay.stdout.lock().unwrap().clone();
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("stats: ") && l.contains(" fps, latency ")),
        "--stats-interval prints stats: {stats}"
    );
    relay.stop();
    source.stop();
}

#[test]
fn relay_survives_source_restart() {
    let _lock = serial();
    if !elements_present("relay_survives_source_restart") {
        return;
    }
    let source = SourceServer::start(0);
    let port = source.port;
    let relay = Relay::start(&source.url(), &[], &[]);
    let client = Client::start(&relay.url, None);
    client
        .wait_frames(0, 30, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; relay log:\n{}", relay.log()));

    // The source goes away: the client's frames stop, its connection stays.
    source.stop();
    let mut last = client.frames();
    let mut still_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    while still_since.elapsed() < Duration::from_millis(1500) {
        assert!(
            Instant::now() < deadline,
            "frames kept coming without a source"
        );
        std::thread::sleep(Duration::from_millis(50));
        let now = client.frames();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    assert!(client.error().is_none(), "the client was dropped");
    // Down long enough for the relay to back off a few times (0.5 s, 1 s, 2 s, ...).
    std::thread::sleep(Duration::from_secs(3));
    assert!(client.error().is_none(), "the client was dropped");

    // It comes back on the same port: the same client gets frames again within 10 s.
    let source = SourceServer::start(port);
    let before = client.frames();
    let took = client
        .wait_frames(before, 10, Duration::from_secs(10))
        .unwrap_or_else(|e| {
            panic!(
                "after the source restarted: {e}; relay log:\n{}",
                relay.log()
            )
        });
    println!("frames again {took:?} after the source restarted");
    let log = relay.log();
    println!("relay log:\n{log}");
    assert!(log.contains("source lost: "), "{log}");
    assert!(log.contains("reconnecting in "), "{log}");
    assert_eq!(log.matches("source up: ").count(), 2, "{log}");
    drop(client);
    relay.stop();
    source.stop();
}

#[test]
fn relay_reconnects_a_frozen_source() {
    let _lock = serial();
    if !elements_present("relay_reconnects_a_frozen_source") {
        return;
    }
    let source = SourceServer::start(0);
    let relay = Relay::start(&source.url(), &[], &[]);
    let client = Client::start(&relay.url, None);
    client
        .wait_frames(0, 30, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; relay log:\n{}", relay.log()));
    // The connection stays up but no frame comes: only the relay's watchdog can tell.
    source.freeze(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !relay.log().contains("source lost: no frame for") {
        assert!(Instant::now() < deadline, "no watchdog: {}", relay.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    source.freeze(false);
    let before = client.frames();
    let took = client
        .wait_frames(before, 10, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("after the source thawed: {e}; relay log:\n{}", relay.log()));
    println!("frames again {took:?} after the source thawed");
    drop(client);
    relay.stop();
    source.stop();
}

fn write_auth_file(dir: &Path, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("users");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

fn assert_refused(relay: &Relay, credentials: Option<(&str, &str)>) {
    let client = Client::start(&relay.url, credentials);
    let err = client
        .wait_error(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{credentials:?} was let in ({} frames)", client.frames()));
    assert!(
        err.contains("Unauthorized") || err.contains("401") || err.contains("authoriz"),
        "refused for another reason: {err}"
    );
    assert_eq!(client.frames(), 0);
    println!("{credentials:?} refused: {err}");
}

#[test]
fn relay_refuses_a_wrong_password() {
    let _lock = serial();
    if !elements_present("relay_refuses_a_wrong_password") {
        return;
    }
    let source = SourceServer::start(0);
    let dir = tempfile::tempdir().unwrap();
    let users = write_auth_file(dir.path(), "# viewers\nviewer:right-pass\nother:x:y\n");

    // From a file, digest or basic offered.
    let relay = Relay::start(&source.url(), &["--auth-file", &users], &[]);
    assert_refused(&relay, Some(("viewer", "wrong-pass")));
    assert_refused(&relay, None);
    let client = Client::start(&relay.url, Some(("viewer", "right-pass")));
    client
        .wait_frames(0, 20, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("with the right password: {e}; relay log:\n{}", relay.log()));
    let client2 = Client::start(&relay.url, Some(("other", "x:y")));
    client2
        .wait_frames(0, 10, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("a password holding ':': {e}"));
    drop((client, client2));
    assert!(
        relay.log().contains("authentication: 2 user(s)"),
        "{}",
        relay.log()
    );
    relay.stop();

    // From the environment, basic only.
    let relay = Relay::start(
        &source.url(),
        &["--auth-method", "basic"],
        &[
            ("NLCL_RELAY_USER", "env-user"),
            ("NLCL_RELAY_PASSWORD", "env-pass"),
        ],
    );
    assert_refused(&relay, Some(("env-user", "nope")));
    let client = Client::start(&relay.url, Some(("env-user", "env-pass")));
    client
        .wait_frames(0, 10, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("env credentials: {e}; relay log:\n{}", relay.log()));
    drop(client);
    relay.stop();
    source.stop();
}

#[test]
fn relay_serves_two_clients_at_once() {
    let _lock = serial();
    if !elements_present("relay_serves_two_clients_at_once") {
        return;
    }
    let source = SourceServer::start(0);
    let relay = Relay::start(&source.url(), &["--stats-interval", "0.5"], &[]);
    let a = Client::start(&relay.url, None);
    a.wait_frames(0, 10, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("client a: {e}; relay log:\n{}", relay.log()));
    let b = Client::start(&relay.url, None);
    // Both, at the same time: b joins the running shared stream (a forced key frame).
    let (fa, fb) = (a.frames(), b.frames());
    b.wait_frames(fb, 30, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("client b: {e}; relay log:\n{}", relay.log()));
    a.wait_frames(fa, 30, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("client a, with b: {e}"));
    std::thread::sleep(Duration::from_millis(1200));
    let stats = relay.stdout.lock().unwrap().clone();
    assert!(stats.contains("clients 2"), "{stats}");
    drop((a, b));
    relay.stop();
    source.stop();
}

#[test]
fn relay_loops_a_file() {
    let _lock = serial();
    if !elements_present("relay_loops_a_file") {
        return;
    }
    if ["mp4mux", "qtdemux"]
        .iter()
        .any(|f| gst::ElementFactory::find(f).is_none())
    {
        skip("relay_loops_a_file", "mp4mux or qtdemux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=45", "pattern=ball", "!"])
        .args([
            "video/x-raw,width=160,height=120,framerate=30/1",
            "!",
            "x264enc",
            "!",
        ])
        .args(["h264parse", "!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", clip.display()))
        .status()
        .expect("gst-launch-1.0");
    assert!(status.success());
    let uri = glib::filename_to_uri(&clip, None).unwrap().to_string();
    let relay = Relay::start(&uri, &[], &[]);
    let client = Client::start(&relay.url, None);
    // 45 frames a pass: 100 frames need the file played again, twice.
    client
        .wait_frames(0, 100, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; relay log:\n{}", relay.log()));
    drop(client);
    assert!(
        relay
            .log()
            .contains("source ended (end of file): playing it again")
    );

    // What a user runs to look at the relay.
    let mut launch = Command::new("gst-launch-1.0")
        .arg("rtspsrc")
        .arg(format!("location={}", relay.url))
        .args(["!", "decodebin", "!", "fakesink", "num-buffers=100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    let deadline = Instant::now() + FIRST_FRAMES_TIMEOUT;
    let status = loop {
        if let Some(status) = launch.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = launch.kill();
            panic!("gst-launch-1.0 rtspsrc read no 100 frames in {FIRST_FRAMES_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "gst-launch-1.0 rtspsrc: {status}");
    relay.stop();

    // A path, not a URI, is taken as a file.
    let relay = Relay::start(clip.to_str().unwrap(), &[], &[]);
    let client = Client::start(&relay.url, None);
    client
        .wait_frames(0, 10, FIRST_FRAMES_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; relay log:\n{}", relay.log()));
    drop(client);
    assert!(
        relay.log().contains("connecting to file:///"),
        "{}",
        relay.log()
    );
    relay.stop();
}

#[test]
fn relay_rejects_bad_arguments() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nlcl"));
        cmd.arg("relay")
            .args(args)
            .env_remove("NLCL_RELAY_USER")
            .env_remove("NLCL_RELAY_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // No flag takes a password.
    let err = run(&["rtsp://127.0.0.1:1/x", "--password", "p"], &[]);
    assert!(err.contains("--password"), "{err}");
    let err = run(&["/no/such/clip.mp4"], &[]);
    assert!(err.contains("no such file"), "{err}");
    let err = run(&["rtsp://127.0.0.1:1/x"], &[("NLCL_RELAY_USER", "u")]);
    assert!(err.contains("NLCL_RELAY_PASSWORD"), "{err}");
    let err = run(&["rtsp://127.0.0.1:1/x", "--path", "derained"], &[]);
    assert!(err.contains("--path"), "{err}");
}
