//! The CUDA frame path (cargo feature `cuda`): frames go to the GPU once, are converted to and
//! from the model's tensor layout there, and reach ONNX Runtime's CUDA execution provider
//! through I/O binding, with no host round trip between conversion and inference.
//!
//! Per frame (or batch of frames), on one CUDA stream:
//! 1. the caller's frames are copied into a page-locked (pinned) host buffer, tightly packed
//!    ([`crate::convert::tight_frame`]);
//! 2. one asynchronous copy moves them into a device buffer;
//! 3. an NVRTC-compiled kernel writes the padded NCHW `[-1, 1]` tensor straight into the input
//!    tensor ONNX Runtime allocated on the device;
//! 4. ONNX Runtime runs the model on the same stream (it is given the stream as its compute
//!    stream) into an output tensor that also stays on the device;
//! 5. a second kernel writes the output frames, and one copy brings them back to pinned memory.
//!
//! Inputs and outputs are tensors that ONNX Runtime allocated itself (owned values); binding a
//! *borrowed* device tensor (`TensorRef::from_raw`) deadlocks in ort rc.15's `bind_input`.
//! Several [`GpuSession`]s (one stream each, see [`crate::worker`]) overlap one frame's
//! copies with another's compute.
//!
//! Everything is loaded at run time (the CUDA driver, NVRTC, ONNX Runtime's CUDA provider), so
//! this builds on machines without CUDA; [`probe`] says whether a GPU can be used.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PinnedHostSlice,
    PushKernelArg,
};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::value::Tensor;

use crate::convert::{
    self, ChromaUpsampling, ConvertError, FrameMut, FrameRef, PixelFormat, YuvEncoding,
};
use crate::runtime::{self, Model, ModelInfo, Provider, RuntimeError, SessionOptions};

/// The conversion kernels (CUDA C), compiled once per session with NVRTC.
pub const KERNELS_SRC: &str = include_str!("cuda_kernels.cu");

/// Errors of the CUDA frame path.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no CUDA driver found (libcuda.so could not be loaded): this machine has no NVIDIA GPU or driver"
    )]
    NoDriver,
    #[error(
        "NVRTC (libnvrtc.so, the CUDA run-time compiler) could not be loaded: install the CUDA toolkit or the nvidia-cuda-nvrtc wheel and add its lib folder to LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    #[error("CUDA device {ordinal} does not exist ({count} device(s) found)")]
    NoSuchDevice { ordinal: usize, count: usize },
    #[error("CUDA error: {0}")]
    Driver(String),
    #[error("NVRTC could not compile the conversion kernels: {0}")]
    Compile(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("bad frame: {0}")]
    Frame(#[from] ConvertError),
    #[error("bad input: {0}")]
    BadInput(String),
}

fn driver(e: impl std::fmt::Display) -> GpuError {
    GpuError::Driver(e.to_string())
}

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability, e.g. `(9, 0)`.
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
}

impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GPU {}: {} (compute capability {}.{}, {:.1} GiB)",
            self.ordinal,
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.total_memory as f64 / (1u64 << 30) as f64
        )
    }
}

/// Checks that the CUDA driver and NVRTC load and that GPU `ordinal` exists, without panicking
/// where there is none (cudarc panics when asked for a context without a driver).
pub fn probe(ordinal: usize) -> Result<GpuInfo, GpuError> {
    // SAFETY: only tries to dlopen the libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(GpuError::NoDriver);
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(GpuError::NoNvrtc);
    }
    let count = CudaContext::device_count().map_err(driver)?;
    let count = usize::try_from(count).unwrap_or(0);
    if ordinal >= count {
        return Err(GpuError::NoSuchDevice { ordinal, count });
    }
    let ctx = CudaContext::new(ordinal).map_err(driver)?;
    Ok(GpuInfo {
        ordinal,
        name: ctx.name().map_err(driver)?,
        compute_capability: ctx.compute_capability().map_err(driver)?,
        total_memory: ctx.total_mem().map_err(driver)?,
    })
}

/// The conversion kernels on one stream.
pub struct GpuConverter {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    packed_to_tensor: CudaFunction,
    yuv420_to_tensor: CudaFunction,
    tensor_to_packed: CudaFunction,
    tensor_to_yuv420: CudaFunction,
    flag_nonfinite: CudaFunction,
}

impl std::fmt::Debug for GpuConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuConverter")
            .field("ordinal", &self.ctx.ordinal())
            .finish()
    }
}

/// Threads per block of the conversion kernels.
const BLOCK: u32 = 256;

fn grid(threads: usize, frames: usize) -> Result<LaunchConfig, GpuError> {
    let blocks = u32::try_from(threads.div_ceil(BLOCK as usize))
        .map_err(|_| GpuError::BadInput(format!("{threads} threads per frame is too many")))?;
    let frames = u32::try_from(frames)
        .ok()
        .filter(|&n| n <= 65_535)
        .ok_or_else(|| GpuError::BadInput(format!("{frames} frames in one batch is too many")))?;
    Ok(LaunchConfig {
        grid_dim: (blocks.max(1), frames, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn to_i32(v: usize, what: &str) -> Result<i32, GpuError> {
    i32::try_from(v).map_err(|_| GpuError::BadInput(format!("{what} {v} is too large")))
}

/// Shape of one conversion: `n` frames of `format` at `width x height`, tightly packed, to or
/// from an `n x 3 x ph x pw` tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub n: usize,
    pub ph: usize,
    pub pw: usize,
}

/// A [`FrameShape`] in the kernels' argument types: all frames' bytes, one frame's bytes,
/// frame and tensor sizes.
struct KernelDims {
    total: usize,
    fb: i64,
    w: i32,
    h: i32,
    pw: i32,
    ph: i32,
}

impl FrameShape {
    /// Bytes of one tightly packed frame.
    pub fn frame_bytes(&self) -> Result<usize, GpuError> {
        self.format
            .tight_layout(self.width, self.height)
            .map(|(_, _, total)| total)
            .ok_or_else(|| GpuError::BadInput(format!("{}x{} overflows", self.width, self.height)))
    }

    /// The shape as the kernels take it, checked.
    fn kernel_dims(&self) -> Result<KernelDims, GpuError> {
        self.check()?;
        let frame_bytes = self.frame_bytes()?;
        let too_large = || GpuError::BadInput(format!("{self:?} is too large"));
        // The kernels index pixels with 32-bit ints.
        for pixels in [
            self.width.checked_mul(self.height),
            self.pw.checked_mul(self.ph),
        ] {
            if pixels.is_none_or(|p| p > i32::MAX as usize / 4) {
                return Err(too_large());
            }
        }
        Ok(KernelDims {
            total: frame_bytes.checked_mul(self.n).ok_or_else(too_large)?,
            fb: i64::try_from(frame_bytes).map_err(|_| too_large())?,
            w: to_i32(self.width, "width")?,
            h: to_i32(self.height, "height")?,
            pw: to_i32(self.pw, "width")?,
            ph: to_i32(self.ph, "height")?,
        })
    }

    fn check(&self) -> Result<(), GpuError> {
        if self.width == 0 || self.height == 0 || self.n == 0 {
            return Err(GpuError::BadInput(format!(
                "empty shape {}x{} x{}",
                self.width, self.height, self.n
            )));
        }
        if self.ph < self.height || self.pw < self.width {
            return Err(GpuError::BadInput(format!(
                "tensor {}x{} is smaller than the frame {}x{}",
                self.pw, self.ph, self.width, self.height
            )));
        }
        Ok(())
    }
}

impl GpuConverter {
    /// Compiles the kernels for GPU `ordinal` and creates a stream for them.
    pub fn new(ordinal: usize) -> Result<Self, GpuError> {
        probe(ordinal)?;
        let ctx = CudaContext::new(ordinal).map_err(driver)?;
        // Each converter works on its own stream and buffers; cudarc's cross-stream event
        // tracking would only add work.
        // SAFETY: no buffer of this context is shared between streams.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver)?;
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(
            KERNELS_SRC,
            cudarc::nvrtc::CompileOptions {
                // Bit-identical to the CPU conversion: no fused multiply-adds, IEEE division
                // and denormals.
                fmad: Some(false),
                ftz: Some(false),
                prec_div: Some(true),
                name: Some("nlcl_convert.cu".into()),
                ..Default::default()
            },
        )
        .map_err(|e| GpuError::Compile(e.to_string()))?;
        let module = ctx.load_module(ptx).map_err(driver)?;
        let f = |name: &str| module.load_function(name).map_err(driver);
        Ok(GpuConverter {
            packed_to_tensor: f("packed_to_tensor")?,
            yuv420_to_tensor: f("yuv420_to_tensor")?,
            tensor_to_packed: f("tensor_to_packed")?,
            tensor_to_yuv420: f("tensor_to_yuv420")?,
            flag_nonfinite: f("flag_nonfinite")?,
            _module: module,
            stream,
            ctx,
        })
    }

    /// The stream every operation of this converter is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The CUDA context (the device's primary context, shared with ONNX Runtime).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Queues frames (device buffer `src`, `shape.n` tightly packed frames) -> tensor at device
    /// address `dst` (`n x 3 x ph x pw` floats).
    ///
    /// # Safety
    /// `dst` must be a device allocation of at least `n * 3 * ph * pw` floats in this context
    /// that stays alive until the stream has run the kernel.
    pub unsafe fn frames_to_tensor(
        &self,
        src: &CudaSlice<u8>,
        shape: FrameShape,
        encoding: YuvEncoding,
        upsampling: ChromaUpsampling,
        dst: u64,
    ) -> Result<(), GpuError> {
        let d = shape.kernel_dims()?;
        if src.len() < d.total {
            return Err(GpuError::BadInput("frame buffer too short".into()));
        }
        let cfg = grid(shape.pw * shape.ph, shape.n)?;
        match shape.format.rgb_offsets() {
            Some([r, g, b]) => {
                let bpp = to_i32(shape.format.bytes_per_pixel().unwrap_or(3), "bpp")?;
                let (r, g, b) = (r as i32, g as i32, b as i32);
                let scale = 2.0f32 / 255.0;
                let mut l = self.stream.launch_builder(&self.packed_to_tensor);
                l.arg(src)
                    .arg(&d.fb)
                    .arg(&d.w)
                    .arg(&d.h)
                    .arg(&bpp)
                    .arg(&r)
                    .arg(&g)
                    .arg(&b)
                    .arg(&scale)
                    .arg(&dst)
                    .arg(&d.pw)
                    .arg(&d.ph);
                // SAFETY: argument list matches the kernel signature; bounds checked above.
                unsafe { l.launch(cfg) }.map_err(driver)?;
            }
            None => {
                let c = convert::yuv_to_rgb_coefficients(encoding);
                let nv12 = i32::from(shape.format == PixelFormat::Nv12);
                let bilinear = i32::from(upsampling == ChromaUpsampling::Bilinear);
                let mut l = self.stream.launch_builder(&self.yuv420_to_tensor);
                l.arg(src)
                    .arg(&d.fb)
                    .arg(&d.w)
                    .arg(&d.h)
                    .arg(&nv12)
                    .arg(&bilinear);
                for v in &c {
                    l.arg(v);
                }
                l.arg(&dst).arg(&d.pw).arg(&d.ph);
                // SAFETY: as above.
                unsafe { l.launch(cfg) }.map_err(driver)?;
            }
        }
        Ok(())
    }

    /// Queues a check of the tensor at device address `src` (`n x 3 x ph x pw` floats): sets
    /// `flags[i]` to 1 when frame `i` holds a NaN or an infinity (`flags` must be zeroed).
    ///
    /// # Safety
    /// `src` must be a device allocation of at least `n * 3 * ph * pw` floats in this context.
    pub unsafe fn flag_nonfinite(
        &self,
        src: u64,
        shape: FrameShape,
        flags: &mut CudaSlice<i32>,
    ) -> Result<(), GpuError> {
        // Checks the shape (sizes, batch) as the conversions do.
        shape.kernel_dims()?;
        if flags.len() < shape.n {
            return Err(GpuError::BadInput("flag buffer too short".into()));
        }
        let per_frame = 3 * shape.ph * shape.pw;
        let cfg = grid(per_frame, shape.n)?;
        let per_frame = per_frame as i64;
        let mut l = self.stream.launch_builder(&self.flag_nonfinite);
        l.arg(&src).arg(&per_frame).arg(&mut *flags);
        // SAFETY: argument list matches the kernel signature; sizes checked above.
        unsafe { l.launch(cfg) }.map_err(driver)?;
        Ok(())
    }

    /// Queues tensor at device address `src` -> frames in `dst`; the fourth byte of 4-byte
    /// formats comes from `alpha_src` (frames of the same shape) when given, else 255.
    ///
    /// # Safety
    /// `src` must be a device allocation of at least `n * 3 * ph * pw` floats in this context.
    pub unsafe fn tensor_to_frames(
        &self,
        src: u64,
        shape: FrameShape,
        encoding: YuvEncoding,
        alpha_src: Option<&CudaSlice<u8>>,
        dst: &mut CudaSlice<u8>,
    ) -> Result<(), GpuError> {
        let d = shape.kernel_dims()?;
        if dst.len() < d.total || alpha_src.is_some_and(|a| a.len() < d.total) {
            return Err(GpuError::BadInput("frame buffer too short".into()));
        }
        match shape.format.rgb_offsets() {
            Some([r, g, b]) => {
                let cfg = grid(shape.width * shape.height, shape.n)?;
                let bpp = shape.format.bytes_per_pixel().unwrap_or(3);
                let ao: i32 = if bpp == 4 {
                    shape.format.alpha_offset().map_or(-1, |a| a as i32)
                } else {
                    -1
                };
                let bpp = bpp as i32;
                let (r, g, b) = (r as i32, g as i32, b as i32);
                let null: u64 = 0;
                let mut l = self.stream.launch_builder(&self.tensor_to_packed);
                l.arg(&src).arg(&d.pw).arg(&d.ph).arg(&mut *dst);
                match alpha_src {
                    Some(a) => l.arg(a),
                    None => l.arg(&null),
                };
                l.arg(&d.fb)
                    .arg(&d.w)
                    .arg(&d.h)
                    .arg(&bpp)
                    .arg(&r)
                    .arg(&g)
                    .arg(&b)
                    .arg(&ao);
                // SAFETY: argument list matches the kernel signature; bounds checked above.
                unsafe { l.launch(cfg) }.map_err(driver)?;
            }
            None => {
                let cfg = grid(shape.width.div_ceil(2) * shape.height.div_ceil(2), shape.n)?;
                let c = convert::rgb_to_yuv_coefficients(encoding);
                let nv12 = i32::from(shape.format == PixelFormat::Nv12);
                let mut l = self.stream.launch_builder(&self.tensor_to_yuv420);
                l.arg(&src)
                    .arg(&d.pw)
                    .arg(&d.ph)
                    .arg(&mut *dst)
                    .arg(&d.fb)
                    .arg(&d.w)
                    .arg(&d.h)
                    .arg(&nv12);
                for v in &c {
                    l.arg(v);
                }
                // SAFETY: as above.
                unsafe { l.launch(cfg) }.map_err(driver)?;
            }
        }
        Ok(())
    }

    /// Converts one frame to a tensor on the GPU and returns it (a check of the kernels
    /// against [`convert::frame_to_tensor_with`]; allocates, not for the frame loop).
    pub fn frame_to_tensor_host(
        &self,
        frame: &FrameRef,
        encoding: impl Into<YuvEncoding>,
        upsampling: ChromaUpsampling,
        pad_multiple: usize,
    ) -> Result<(Vec<f32>, usize, usize), GpuError> {
        let encoding = encoding.into();
        let (ph, pw) = convert::padded_size(frame.height, frame.width, pad_multiple);
        let shape = FrameShape {
            format: frame.format,
            width: frame.width,
            height: frame.height,
            n: 1,
            ph,
            pw,
        };
        let mut packed = vec![0u8; shape.frame_bytes()?];
        convert::copy_frame(
            frame,
            &mut convert::tight_frame_mut(frame.format, frame.width, frame.height, &mut packed)?,
        )?;
        let src = self.stream.clone_htod(&packed).map_err(driver)?;
        let dst = self
            .stream
            .alloc_zeros::<f32>(3 * ph * pw)
            .map_err(driver)?;
        let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(&dst, &self.stream);
        // SAFETY: `dst` holds 3 * ph * pw floats and outlives the synchronisation below.
        unsafe { self.frames_to_tensor(&src, shape, encoding, upsampling, ptr)? };
        let out = self.stream.clone_dtoh(&dst).map_err(driver)?;
        Ok((out, ph, pw))
    }

    /// Converts a `3 x ph x pw` tensor to one tightly packed frame on the GPU (a check of the
    /// kernels against [`convert::tensor_to_frame`]); `shape.n` must be 1. `alpha_from` is a
    /// tightly packed frame of the same format and size.
    pub fn tensor_to_frame_host(
        &self,
        tensor: &[f32],
        shape: FrameShape,
        encoding: impl Into<YuvEncoding>,
        alpha_from: Option<&[u8]>,
    ) -> Result<Vec<u8>, GpuError> {
        let encoding = encoding.into();
        let (ph, pw) = (shape.ph, shape.pw);
        if shape.n != 1 {
            return Err(GpuError::BadInput("one frame at a time".into()));
        }
        shape.check()?;
        if tensor.len() < 3 * ph * pw {
            return Err(GpuError::BadInput("tensor too short".into()));
        }
        let bytes = shape.frame_bytes()?;
        let src = self.stream.clone_htod(tensor).map_err(driver)?;
        let alpha = match alpha_from {
            Some(a) if a.len() >= bytes => Some(self.stream.clone_htod(a).map_err(driver)?),
            Some(_) => return Err(GpuError::BadInput("alpha frame too short".into())),
            None => None,
        };
        let mut dst = self.stream.alloc_zeros::<u8>(bytes).map_err(driver)?;
        let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(&src, &self.stream);
        // SAFETY: `src` holds 3 * ph * pw floats and outlives the synchronisation below.
        unsafe { self.tensor_to_frames(ptr, shape, encoding, alpha.as_ref(), &mut dst)? };
        self.stream.clone_dtoh(&dst).map_err(driver)
    }
}

/// Time spent in each part of one [`GpuSession::derain`] call.
#[derive(Debug, Clone, Default)]
pub struct GpuTimes {
    /// Packing frames into pinned memory.
    pub stage: Duration,
    /// Upload, conversion, inference, conversion back and download, until the stream is done.
    pub gpu: Duration,
    /// Copying the results out of pinned memory into the caller's frames.
    pub unstage: Duration,
    /// Frames (indices into the batch) whose model output held NaN or infinity: their output
    /// frame is a copy of the input frame.
    pub invalid: Vec<usize>,
}

/// Buffers sized for one [`FrameShape`].
struct Buffers {
    shape: FrameShape,
    pinned_in: PinnedHostSlice<u8>,
    pinned_out: PinnedHostSlice<u8>,
    frames_in: CudaSlice<u8>,
    frames_out: CudaSlice<u8>,
    /// Per frame: the output tensor held NaN or infinity (see `flag_nonfinite`).
    flags: CudaSlice<i32>,
    input: Tensor<f32>,
    output: Tensor<f32>,
    binding: ort::session::IoBinding,
}

/// An NLCL model on ONNX Runtime's CUDA provider, fed and drained on the GPU by
/// [`GpuConverter`] kernels through I/O binding.
pub struct GpuSession {
    // Field order is drop order: the bound tensors, then the allocator (valid only while its
    // session lives), then the session, and last the stream ONNX Runtime was told to use.
    buffers: Option<Buffers>,
    allocator: Allocator,
    model: Model,
    converter: GpuConverter,
    /// How 4:2:0 chroma is brought to full resolution (as [`convert::frame_to_tensor_with`]).
    pub upsampling: ChromaUpsampling,
}

impl Drop for GpuSession {
    fn drop(&mut self) {
        // Nothing may still read or write the buffers when they are freed (an error can leave
        // work queued).
        let _ = self.converter.stream().synchronize();
    }
}

impl std::fmt::Debug for GpuSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSession")
            .field("info", self.model.info())
            .finish()
    }
}

impl GpuSession {
    /// Opens a model (the built-in default when `bytes` is `None`) on the CUDA provider of GPU
    /// `options.device_id`, running on a new stream of its own. Never falls back to the CPU:
    /// the caller decides what to do when the GPU path is unavailable.
    pub fn open(
        bytes: Option<&[u8]>,
        origin: &str,
        options: &SessionOptions,
    ) -> Result<Self, GpuError> {
        let ordinal = usize::try_from(options.device_id)
            .map_err(|_| GpuError::BadInput(format!("device-id {}", options.device_id)))?;
        let converter = GpuConverter::new(ordinal)?;
        let (bytes, origin) = match bytes {
            Some(b) => (b, origin),
            None => (
                crate::DEFAULT_MODEL.ok_or(RuntimeError::NoDefaultModel)?,
                "built-in default model",
            ),
        };
        let mut opts = options.clone();
        opts.provider = Provider::Cuda;
        opts.strict_provider = true;
        let stream = converter.stream().cu_stream() as *mut ();
        // SAFETY: the stream lives in `converter`, which this session owns and drops last.
        let model = unsafe { Model::from_bytes_on_stream(bytes, origin, &opts, stream)? };
        let allocator = Allocator::new(
            model.session(),
            MemoryInfo::new(
                AllocationDevice::CUDA,
                options.device_id,
                AllocatorType::Device,
                MemoryType::Default,
            )
            .map_err(|e| RuntimeError::Inference(e.to_string()))?,
        )
        .map_err(|e| RuntimeError::Inference(e.to_string()))?;
        Ok(GpuSession {
            buffers: None,
            model,
            allocator,
            converter,
            upsampling: ChromaUpsampling::default(),
        })
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// Makes `self.buffers` fit `shape`. Buffers for a larger batch of the same frames are
    /// kept (a partial batch runs as a full one with stale frames after its own, whose results
    /// are ignored): reallocating would stall every stream and make cuDNN search again.
    fn ensure_buffers(&mut self, shape: FrameShape) -> Result<(), GpuError> {
        if self.buffers.as_ref().is_some_and(|b| {
            FrameShape {
                n: shape.n,
                ..b.shape
            } == shape
                && b.shape.n >= shape.n
        }) {
            return Ok(());
        }
        // Free the old set first (at 1080p a batch of buffers is hundreds of MB), once nothing
        // on the stream uses it any more.
        self.converter.stream().synchronize().map_err(driver)?;
        self.buffers = None;
        let inference = |e: ort::Error| GpuError::Runtime(RuntimeError::Inference(e.to_string()));
        let bytes = shape.frame_bytes()? * shape.n;
        let ctx = self.converter.context();
        let stream = self.converter.stream();
        // SAFETY: every byte is written (packed frames, kernel output) before it is read.
        let (pinned_in, pinned_out, frames_in, frames_out) = unsafe {
            (
                ctx.alloc_pinned_with_flags::<u8>(bytes, 0)
                    .map_err(driver)?,
                ctx.alloc_pinned_with_flags::<u8>(bytes, 0)
                    .map_err(driver)?,
                stream.alloc::<u8>(bytes).map_err(driver)?,
                stream.alloc::<u8>(bytes).map_err(driver)?,
            )
        };
        let flags = stream.alloc_zeros::<i32>(shape.n).map_err(driver)?;
        let dims = [shape.n, 3, shape.ph, shape.pw];
        let input = Tensor::<f32>::new(&self.allocator, dims).map_err(inference)?;
        let mut output = Tensor::<f32>::new(&self.allocator, dims).map_err(inference)?;
        let mut binding = self.model.session().create_binding().map_err(inference)?;
        binding
            .bind_input(runtime::INPUT_NAME, &input)
            .map_err(inference)?;
        binding
            .bind_output(runtime::CLEAN_NAME, &mut output)
            .map_err(inference)?;
        self.buffers = Some(Buffers {
            shape,
            pinned_in,
            pinned_out,
            frames_in,
            frames_out,
            flags,
            input,
            output,
            binding,
        });
        Ok(())
    }

    /// Derains `inputs` (one batch, all of the same format and size) into `outputs` (same
    /// format and size; any strides). `encoding` is the YUV matrix and range of the stream.
    pub fn derain(
        &mut self,
        inputs: &[FrameRef],
        encoding: impl Into<YuvEncoding>,
        outputs: &mut [FrameMut],
    ) -> Result<GpuTimes, GpuError> {
        let encoding = encoding.into();
        let first = inputs
            .first()
            .ok_or_else(|| GpuError::BadInput("no frames".into()))?;
        if outputs.len() != inputs.len() {
            return Err(GpuError::BadInput(format!(
                "{} input frames, {} output frames",
                inputs.len(),
                outputs.len()
            )));
        }
        let (format, width, height) = (first.format, first.width, first.height);
        for f in inputs
            .iter()
            .map(|f| (f.format, f.width, f.height))
            .chain(outputs.iter().map(|f| (f.format, f.width, f.height)))
        {
            if f != (format, width, height) {
                return Err(GpuError::BadInput(format!(
                    "frames of one batch differ: {format} {width}x{height} and {} {}x{}",
                    f.0, f.1, f.2
                )));
            }
        }
        let m = self.model.info().size_multiple;
        let (ph, pw) = convert::padded_size(height, width, m);
        let n = inputs.len();
        if let Some(fixed) = self.model.info().fixed_batch
            && fixed != n
        {
            return Err(GpuError::BadInput(format!(
                "the model takes batches of {fixed}, got {n}"
            )));
        }
        let shape = FrameShape {
            format,
            width,
            height,
            n,
            ph,
            pw,
        };
        // Checked before anything is allocated (empty or oversized frames).
        shape.kernel_dims()?;
        let frame_bytes = shape.frame_bytes()?;
        let upsampling = self.upsampling;
        // As the element's CPU path: real alpha is kept, padding bytes (RGBx...) become 255.
        let has_alpha = matches!(format, PixelFormat::Rgba | PixelFormat::Bgra);

        let t0 = Instant::now();
        self.ensure_buffers(shape)?;
        let GpuSession {
            buffers,
            model,
            converter,
            ..
        } = self;
        let b = buffers
            .as_mut()
            .ok_or_else(|| GpuError::BadInput("buffers missing".into()))?;
        {
            let staging = b.pinned_in.as_mut_slice().map_err(driver)?;
            for (frame, chunk) in inputs.iter().zip(staging.chunks_exact_mut(frame_bytes)) {
                convert::copy_frame(
                    frame,
                    &mut convert::tight_frame_mut(format, width, height, chunk)?,
                )?;
            }
        }
        let t1 = Instant::now();
        let stream = Arc::clone(converter.stream());
        let mut flags = vec![0i32; n];
        let queued = (|| -> Result<(), GpuError> {
            stream
                .memcpy_htod(&b.pinned_in, &mut b.frames_in)
                .map_err(driver)?;
            let input_ptr = b.input.data_ptr_mut() as u64;
            let output_ptr = b.output.data_ptr() as u64;
            // SAFETY: both tensors hold at least n * 3 * ph * pw floats and live in
            // `self.buffers`; the stream is synchronised before they can be freed.
            unsafe {
                converter.frames_to_tensor(&b.frames_in, shape, encoding, upsampling, input_ptr)?;
            }
            // ONNX Runtime runs on the same stream, after the conversion kernel.
            model
                .session_mut()
                .run_binding(&b.binding)
                .map_err(|e| RuntimeError::Inference(e.to_string()))?;
            stream.memset_zeros(&mut b.flags).map_err(driver)?;
            // SAFETY: as above.
            unsafe { converter.flag_nonfinite(output_ptr, shape, &mut b.flags)? };
            let alpha = has_alpha.then_some(&b.frames_in);
            // SAFETY: as above.
            unsafe {
                converter.tensor_to_frames(
                    output_ptr,
                    shape,
                    encoding,
                    alpha,
                    &mut b.frames_out,
                )?;
            }
            stream
                .memcpy_dtoh(&b.frames_out, &mut b.pinned_out)
                .map_err(driver)?;
            stream
                .memcpy_dtoh(&b.flags, flags.as_mut_slice())
                .map_err(driver)?;
            Ok(())
        })();
        // Also after an error: work already queued must finish before the pinned buffers are
        // written again or freed (cudarc's own tracking is off, see GpuConverter::new).
        let synced = stream.synchronize().map_err(driver);
        queued?;
        synced?;
        let t2 = Instant::now();
        let results = b.pinned_out.as_slice().map_err(driver)?;
        let mut invalid = Vec::new();
        for (i, (frame, chunk)) in outputs
            .iter_mut()
            .zip(results.chunks_exact(frame_bytes))
            .enumerate()
        {
            if flags[i] != 0 {
                // NaN would come out black: the caller gets the input frame back instead.
                convert::copy_frame(&inputs[i], frame)?;
                invalid.push(i);
            } else {
                convert::copy_frame(&convert::tight_frame(format, width, height, chunk)?, frame)?;
            }
        }
        Ok(GpuTimes {
            stage: t1 - t0,
            gpu: t2 - t1,
            unstage: t2.elapsed(),
            invalid,
        })
    }
}
