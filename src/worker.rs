//! Inference threads that each own a [`Model`] and run jobs in submission order.
//!
//! Callers convert frame n+1 while a worker runs frame n, and collect results in the order
//! they submitted them. With several workers (one session each) frames are dealt out in turn
//! and collected in the same turn, so order holds without sequence numbers: on a CPU, two
//! single-threaded sessions on alternate frames outrun one two-threaded session, because these
//! small convolutions parallelise better across frames than inside one. Buffers travel with the
//! jobs and come back with the results, so a caller can recycle them and allocate nothing per
//! frame.
//!
//! A lane runs either an ONNX Runtime session on tensors the caller converted, or (feature
//! `cuda`) a `cuda::GpuSession` on whole frames, which converts them on the GPU. A job's
//! [`Payload`] is the one or the other; [`InferenceWorker::payload_kind`] tells which a worker
//! takes. [`InferenceWorker::open`] chooses: the GPU frame path when the options ask for the
//! CUDA provider and this build has it, else tensor sessions, and says why the GPU frame path
//! is not used, so callers need no `cuda` feature of their own.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::convert::{PixelFormat, YuvEncoding};
use crate::runtime::{Model, ModelInfo, Provider, RuntimeError, SessionOptions};

/// The frames of a job for a GPU frame session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// YUV matrix and range of the stream.
    pub encoding: YuvEncoding,
}

impl FrameSpec {
    /// Bytes of one such frame tightly packed ([`crate::convert::tight_frame_len`]); `None` on
    /// overflow.
    pub fn frame_len(&self) -> Option<usize> {
        crate::convert::tight_frame_len(self.format, self.width, self.height)
    }
}

/// What a job carries to a session and back: its buffers come back in [`Done::payload`], for
/// the caller to recycle.
#[derive(Debug)]
pub enum Payload {
    /// For a tensor session: `input` holds `n x 3 x h x w` floats (converted by the caller);
    /// the results come back in `output`, resized as needed.
    Tensors {
        input: Vec<f32>,
        output: Vec<f32>,
        n: usize,
        h: usize,
        w: usize,
    },
    /// For a GPU frame session: `n` frames described by `spec`, tightly packed in `frames_in`
    /// ([`FrameSpec::frame_len`] bytes each); the finished frames come back likewise in
    /// `frames_out`.
    Frames {
        spec: FrameSpec,
        n: usize,
        frames_in: Vec<u8>,
        frames_out: Vec<u8>,
    },
}

/// Which [`Payload`] a worker's sessions take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// [`Payload::Tensors`]: the caller converts frames (on the CPU).
    Tensors,
    /// [`Payload::Frames`]: the GPU frame path converts them.
    Frames,
}

impl Payload {
    /// Which kind of payload this is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Tensors { .. } => PayloadKind::Tensors,
            Payload::Frames { .. } => PayloadKind::Frames,
        }
    }
}

/// One inference request.
#[derive(Debug)]
pub struct Job {
    /// Caller's tag, returned unchanged (sequence number, flush generation, ...).
    pub tag: u64,
    pub payload: Payload,
}

/// A finished job: the payload back, and either the time inference took or the error.
#[derive(Debug)]
pub struct Done {
    pub tag: u64,
    pub payload: Payload,
    pub result: Result<Duration, String>,
    /// Frames of the job (indices) whose model output held NaN or infinity. Only the GPU frame
    /// path reports them (its output frame is then the input frame); on the tensor path the
    /// caller sees the output tensor and checks it itself.
    pub invalid_frames: Vec<usize>,
}

/// What one lane runs.
enum LaneSession {
    Tensors(Model),
    #[cfg(feature = "cuda")]
    Frames(Box<crate::cuda::GpuSession>),
}

impl LaneSession {
    fn info(&self) -> &ModelInfo {
        match self {
            LaneSession::Tensors(m) => m.info(),
            #[cfg(feature = "cuda")]
            LaneSession::Frames(g) => g.info(),
        }
    }

    fn kind(&self) -> PayloadKind {
        match self {
            LaneSession::Tensors(_) => PayloadKind::Tensors,
            #[cfg(feature = "cuda")]
            LaneSession::Frames(_) => PayloadKind::Frames,
        }
    }

    /// Runs a job's payload; returns the frames whose output was not finite (GPU frame path
    /// only).
    fn run(&mut self, payload: &mut Payload) -> Result<Vec<usize>, String> {
        match (self, payload) {
            (
                LaneSession::Tensors(model),
                Payload::Tensors {
                    input,
                    output,
                    n,
                    h,
                    w,
                },
            ) => {
                let len = *n * 3 * *h * *w;
                if output.len() < len {
                    output.resize(len, 0.0);
                }
                model
                    .run(input, *n, *h, *w, output, None)
                    .map(|()| Vec::new())
                    .map_err(|e| e.to_string())
            }
            (LaneSession::Tensors(_), Payload::Frames { .. }) => {
                Err("a tensor session was sent frames".into())
            }
            #[cfg(feature = "cuda")]
            (
                LaneSession::Frames(gpu),
                Payload::Frames {
                    spec,
                    n,
                    frames_in,
                    frames_out,
                },
            ) => {
                use crate::convert::{tight_frame, tight_frame_mut};
                let (f, w, h) = (spec.format, spec.width, spec.height);
                let size = spec
                    .frame_len()
                    .filter(|&s| s > 0)
                    .ok_or("frame size overflows")?;
                let bytes = size.checked_mul(*n).ok_or("batch size overflows")?;
                if frames_in.len() < bytes {
                    return Err(format!(
                        "{} bytes hold fewer than {n} {f} {w}x{h} frames",
                        frames_in.len(),
                    ));
                }
                frames_out.resize(bytes, 0);
                let inputs = frames_in[..bytes]
                    .chunks_exact(size)
                    .map(|c| tight_frame(f, w, h, c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let mut outputs = frames_out
                    .chunks_exact_mut(size)
                    .map(|c| tight_frame_mut(f, w, h, c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                gpu.derain(&inputs, spec.encoding, &mut outputs)
                    .map(|times| times.invalid)
                    .map_err(|e| e.to_string())
            }
            #[cfg(feature = "cuda")]
            (LaneSession::Frames(_), Payload::Tensors { .. }) => {
                Err("a GPU frame session was sent tensors, not frames".into())
            }
        }
    }
}

/// Why [`InferenceWorker::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A session could not be opened (the model, ONNX Runtime or a strict provider).
    #[error(transparent)]
    Model(#[from] RuntimeError),
    /// An inference thread could not be started.
    #[error("could not start the inference threads: {0}")]
    Spawn(#[from] std::io::Error),
}

/// The worker thread stopped (its model panicked, or it was shut down).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the inference worker has stopped")]
pub struct WorkerGone;

/// One thread and its channels.
struct Lane {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// Threads running models on jobs; results come back in submission order.
pub struct InferenceWorker {
    lanes: Vec<Lane>,
    /// Lane of the next submission and of the next result to collect.
    next_submit: usize,
    next_recv: usize,
    info: ModelInfo,
    kind: PayloadKind,
}

impl std::fmt::Debug for InferenceWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceWorker")
            .field("sessions", &self.lanes.len())
            .field("info", &self.info)
            .finish()
    }
}

fn run_lane(mut session: LaneSession, jobs: Receiver<Job>, done: Sender<Done>) {
    for mut job in jobs {
        let started = Instant::now();
        let (result, invalid_frames) = match session.run(&mut job.payload) {
            Ok(invalid) => (Ok(started.elapsed()), invalid),
            Err(e) => (Err(e), Vec::new()),
        };
        let finished = Done {
            tag: job.tag,
            payload: job.payload,
            result,
            invalid_frames,
        };
        if done.send(finished).is_err() {
            break;
        }
    }
}

impl InferenceWorker {
    /// Opens `sessions` (at least one) sessions of the model in `bytes` (`origin` names it in
    /// errors) and starts their threads (named after `name`, as [`InferenceWorker::spawn_pool`]).
    ///
    /// With `options.provider` CUDA, the GPU frame path is tried first (feature `cuda`:
    /// [`Payload::Frames`], converted on the GPU); where it cannot start, tensor sessions run
    /// instead (ONNX Runtime's own provider choice and fallback, see
    /// [`ModelInfo::fallback`]), and the second value says why the GPU frame path is not
    /// used. It is `None` when that path runs or was not asked for.
    pub fn open(
        bytes: &[u8],
        origin: &str,
        options: &SessionOptions,
        sessions: usize,
        name: &str,
    ) -> Result<(Self, Option<String>), OpenError> {
        let sessions = sessions.max(1);
        let frame_path_unavailable = if options.provider == Provider::Cuda {
            match Self::open_frame_path(bytes, origin, options, sessions, name) {
                Ok(worker) => return Ok((worker, None)),
                Err(reason) => Some(reason),
            }
        } else {
            None
        };
        let models = (0..sessions)
            .map(|_| Model::from_bytes(bytes, origin, options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Self::spawn_pool(models, name)?, frame_path_unavailable))
    }

    /// The GPU frame path's worker, or why it cannot start.
    #[cfg(feature = "cuda")]
    fn open_frame_path(
        bytes: &[u8],
        origin: &str,
        options: &SessionOptions,
        sessions: usize,
        name: &str,
    ) -> Result<Self, String> {
        let gpu = (0..sessions)
            .map(|_| crate::cuda::GpuSession::open(Some(bytes), origin, options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Self::spawn_gpu_pool(gpu, name).map_err(|e| e.to_string())
    }

    /// The GPU frame path's worker: not in a build without the `cuda` feature.
    #[cfg(not(feature = "cuda"))]
    fn open_frame_path(
        _bytes: &[u8],
        _origin: &str,
        _options: &SessionOptions,
        _sessions: usize,
        _name: &str,
    ) -> Result<Self, String> {
        Err("this build of nlcl has no `cuda` feature".to_string())
    }

    /// Moves `model` onto a new thread named `name`.
    pub fn spawn(model: Model, name: &str) -> std::io::Result<Self> {
        Self::spawn_pool(vec![model], name)
    }

    /// Moves each model onto its own thread (`name-0`, `name-1`, ...); jobs are dealt to them
    /// in turn. The models should be sessions of the same network; at least one is needed.
    pub fn spawn_pool(models: Vec<Model>, name: &str) -> std::io::Result<Self> {
        Self::spawn_lanes(models.into_iter().map(LaneSession::Tensors).collect(), name)
    }

    /// Like [`InferenceWorker::spawn_pool`] for GPU frame sessions: jobs carry frames
    /// ([`Payload::Frames`]), converted on the GPU.
    #[cfg(feature = "cuda")]
    pub fn spawn_gpu_pool(
        sessions: Vec<crate::cuda::GpuSession>,
        name: &str,
    ) -> std::io::Result<Self> {
        Self::spawn_lanes(
            sessions
                .into_iter()
                .map(|s| LaneSession::Frames(Box::new(s)))
                .collect(),
            name,
        )
    }

    fn spawn_lanes(models: Vec<LaneSession>, name: &str) -> std::io::Result<Self> {
        let first = models.first().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an inference pool needs at least one model",
            )
        })?;
        let (info, kind) = (first.info().clone(), first.kind());
        let single = models.len() == 1;
        let mut lanes = Vec::with_capacity(models.len());
        for (i, model) in models.into_iter().enumerate() {
            let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
            let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
            let thread_name = if single {
                name.to_string()
            } else {
                format!("{name}-{i}")
            };
            let thread = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || run_lane(model, jobs_rx, done_tx))?;
            lanes.push(Lane {
                jobs: Some(jobs_tx),
                done: done_rx,
                thread: Some(thread),
            });
        }
        Ok(InferenceWorker {
            lanes,
            next_submit: 0,
            next_recv: 0,
            info,
            kind,
        })
    }

    /// Which payload jobs must carry: every session of a worker takes the same kind (a job of
    /// the other kind fails).
    pub fn payload_kind(&self) -> PayloadKind {
        self.kind
    }

    /// The model's description (of the first session).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Number of sessions (threads) running jobs.
    pub fn sessions(&self) -> usize {
        self.lanes.len()
    }

    /// Queues a job. Bounding the number in flight is the caller's business.
    pub fn submit(&mut self, job: Job) -> Result<(), WorkerGone> {
        let lane = &self.lanes[self.next_submit];
        lane.jobs
            .as_ref()
            .ok_or(WorkerGone)?
            .send(job)
            .map_err(|_| WorkerGone)?;
        self.next_submit = (self.next_submit + 1) % self.lanes.len();
        Ok(())
    }

    /// Waits for the oldest unfinished job.
    pub fn recv(&mut self) -> Result<Done, WorkerGone> {
        let done = self.lanes[self.next_recv]
            .done
            .recv()
            .map_err(|_| WorkerGone)?;
        self.next_recv = (self.next_recv + 1) % self.lanes.len();
        Ok(done)
    }

    /// The oldest job's result, if it is finished.
    pub fn try_recv(&mut self) -> Result<Option<Done>, WorkerGone> {
        match self.lanes[self.next_recv].done.try_recv() {
            Ok(d) => {
                self.next_recv = (self.next_recv + 1) % self.lanes.len();
                Ok(Some(d))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(WorkerGone),
        }
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        // Closing the job channels ends each thread after the job it is running.
        for lane in &mut self.lanes {
            lane.jobs = None;
        }
        for lane in &mut self.lanes {
            if let Some(t) = lane.thread.take() {
                let _ = t.join();
            }
        }
    }
}
