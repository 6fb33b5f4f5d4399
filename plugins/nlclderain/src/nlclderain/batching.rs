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
use nlcl::worker::{Done, InferenceWorker, Job, Payload, WorkerGone};

use super::frames::{self, FrameLayout, Slot};
use super::rain::{Measured, RainWatch};
use super::settings::FrameSettings;
use super::smoothing::Smoothing;

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
    /// The frame, and its slot in a job (which payload it travels in).
    layout: FrameLayout,
    /// Auto-bypass check: run the model to measure the rain, leave the frame untouched.
    check_only: bool,
}

/// The slot a payload's frames have: frames of another slot cannot join it.
fn slot_of(payload: &Payload) -> Slot {
    match payload {
        Payload::Tensors { h, w, .. } => Slot::Tensor { th: *h, tw: *w },
        Payload::Frames { spec, .. } => Slot::Packed(*spec),
    }
}

/// An empty payload for frames of `slot`, reusing the buffers of `recycled` (a finished or
/// discarded job's payload) when it is of the same kind.
fn payload_for(slot: Slot, recycled: Option<Payload>) -> Payload {
    match slot {
        Slot::Tensor { th, tw } => {
            let (input, output) = match recycled {
                Some(Payload::Tensors { input, output, .. }) => (input, output),
                _ => Default::default(),
            };
            Payload::Tensors {
                input,
                output,
                n: 0,
                h: th,
                w: tw,
            }
        }
        Slot::Packed(spec) => {
            let (frames_in, frames_out) = match recycled {
                Some(Payload::Frames {
                    frames_in,
                    frames_out,
                    ..
                }) => (frames_in, frames_out),
                _ => Default::default(),
            };
            Payload::Frames {
                spec,
                n: 0,
                frames_in,
                frames_out,
            }
        }
    }
}

/// A batch being filled: frames converted into a tensor payload (or packed into a frame
/// payload for the GPU frame path), not yet submitted. The payload's shape is the batch's
/// [`Slot`].
struct Filling {
    payload: Payload,
    frames: usize,
}

impl Filling {
    /// Writes `frame` into the next place of the batch.
    fn push(
        &mut self,
        frame: &FrameRef,
        layout: &FrameLayout,
        size_multiple: usize,
    ) -> Result<(), ConvertError> {
        let index = self.frames;
        match &mut self.payload {
            Payload::Frames {
                spec, frames_in, ..
            } => {
                // GPU frame path: only a copy here, the conversion runs on the GPU.
                let packed = spec.frame_len().ok_or(ConvertError::SizeOverflow {
                    format: spec.format,
                    width: spec.width,
                    height: spec.height,
                })?;
                frames_in.resize((index + 1) * packed, 0);
                convert::tight_frame_mut(
                    spec.format,
                    frame.width,
                    frame.height,
                    &mut frames_in[index * packed..],
                )
                .and_then(|mut dst| convert::copy_frame(frame, &mut dst))?;
            }
            Payload::Tensors { input, h, w, .. } => {
                let per_frame = 3 * *h * *w;
                input.resize((index + 1) * per_frame, 0.0);
                convert::frame_to_tensor(
                    frame,
                    layout.encoding,
                    size_multiple,
                    &mut input[index * per_frame..],
                )?;
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// The payload to submit: `n` frames, those beyond the ones written zero-filled (a model
    /// with a fixed batch dimension gets every job padded to it).
    fn into_payload(self, n: usize) -> Payload {
        let mut payload = self.payload;
        match &mut payload {
            Payload::Tensors {
                input,
                n: len,
                h,
                w,
                ..
            } => {
                if n > self.frames {
                    input.resize(n * 3 * *h * *w, 0.0);
                }
                *len = n;
            }
            Payload::Frames {
                spec,
                n: len,
                frames_in,
                ..
            } => {
                if n > self.frames {
                    frames_in.resize(n * spec.frame_len().unwrap_or(0), 0);
                }
                *len = n;
            }
        }
        payload
    }
}

/// A finished job whose frames are being written back one by one.
struct Collected {
    done: Done,
    /// Frames in the job, and how many have left.
    frames: usize,
    taken: usize,
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
    /// Jobs submitted since the start (telemetry: `batches-submitted`).
    jobs_submitted: u64,
    /// Frames of the submitted jobs (padding excluded), oldest first.
    job_frames: VecDeque<usize>,
    collected: Option<Collected>,
    /// Results of frames discarded by a flush are still to come back from the worker; they
    /// carry an older generation and are thrown away.
    generation: u64,
    /// Auto-bypass decisions and `nlcl-rain` messages: fed by the frames the model ran on.
    pub rain: RainWatch,
    /// `temporal-smoothing`, across the frames written back in order.
    smoothing: Smoothing,
    /// Payloads of finished jobs, recycled so steady state allocates nothing.
    pool: Vec<Payload>,
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
            jobs_submitted: 0,
            job_frames: VecDeque::new(),
            collected: None,
            generation: 0,
            rain: RainWatch::new(),
            smoothing: Smoothing::new(),
            pool: Vec::new(),
            alpha: Vec::new(),
        }
    }

    /// Takes the negotiated caps; a model with a fixed input size refuses other frame sizes.
    pub fn set_info(&mut self, info: &gst_video::VideoInfo) -> Result<(), String> {
        let (width, height) = (info.width() as usize, info.height() as usize);
        self.worker.info().check_frame_size(width, height)?;
        self.info = Some(info.clone());
        self.smoothing.reset();
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
        let layout = FrameLayout::new(info, self.size_multiple, self.worker.payload_kind())?;
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
        // A batch of other frames cannot take this one (caps changes drain first, so this is
        // only a safeguard): another tensor size, or on the GPU path another format, size or
        // matrix.
        if self
            .filling
            .as_ref()
            .is_some_and(|f| slot_of(&f.payload) != layout.slot)
        {
            self.submit_filling()?;
        }
        let filling = self.filling.get_or_insert_with(|| Filling {
            payload: payload_for(layout.slot, self.pool.pop()),
            frames: 0,
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

    /// Jobs handed to the worker since the start.
    pub fn jobs_submitted(&self) -> u64 {
        self.jobs_submitted
    }

    /// Hands the batch being filled to the worker (nothing to do when none is filling).
    fn submit_filling(&mut self) -> Result<(), Failure> {
        let Some(f) = self.filling.take() else {
            return Ok(());
        };
        // A model with a fixed batch dimension gets every job padded to it.
        let n = match self.worker.info().fixed_batch {
            Some(b) if b > f.frames => b,
            _ => f.frames,
        };
        let frames = f.frames;
        let job = Job {
            tag: self.generation,
            payload: f.into_payload(n),
        };
        self.worker.submit(job)?;
        self.jobs_out += 1;
        self.jobs_submitted += 1;
        self.job_frames.push_back(frames);
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
            // The next derained frame does not follow the last one.
            self.smoothing.reset();
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
            self.pool.push(c.done.payload);
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
            let frames = self.job_frames.pop_front().ok_or(gst::FlowError::Error)?;
            if done.tag != self.generation {
                // Frames discarded by a flush.
                self.pool.push(done.payload);
                continue;
            }
            if let Err(msg) = &done.result {
                let failure = Failure::Inference(msg.clone());
                self.pool.push(done.payload);
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
        if slot_of(&c.done.payload) != layout.slot {
            return Err(Failure::ResultMismatch);
        }
        let (width, height) = (layout.width(), layout.height());
        let mut buffer = pending.buffer;
        let written = match &mut c.done.payload {
            Payload::Frames {
                spec,
                frames_in,
                frames_out,
                ..
            } => {
                // GPU frame path: the result is the finished frame, tightly packed.
                if c.done.invalid_frames.contains(&c.taken) {
                    // The GPU path already gave the input frame back; the buffer is untouched.
                    self.smoothing.reset();
                    host.invalid_output();
                    return Ok(buffer);
                }
                let size = spec.frame_len().ok_or(gst::FlowError::Error)?;
                let range = c.taken * size..(c.taken + 1) * size;
                let frames_in = frames_in.get(range.clone()).ok_or(gst::FlowError::Error)?;
                let packed = frames_out.get_mut(range).ok_or(gst::FlowError::Error)?;
                if let Some(intensity) = rain_meter::bytes_intensity(frames_in, packed) {
                    host.rain_measured(self.rain.observe(intensity, &settings));
                }
                if ticket.check_only {
                    self.smoothing.reset();
                    host.checked(pending.arrived);
                    return Ok(buffer);
                }
                if let Some(smoother) = self.smoothing.for_frame(&settings) {
                    smoother.smooth_bytes(frames_in, packed);
                }
                let format = layout.format;
                let input = convert::tight_frame(format, width, height, frames_in);
                let output = convert::tight_frame_mut(format, width, height, packed);
                if let (Ok(input), Ok(mut output)) = (input, output) {
                    output_view::apply_to_frame(settings.output, &input, &mut output)
                        .map_err(|_| gst::FlowError::Error)?;
                }
                layout.write_packed(&mut buffer, packed)?
            }
            Payload::Tensors {
                input,
                output,
                h,
                w,
                ..
            } => {
                let (th, tw) = (*h, *w);
                let per_frame = 3 * th * tw;
                let range = c.taken * per_frame..(c.taken + 1) * per_frame;
                let input = input.get(range.clone()).ok_or(gst::FlowError::Error)?;
                let output = output.get_mut(range).ok_or(gst::FlowError::Error)?;
                // A broken model (or one pushed outside its range) can return NaN, which would
                // come out as a black frame: keep the input frame instead, and say so once.
                if output.iter().any(|v| !v.is_finite()) {
                    self.smoothing.reset();
                    host.invalid_output();
                    return Ok(buffer);
                }
                if let Some(intensity) =
                    rain_meter::tensor_intensity(input, output, th, tw, height, width)
                {
                    host.rain_measured(self.rain.observe(intensity, &settings));
                }
                if ticket.check_only {
                    self.smoothing.reset();
                    host.checked(pending.arrived);
                    return Ok(buffer);
                }
                output_view::apply_to_tensor(settings.output, input, output, th, tw, height, width);
                // Smoothed as bytes, after the write-back: the input frame's bytes are kept
                // first, since the result is written over them.
                let smoothing = self.smoothing.for_frame(&settings).is_some();
                if smoothing {
                    self.smoothing.keep_input(&buffer)?;
                }
                let written =
                    layout.write_tensor(&mut buffer, output, (th, tw), &mut self.alpha)?;
                if smoothing && written.is_ok() {
                    self.smoothing.smooth_buffer(&mut buffer)?;
                }
                written
            }
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
        self.smoothing.reset();
        self.in_flight = 0;
        self.pending.clear();
        self.generation += 1;
        if let Some(f) = self.filling.take() {
            self.pool.push(f.payload);
        }
        if let Some(c) = self.collected.take() {
            self.pool.push(c.done.payload);
        }
        discarded
    }
}
