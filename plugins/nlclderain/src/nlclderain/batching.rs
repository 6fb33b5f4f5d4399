//! The in-order pipeline behind `nlclderain`: frames wait in arrival order; frames to derain
//! are converted into the batch being filled, full batches go to the inference worker, and
//! results are written back into their own frames as those reach the front. A drain runs a
//! partly filled batch; a flush discards the frames inside.
//!
//! Nothing here posts messages or keeps stats: failures come back as a [`Failure`] for the
//! element to post, and what becomes of each frame is told to a [`Host`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use nlcl::convert::{self, ConvertError, FrameRef};
use nlcl::output_view;
use nlcl::rain_meter;
use nlcl::worker::{Done, FrameSpec, InferenceWorker, Job, WorkerGone};

use super::frames::{self, FrameLayout};
use super::rain::{Measured, RainWatch};
use super::settings::FrameSettings;

/// What the pipeline needs from the element that runs it: the per-frame settings, and where
/// to tell what became of each frame (stats, bus messages).
pub(super) trait Host {
    fn frame_settings(&self) -> FrameSettings;
    /// A frame left untouched (bypass, auto-bypass, late pass-through).
    fn left_untouched(&self, arrived: Instant);
    /// The model's output for a frame held NaN or infinity: the frame leaves untouched.
    fn invalid_output(&self);
    /// The rain intensity was measured on a frame.
    fn rain_measured(&self, measured: Measured);
    /// An auto-bypass check ran: the frame leaves untouched.
    fn checked(&self, arrived: Instant);
    /// A frame leaves derained; `inference`: its job's session run, given with the job's
    /// first frame.
    fn processed(&self, inference: Option<Duration>, arrived: Instant);
}

/// Why a frame could not go on; the element posts it as an error message.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing to post beyond the flow return.
    Flow(gst::FlowError),
    /// A frame before the caps.
    NoCaps,
    /// A buffer that does not hold a frame of the caps.
    Unreadable {
        size: usize,
        width: u32,
        height: u32,
        format: gst_video::VideoFormat,
    },
    Conversion(ConvertError),
    Worker(WorkerGone),
    /// The session failed on a job.
    Inference(String),
    /// A job result that does not fit its frame (a bookkeeping bug).
    ResultMismatch,
}

impl From<gst::FlowError> for Failure {
    fn from(e: gst::FlowError) -> Self {
        Failure::Flow(e)
    }
}

impl From<WorkerGone> for Failure {
    fn from(e: WorkerGone) -> Self {
        Failure::Worker(e)
    }
}

impl From<ConvertError> for Failure {
    fn from(e: ConvertError) -> Self {
        Failure::Conversion(e)
    }
}

/// A frame inside the element, in arrival order.
struct Pending {
    buffer: gst::Buffer,
    arrived: Instant,
    /// `None`: leaves untouched (bypass, late pass-through). `Some`: waiting for inference.
    inference: Option<InferenceTicket>,
}

/// What a frame waiting for inference needs to meet its result.
struct InferenceTicket {
    layout: FrameLayout,
    /// Auto-bypass check: run the model to measure the rain, leave the frame untouched.
    check_only: bool,
}

/// The buffers a job travels with, recycled between jobs.
#[derive(Default)]
struct JobBuffers {
    /// Tensors (CPU conversion).
    input: Vec<f32>,
    output: Vec<f32>,
    /// Tightly packed frames (GPU frame path).
    frames_in: Vec<u8>,
    frames_out: Vec<u8>,
}

impl From<Done> for JobBuffers {
    fn from(d: Done) -> Self {
        JobBuffers {
            input: d.input,
            output: d.output,
            frames_in: d.frames_in,
            frames_out: d.frames_out,
        }
    }
}

/// A batch being filled: frames converted into `bufs.input` (or packed into `bufs.frames_in`
/// for the GPU frame path), not yet submitted.
struct Filling {
    bufs: JobBuffers,
    frames: usize,
    th: usize,
    tw: usize,
    /// The frames' description on the GPU frame path.
    spec: Option<FrameSpec>,
}

impl Filling {
    /// Writes `frame` into the next slot of the batch.
    fn push(
        &mut self,
        frame: &FrameRef,
        layout: &FrameLayout,
        size_multiple: usize,
    ) -> Result<(), ConvertError> {
        let slot = self.frames;
        let packed = layout.packed;
        if packed > 0 {
            // GPU frame path: only a copy here, the conversion runs on the GPU.
            let bytes = &mut self.bufs.frames_in;
            bytes.resize((slot + 1) * packed, 0);
            convert::tight_frame_mut(
                layout.format,
                frame.width,
                frame.height,
                &mut bytes[slot * packed..],
            )
            .and_then(|mut dst| convert::copy_frame(frame, &mut dst))?;
        } else {
            let per_frame = 3 * self.th * self.tw;
            let input = &mut self.bufs.input;
            input.resize((slot + 1) * per_frame, 0.0);
            convert::frame_to_tensor(
                frame,
                layout.encoding,
                size_multiple,
                &mut input[slot * per_frame..],
            )?;
        }
        self.frames += 1;
        Ok(())
    }
}

/// A finished job whose frames are being written back one by one.
struct Collected {
    done: Done,
    /// Frames in the job, and how many have left.
    frames: usize,
    taken: usize,
    th: usize,
    tw: usize,
}

/// Everything that exists between `start()` and `stop()`.
pub(super) struct State {
    worker: InferenceWorker,
    size_multiple: usize,
    batch_size: usize,
    /// Frames allowed inside the element (`max-in-flight`, raised for sessions and batches).
    in_flight_limit: usize,
    info: Option<gst_video::VideoInfo>,
    pending: VecDeque<Pending>,
    /// Frames converted and not yet written back (filling, submitted or collected).
    in_flight: usize,
    filling: Option<Filling>,
    /// Jobs submitted to the worker and not yet received.
    jobs_out: usize,
    /// Shapes of the submitted jobs, oldest first: (frames, th, tw).
    job_shapes: VecDeque<(usize, usize, usize)>,
    collected: Option<Collected>,
    /// Results of frames discarded by a flush are still to come back from the worker; they
    /// carry an older generation and are thrown away.
    generation: u64,
    /// Auto-bypass decisions and `nlcl-rain` messages: fed by the frames the model ran on.
    pub rain: RainWatch,
    /// Recycled job buffers so steady state allocates nothing.
    pool: Vec<JobBuffers>,
    alpha: Vec<u8>,
}

impl State {
    pub fn new(worker: InferenceWorker, batch_size: usize, in_flight_limit: usize) -> Self {
        State {
            size_multiple: worker.info().size_multiple,
            worker,
            batch_size,
            in_flight_limit,
            info: None,
            pending: VecDeque::new(),
            in_flight: 0,
            filling: None,
            jobs_out: 0,
            job_shapes: VecDeque::new(),
            collected: None,
            generation: 0,
            rain: RainWatch::new(),
            pool: Vec::new(),
            alpha: Vec::new(),
        }
    }

    /// Takes the negotiated caps; a model with a fixed input size refuses other frame sizes.
    pub fn set_info(&mut self, info: &gst_video::VideoInfo) -> Result<(), String> {
        let (width, height) = (info.width() as usize, info.height() as usize);
        self.worker.info().check_frame_size(width, height)?;
        self.info = Some(info.clone());
        Ok(())
    }

    /// Whether the element holds as many frames as it may: then the next output is waited for,
    /// which is what keeps memory flat.
    pub fn is_full(&self) -> bool {
        let limit = self.in_flight_limit;
        self.in_flight >= limit || self.pending.len() > 4 * limit
    }

    /// Queues a frame that leaves untouched, behind the frames before it (a partly filled
    /// batch is submitted first, so batches stay contiguous).
    pub fn push_untouched(&mut self, buffer: gst::Buffer, arrived: Instant) -> Result<(), Failure> {
        self.submit_filling()?;
        self.pending.push_back(Pending {
            buffer,
            arrived,
            inference: None,
        });
        Ok(())
    }

    /// Queues a frame to derain: converts it into the batch being filled, and submits the batch
    /// once it is full.
    pub fn push_for_inference(
        &mut self,
        buffer: gst::Buffer,
        arrived: Instant,
        check_only: bool,
    ) -> Result<(), Failure> {
        let info = self.info.clone().ok_or(Failure::NoCaps)?;
        let layout = FrameLayout::new(info, self.size_multiple, self.worker.runs_frames())?;
        self.convert_into_batch(&buffer, &layout)?;
        self.in_flight += 1;
        self.pending.push_back(Pending {
            buffer,
            arrived,
            inference: Some(InferenceTicket { layout, check_only }),
        });
        if self
            .filling
            .as_ref()
            .is_some_and(|f| f.frames >= self.batch_size)
        {
            self.submit_filling()?;
        }
        Ok(())
    }

    /// Converts `buffer` into the batch being filled (a new one when none is or when the frame
    /// cannot join it).
    fn convert_into_batch(
        &mut self,
        buffer: &gst::Buffer,
        layout: &FrameLayout,
    ) -> Result<(), Failure> {
        let spec = layout.spec();
        let (th, tw) = (layout.th, layout.tw);
        // A batch of other frames cannot take this one (caps changes drain first, so this is
        // only a safeguard): another tensor size, or on the GPU path another format, size or
        // matrix.
        if self
            .filling
            .as_ref()
            .is_some_and(|f| (f.th, f.tw) != (th, tw) || f.spec != spec)
        {
            self.submit_filling()?;
        }
        let filling = self.filling.get_or_insert_with(|| Filling {
            bufs: self.pool.pop().unwrap_or_default(),
            frames: 0,
            th,
            tw,
            spec,
        });
        let info = &layout.info;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
            .map_err(|_| Failure::Unreadable {
                size: buffer.size(),
                width: info.width(),
                height: info.height(),
                format: info.format(),
            })?;
        filling.push(&frames::frame_view(&frame)?, layout, self.size_multiple)?;
        Ok(())
    }

    /// Hands the batch being filled to the worker (nothing to do when none is filling).
    fn submit_filling(&mut self) -> Result<(), Failure> {
        let Some(mut f) = self.filling.take() else {
            return Ok(());
        };
        // A model with a fixed batch dimension gets every job padded to it.
        let n = match self.worker.info().fixed_batch {
            Some(b) if b > f.frames => {
                if let Some(spec) = f.spec {
                    let per_frame =
                        convert::tight_frame_len(spec.format, spec.width, spec.height).unwrap_or(0);
                    f.bufs.frames_in.resize(b * per_frame, 0);
                } else {
                    f.bufs.input.resize(b * 3 * f.th * f.tw, 0.0);
                }
                b
            }
            _ => f.frames,
        };
        let job = Job {
            tag: self.generation,
            input: f.bufs.input,
            output: f.bufs.output,
            n,
            h: f.th,
            w: f.tw,
            frames: f.spec,
            frames_in: f.bufs.frames_in,
            frames_out: f.bufs.frames_out,
        };
        self.worker.submit(job)?;
        self.jobs_out += 1;
        self.job_shapes.push_back((f.frames, f.th, f.tw));
        Ok(())
    }

    /// The next frame ready to leave, waiting for it when `block` is set.
    pub fn next_output(
        &mut self,
        block: bool,
        host: &impl Host,
    ) -> Result<Option<gst::Buffer>, Failure> {
        let Some(front) = self.pending.front() else {
            return Ok(None);
        };
        if front.inference.is_none() {
            let p = self.pending.pop_front().ok_or(gst::FlowError::Error)?;
            host.left_untouched(p.arrived);
            return Ok(Some(p.buffer));
        }
        if !self.collect(block)? {
            return Ok(None);
        }
        let p = self.pending.pop_front().ok_or(gst::FlowError::Error)?;
        self.in_flight = self.in_flight.saturating_sub(1);
        let mut c = self.collected.take().ok_or(gst::FlowError::Error)?;
        let result = self.finish(p, &mut c, host);
        c.taken += 1;
        if c.taken < c.frames {
            self.collected = Some(c);
        } else {
            self.pool.push(JobBuffers::from(c.done));
        }
        result.map(Some)
    }

    /// Makes the finished job of the front frame `collected`, waiting for it when `block` is
    /// set; `false` when it is not there yet.
    fn collect(&mut self, block: bool) -> Result<bool, Failure> {
        while self.collected.is_none() {
            if self.jobs_out == 0 {
                // The front frame is still in the batch being filled: run it as it is when
                // someone waits for it (downstream, a drain), else let it fill up.
                if !block {
                    return Ok(false);
                }
                if self.filling.is_none() {
                    // Nothing converted is left although a frame waits: bookkeeping bug.
                    return Err(gst::FlowError::Error.into());
                }
                self.submit_filling()?;
            }
            let next = if block {
                self.worker.recv().map(Some)
            } else {
                self.worker.try_recv()
            };
            let Some(done) = next? else {
                return Ok(false);
            };
            self.jobs_out -= 1;
            let (frames, th, tw) = self.job_shapes.pop_front().ok_or(gst::FlowError::Error)?;
            if done.tag != self.generation {
                // Frames discarded by a flush.
                self.pool.push(JobBuffers::from(done));
                continue;
            }
            if let Err(msg) = &done.result {
                let failure = Failure::Inference(msg.clone());
                self.pool.push(JobBuffers::from(done));
                // The job's frames leave with it, so later frames still meet their own results
                // (a batch's frames are contiguous: pass-through frames submit the batch first).
                for _ in 0..frames {
                    if self.pending.front().is_none_or(|p| p.inference.is_none()) {
                        break;
                    }
                    self.pending.pop_front();
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                return Err(failure);
            }
            self.collected = Some(Collected {
                done,
                frames,
                taken: 0,
                th,
                tw,
            });
        }
        Ok(true)
    }

    /// Writes frame `c.taken` of a finished job back into its frame's buffer (or leaves it
    /// untouched: an auto-bypass check, a model output that is not finite), after measuring
    /// the rain the model removed.
    fn finish(
        &mut self,
        pending: Pending,
        c: &mut Collected,
        host: &impl Host,
    ) -> Result<gst::Buffer, Failure> {
        let settings = host.frame_settings();
        let ticket = pending.inference.as_ref().ok_or(gst::FlowError::Error)?;
        let layout = &ticket.layout;
        if (layout.th, layout.tw) != (c.th, c.tw) {
            return Err(Failure::ResultMismatch);
        }
        let (width, height) = (layout.width(), layout.height());
        let mut buffer = pending.buffer;
        let written = if layout.packed > 0 {
            // GPU frame path: the result is the finished frame, tightly packed.
            if c.done.invalid_frames.contains(&c.taken) {
                // The GPU path already gave the input frame back; the buffer is untouched.
                host.invalid_output();
                return Ok(buffer);
            }
            let size = layout.packed;
            let range = c.taken * size..(c.taken + 1) * size;
            let frames_in = c
                .done
                .frames_in
                .get(range.clone())
                .ok_or(gst::FlowError::Error)?;
            let packed = c
                .done
                .frames_out
                .get_mut(range)
                .ok_or(gst::FlowError::Error)?;
            if let Some(intensity) = rain_meter::bytes_intensity(frames_in, packed) {
                host.rain_measured(self.rain.observe(intensity, &settings));
            }
            if ticket.check_only {
                host.checked(pending.arrived);
                return Ok(buffer);
            }
            let format = layout.format;
            let input = convert::tight_frame(format, width, height, frames_in);
            let output = convert::tight_frame_mut(format, width, height, packed);
            if let (Ok(input), Ok(mut output)) = (input, output) {
                output_view::apply_to_frame(settings.output, &input, &mut output)
                    .map_err(|_| gst::FlowError::Error)?;
            }
            layout.write_packed(&mut buffer, packed)?
        } else {
            let per_frame = 3 * c.th * c.tw;
            let range = c.taken * per_frame..(c.taken + 1) * per_frame;
            let input = c
                .done
                .input
                .get(range.clone())
                .ok_or(gst::FlowError::Error)?;
            let output = c.done.output.get_mut(range).ok_or(gst::FlowError::Error)?;
            // A broken model (or one pushed outside its range) can return NaN, which would
            // come out as a black frame: keep the input frame instead, and say so once.
            if output.iter().any(|v| !v.is_finite()) {
                host.invalid_output();
                return Ok(buffer);
            }
            if let Some(intensity) =
                rain_meter::tensor_intensity(input, output, c.th, c.tw, height, width)
            {
                host.rain_measured(self.rain.observe(intensity, &settings));
            }
            if ticket.check_only {
                host.checked(pending.arrived);
                return Ok(buffer);
            }
            output_view::apply_to_tensor(settings.output, input, output, c.th, c.tw, height, width);
            layout.write_tensor(&mut buffer, output, &mut self.alpha)?
        };
        written?;
        // One session run per job, however many frames it holds.
        let inference = if c.taken == 0 {
            c.done.result.as_ref().ok().copied()
        } else {
            None
        };
        host.processed(inference, pending.arrived);
        Ok(buffer)
    }

    /// Forgets the frames inside (flushing seek); their results are discarded on arrival.
    /// Returns how many frames were discarded.
    pub fn discard(&mut self) -> usize {
        let discarded = self.pending.len();
        self.in_flight = 0;
        self.pending.clear();
        self.generation += 1;
        if let Some(f) = self.filling.take() {
            self.pool.push(f.bufs);
        }
        if let Some(c) = self.collected.take() {
            self.pool.push(JobBuffers::from(c.done));
        }
        discarded
    }
}
