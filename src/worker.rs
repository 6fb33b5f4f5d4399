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
//! `cuda`) a `cuda::GpuSession` on whole frames, which converts them on the GPU;
//! [`InferenceWorker::runs_frames`] tells which kind of job to send.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::convert::{PixelFormat, YuvEncoding};
use crate::runtime::{Model, ModelInfo};

/// The frames of a job for a GPU frame session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// YUV matrix and range of the stream.
    pub encoding: YuvEncoding,
}

/// One inference request.
///
/// For a tensor session `input` holds `n x 3 x h x w` floats and `output` is resized as needed.
/// For a GPU frame session `frames` describes `n` tightly packed frames in `frames_in`
/// ([`crate::convert::tight_frame_len`] bytes each); results come back in `frames_out`.
#[derive(Debug, Default)]
pub struct Job {
    /// Caller's tag, returned unchanged (sequence number, flush generation, ...).
    pub tag: u64,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub frames: Option<FrameSpec>,
    pub frames_in: Vec<u8>,
    pub frames_out: Vec<u8>,
}

/// A finished job: the buffers back, and either the time inference took or the error.
#[derive(Debug)]
pub struct Done {
    pub tag: u64,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
    pub frames_in: Vec<u8>,
    pub frames_out: Vec<u8>,
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

    /// Runs `job`; returns the frames whose output was not finite (GPU frame path only).
    fn run(&mut self, job: &mut Job) -> Result<Vec<usize>, String> {
        match self {
            LaneSession::Tensors(model) => {
                if job.frames.is_some() {
                    return Err("a tensor session was sent frames".into());
                }
                let len = job.n * 3 * job.h * job.w;
                if job.output.len() < len {
                    job.output.resize(len, 0.0);
                }
                model
                    .run(&job.input, job.n, job.h, job.w, &mut job.output, None)
                    .map(|()| Vec::new())
                    .map_err(|e| e.to_string())
            }
            #[cfg(feature = "cuda")]
            LaneSession::Frames(gpu) => {
                use crate::convert::{tight_frame, tight_frame_len, tight_frame_mut};
                let spec = job
                    .frames
                    .ok_or("a GPU frame session was sent tensors, not frames")?;
                let (f, w, h) = (spec.format, spec.width, spec.height);
                let size = tight_frame_len(f, w, h)
                    .filter(|&s| s > 0)
                    .ok_or("frame size overflows")?;
                let bytes = size.checked_mul(job.n).ok_or("batch size overflows")?;
                if job.frames_in.len() < bytes {
                    return Err(format!(
                        "{} bytes hold fewer than {} {f} {w}x{h} frames",
                        job.frames_in.len(),
                        job.n
                    ));
                }
                job.frames_out.resize(bytes, 0);
                let inputs = job.frames_in[..bytes]
                    .chunks_exact(size)
                    .map(|c| tight_frame(f, w, h, c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let mut outputs = job
                    .frames_out
                    .chunks_exact_mut(size)
                    .map(|c| tight_frame_mut(f, w, h, c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                gpu.derain(&inputs, spec.encoding, &mut outputs)
                    .map(|times| times.invalid)
                    .map_err(|e| e.to_string())
            }
        }
    }
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
    runs_frames: bool,
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
        let (result, invalid_frames) = match session.run(&mut job) {
            Ok(invalid) => (Ok(started.elapsed()), invalid),
            Err(e) => (Err(e), Vec::new()),
        };
        let finished = Done {
            tag: job.tag,
            input: job.input,
            output: job.output,
            frames_in: job.frames_in,
            frames_out: job.frames_out,
            result,
            invalid_frames,
        };
        if done.send(finished).is_err() {
            break;
        }
    }
}

impl InferenceWorker {
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
    /// ([`Job::frames`]), converted on the GPU.
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
        let runs_frames = models.iter().any(|m| !matches!(m, LaneSession::Tensors(_)));
        let info = models
            .first()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an inference pool needs at least one model",
                )
            })?
            .info()
            .clone();
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
            runs_frames,
        })
    }

    /// Whether jobs must carry frames ([`Job::frames`]) rather than tensors.
    pub fn runs_frames(&self) -> bool {
        self.runs_frames
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
