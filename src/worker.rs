//! An inference thread that owns a [`Model`] and runs jobs in submission order.
//!
//! Callers convert frame n+1 while the worker runs frame n, and collect results in the order
//! they submitted them (one worker, FIFO channels). Buffers travel with the jobs and come back
//! with the results, so a caller can recycle them and allocate nothing per frame.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::runtime::{Model, ModelInfo};

/// One inference request: `input` holds `n x 3 x h x w` floats; `output` is resized as needed.
#[derive(Debug)]
pub struct Job {
    /// Caller's tag, returned unchanged (sequence number, flush generation, ...).
    pub tag: u64,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

/// A finished job: the buffers back, and either the time inference took or the error.
#[derive(Debug)]
pub struct Done {
    pub tag: u64,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
    pub result: Result<Duration, String>,
}

/// The worker thread stopped (its model panicked, or it was shut down).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the inference worker has stopped")]
pub struct WorkerGone;

/// A thread running a model on jobs in order.
pub struct InferenceWorker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    info: ModelInfo,
}

impl std::fmt::Debug for InferenceWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceWorker")
            .field("info", &self.info)
            .finish()
    }
}

impl InferenceWorker {
    /// Moves `model` onto a new thread named `name`.
    pub fn spawn(mut model: Model, name: &str) -> std::io::Result<Self> {
        let info = model.info().clone();
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for mut job in jobs_rx {
                    let len = job.n * 3 * job.h * job.w;
                    if job.output.len() < len {
                        job.output.resize(len, 0.0);
                    }
                    let started = Instant::now();
                    let result = model
                        .run(&job.input, job.n, job.h, job.w, &mut job.output, None)
                        .map(|()| started.elapsed())
                        .map_err(|e| e.to_string());
                    let done = Done {
                        tag: job.tag,
                        input: job.input,
                        output: job.output,
                        result,
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            })?;
        Ok(InferenceWorker {
            jobs: Some(jobs_tx),
            done: done_rx,
            thread: Some(thread),
            info,
        })
    }

    /// The model's description.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Queues a job. Bounding the number in flight is the caller's business.
    pub fn submit(&self, job: Job) -> Result<(), WorkerGone> {
        self.jobs
            .as_ref()
            .ok_or(WorkerGone)?
            .send(job)
            .map_err(|_| WorkerGone)
    }

    /// Waits for the oldest unfinished job.
    pub fn recv(&self) -> Result<Done, WorkerGone> {
        self.done.recv().map_err(|_| WorkerGone)
    }

    /// The oldest finished job, if one is ready.
    pub fn try_recv(&self) -> Result<Option<Done>, WorkerGone> {
        match self.done.try_recv() {
            Ok(d) => Ok(Some(d)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(WorkerGone),
        }
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        // Closing the job channel ends the thread after the job it is running.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
