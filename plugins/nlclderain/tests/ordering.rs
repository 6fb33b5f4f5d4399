//! Property tests (proptest) of the in-order pipeline behind `nlclderain`: under random
//! sequences of pushes, `bypass` switches, drains (serialized events), flushes and a final EOS,
//! with random `batch-size`, `sessions`, `max-in-flight` and `auto-bypass`, every frame pushed
//! since the last flush leaves exactly once, in arrival order, with its own content; nothing a
//! flush discarded leaves after it; the element holds no more frames than its limit; and the
//! stats count what left.
//!
//! The model is the identity, so each frame must come back byte for byte (RGB is exact): a
//! frame that met another frame's result is caught, not only one out of order.

mod common;

use std::collections::HashSet;

use common::*;
use gst::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Small RGB frames: rows of 24 bytes need no padding, and 8x4 fits the model's multiple.
const CAPS: &str = "video/x-raw,format=RGB,width=8,height=4,framerate=30/1";
const FRAME_LEN: usize = 8 * 4 * 3;

/// What the test does next.
#[derive(Debug, Clone)]
enum Op {
    /// Pushes this many frames (pulling what leaves after each).
    Push(u8),
    /// Sets the `bypass` property: frames pushed while it is on leave untouched, in order.
    Bypass(bool),
    /// A serialized custom event: every frame inside must leave before it.
    Drain,
    /// Flush start and stop, then a new segment: the frames inside are discarded.
    Flush,
}

/// The element's settings for one case.
#[derive(Debug, Clone)]
struct Case {
    batch_size: u32,
    sessions: u32,
    max_in_flight: u32,
    auto_bypass: bool,
    ops: Vec<Op>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..=6).prop_map(Op::Push),
        1 => any::<bool>().prop_map(Op::Bypass),
        1 => Just(Op::Drain),
        2 => Just(Op::Flush),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1u32..=5,
        1u32..=3,
        1u32..=8,
        proptest::bool::weighted(0.25),
        proptest::collection::vec(op(), 1..20),
    )
        .prop_map(
            |(batch_size, sessions, max_in_flight, auto_bypass, ops)| Case {
                batch_size,
                sessions,
                max_in_flight,
                auto_bypass,
                ops,
            },
        )
}

/// The content of frame `pts` (ms): distinct per frame.
fn content(pts: u64) -> Vec<u8> {
    bytes(FRAME_LEN, pts as u32 + 1)
}

/// What the test knows about the stream so far.
#[derive(Default)]
struct Book {
    /// Frames pushed since the last flush (pts in ms), in order, and which of them had `bypass`
    /// on when they were pushed.
    pushed: Vec<u64>,
    bypassed: HashSet<u64>,
    /// How many of `pushed` have left.
    out: usize,
    /// Frames pushed before the last flush: none may leave any more.
    discarded: HashSet<u64>,
    /// Frames that left, over the whole run, and how many of them were pushed with `bypass` on.
    total_out: u64,
    total_out_bypassed: u64,
    total_bypassed_in: u64,
}

impl Book {
    /// Pulls every frame the harness holds and checks each is the next one expected.
    fn pull(&mut self, h: &mut gst_check::Harness) -> Result<(), TestCaseError> {
        while let Some(b) = h.try_pull() {
            let pts = b.pts().map(|p| p.mseconds());
            let pts = pts.ok_or_else(|| TestCaseError::fail("a frame left without a pts"))?;
            prop_assert!(
                !self.discarded.contains(&pts),
                "frame {pts} left after a flush discarded it"
            );
            prop_assert!(
                self.out < self.pushed.len(),
                "frame {pts} left, but every frame pushed since the flush already had: {:?}",
                self.pushed
            );
            let want = self.pushed[self.out];
            prop_assert_eq!(pts, want, "frames out of order (or one left twice)");
            let map = b.map_readable().unwrap();
            prop_assert!(
                map.as_slice() == content(pts).as_slice(),
                "frame {pts} left with another frame's content"
            );
            self.out += 1;
            self.total_out += 1;
            if self.bypassed.contains(&pts) {
                self.total_out_bypassed += 1;
            }
        }
        Ok(())
    }

    /// Frames inside the element: all of them, and those waiting for inference.
    fn held(&self) -> (usize, usize) {
        let inside = &self.pushed[self.out..];
        let inference = inside.iter().filter(|p| !self.bypassed.contains(p)).count();
        (inside.len(), inference)
    }
}

fn run_case(model: &std::path::Path, c: &Case) -> Result<(), TestCaseError> {
    let element = gst::ElementFactory::make("nlclderain")
        .property("model-file", model.to_str().unwrap())
        .property("batch-size", c.batch_size)
        .property("sessions", c.sessions)
        .property("max-in-flight", c.max_in_flight)
        .property("threads", 1u32)
        .property("auto-bypass", c.auto_bypass)
        .property("bypass-check-interval", 3u32)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str(CAPS);
    h.play();
    // As the element computes it: max-in-flight, raised to a full batch per session.
    let limit = (c.max_in_flight as usize).max((c.sessions * c.batch_size) as usize);
    let mut book = Book::default();
    let mut next_pts = 0u64;
    let mut bypass = false;
    for op in &c.ops {
        match *op {
            Op::Push(n) => {
                for _ in 0..n {
                    let pts = next_pts;
                    next_pts += 1;
                    let mut buf = gst::Buffer::from_slice(content(pts));
                    buf.get_mut()
                        .unwrap()
                        .set_pts(gst::ClockTime::from_mseconds(pts));
                    book.pushed.push(pts);
                    if bypass {
                        book.bypassed.insert(pts);
                        book.total_bypassed_in += 1;
                    }
                    prop_assert!(h.push(buf).is_ok(), "push of frame {pts} failed");
                    book.pull(&mut h)?;
                    // A push returns once the element is below its limit: when full, it waits
                    // for the oldest frame and lets it go.
                    // (Auto-bypass lets frames through untouched that the book cannot tell
                    // from derained ones: then only the total is checked.)
                    let (inside, inference) = book.held();
                    prop_assert!(
                        c.auto_bypass || inference < limit,
                        "{inference} frames wait for inference, limit {limit}"
                    );
                    prop_assert!(inside <= 4 * limit, "{inside} frames inside, limit {limit}");
                }
            }
            Op::Bypass(on) => {
                bypass = on;
                element.set_property("bypass", on);
            }
            Op::Drain => {
                let s = gst::Structure::new_empty("nlcl-test-drain");
                prop_assert!(h.push_event(gst::event::CustomDownstream::new(s)));
                book.pull(&mut h)?;
                prop_assert_eq!(
                    book.out,
                    book.pushed.len(),
                    "a serialized event must follow every frame inside"
                );
            }
            Op::Flush => {
                // What left before the flush is checked first; the rest is discarded.
                book.pull(&mut h)?;
                prop_assert!(h.push_event(gst::event::FlushStart::new()));
                prop_assert!(h.push_event(gst::event::FlushStop::new(true)));
                h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                    gst::ClockTime,
                >::new()));
                book.discarded.extend(book.pushed.drain(..));
                book.out = 0;
                book.pull(&mut h)?;
            }
        }
    }
    prop_assert!(h.push_event(gst::event::Eos::new()));
    book.pull(&mut h)?;
    prop_assert_eq!(
        book.out,
        book.pushed.len(),
        "EOS must follow every frame pushed since the last flush"
    );
    let mut saw_eos = false;
    while let Some(ev) = h.try_pull_event() {
        saw_eos |= ev.type_() == gst::EventType::Eos;
    }
    prop_assert!(saw_eos, "EOS did not come out");
    let stats = element.property::<gst::Structure>("stats");
    let count = |k: &str| stats.get::<u64>(k).unwrap();
    // `bypass` is counted as frames arrive, derained frames as they leave.
    prop_assert_eq!(count("frames-bypassed"), book.total_bypassed_in);
    let derained_out = book.total_out - book.total_out_bypassed;
    if c.auto_bypass {
        // Auto-bypassed frames count as they arrive (discarded or not), checks as they leave.
        prop_assert!(count("frames-processed") <= derained_out);
        prop_assert!(count("frames-processed") + count("frames-auto-bypassed") >= derained_out);
    } else {
        prop_assert_eq!(count("frames-processed"), derained_out);
        prop_assert_eq!(count("frames-auto-bypassed"), 0);
    }
    prop_assert_eq!(count("frames-invalid-output"), 0);
    Ok(())
}

/// Random batch sizes, sessions, in-flight limits and operation sequences (24 cases, frames of
/// 8x4 pixels, so it runs in seconds; `PROPTEST_CASES=N` runs N instead).
#[test]
fn frames_leave_once_in_order_under_random_batches_sessions_flushes_and_eos() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    let mut runner = TestRunner::new(Config {
        cases: std::env::var_os("PROPTEST_CASES").map_or(24, |_| Config::default().cases),
        // Shrinking restarts an element per try: bound it.
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&case(), |c| run_case(&model, &c)) {
        panic!("{e}");
    }
}
