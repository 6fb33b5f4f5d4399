//! ONNX Runtime: finding and loading the shared library, and running an NLCL model.
//!
//! The library is loaded at run time (ort's `load-dynamic`), never linked, so the plugin builds
//! and loads without it and reports a missing library as an error instead of failing to load.
//! Where it is looked for, in order: `ORT_DYLIB_PATH` (an explicit path always wins, even when
//! wrong), then [`SEARCH_PATHS`], then the dynamic loader's own search (`LD_LIBRARY_PATH`,
//! `ldconfig` cache) for `libonnxruntime.so` and `libonnxruntime.so.1`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::{TensorRef, ValueType};

use crate::onnx::meta;

/// Environment variable naming the ONNX Runtime library explicitly.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Where `scripts/setup.sh` installs the library, and other common places.
pub const SEARCH_PATHS: &[&str] = &[
    "/usr/local/lib/libonnxruntime.so",
    "/usr/lib/libonnxruntime.so",
    "/usr/lib/x86_64-linux-gnu/libonnxruntime.so",
    "/usr/lib/aarch64-linux-gnu/libonnxruntime.so",
];

/// Names handed to the dynamic loader when no explicit or known path exists.
const LOADER_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1"];

/// How to install the library, quoted in errors.
pub const INSTALL_HINT: &str = "install it with the project's scripts/setup.sh (it puts the PyPI onnxruntime wheel's \
     library in /usr/local/lib), or set ORT_DYLIB_PATH to a libonnxruntime.so";

/// Errors from loading ONNX Runtime or a model, or from inference.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found or not loadable; tried: {tried}. {hint}", tried = .tried.join("; "), hint = INSTALL_HINT)]
    LibraryNotFound { tried: Vec<String> },
    #[error(
        "no model given and this build has no built-in default model (models/default.onnx was absent when it was compiled); pass a model file"
    )]
    NoDefaultModel,
    #[error("model file {path:?} not found")]
    ModelNotFound { path: PathBuf },
    #[error("model {name:?} is not installed; looked for {searched}. Run scripts/setup.sh (it installs the named models) or set NLCL_MODEL_DIR", searched = .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NamedModelNotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    #[error("model file {path:?} could not be read: {reason}")]
    ModelUnreadable { path: PathBuf, reason: String },
    #[error("model {origin} could not be loaded by ONNX Runtime (corrupt or not ONNX?): {reason}")]
    ModelInvalid { origin: String, reason: String },
    #[error("model {origin} does not follow the NLCL contract: {reason}")]
    ModelContract { origin: String, reason: String },
    #[error("unknown execution provider {0:?} (expected cpu, cuda or tensorrt)")]
    UnknownProvider(String),
    #[error("execution provider {provider} could not be used: {reason}")]
    ProviderUnavailable { provider: Provider, reason: String },
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Intra-op threads per core beyond which more threads only add contention.
pub const THREADS_PER_CORE_LIMIT: usize = 4;

/// `requested` intra-op threads (0 = ONNX Runtime's choice, kept) bounded to
/// [`THREADS_PER_CORE_LIMIT`] per core of this machine: 1,024 threads stalled a 2-core machine
/// for over a minute. The message says what was lowered, for the caller to show.
pub fn bound_threads(requested: usize) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = THREADS_PER_CORE_LIMIT * cores;
    if requested > limit {
        (
            limit,
            Some(format!(
                "threads {requested} lowered to {limit} ({THREADS_PER_CORE_LIMIT} per core on \
                 this {cores}-core machine; more only add contention)"
            )),
        )
    } else {
        (requested, None)
    }
}

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    TensorRt,
}

impl Provider {
    /// Parses `cpu`, `cuda` or `tensorrt` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Self, RuntimeError> {
        match name.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda),
            "tensorrt" | "trt" => Ok(Provider::TensorRt),
            _ => Err(RuntimeError::UnknownProvider(name.to_string())),
        }
    }

    /// Lower-case name as accepted by [`Provider::from_name`].
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Graph optimisation level of ONNX Runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Optimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

/// How to open a model.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub provider: Provider,
    /// GPU ordinal for the CUDA and TensorRT providers.
    pub device_id: i32,
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
    pub threads: usize,
    pub optimization: Optimization,
    /// Fail instead of falling back to the CPU when the requested GPU provider cannot be used.
    pub strict_provider: bool,
    /// TensorRT engine cache directory (TensorRT only).
    pub cache_dir: Option<PathBuf>,
    /// Let TensorRT build FP16 engines.
    pub fp16: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            provider: Provider::Cpu,
            device_id: 0,
            threads: 0,
            optimization: Optimization::All,
            strict_provider: false,
            cache_dir: None,
            fp16: false,
        }
    }
}

/// The loaded library, remembered for the life of the process (ort keeps it loaded anyway).
static LIBRARY: OnceLock<Result<PathBuf, Vec<String>>> = OnceLock::new();
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Candidate library paths in search order, given the value of `ORT_DYLIB_PATH`.
///
/// With an explicit path only that path is tried, so a wrong setting is reported, not hidden.
pub fn library_candidates(explicit: Option<&str>) -> Vec<PathBuf> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut v: Vec<PathBuf> = SEARCH_PATHS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    v.extend(LOADER_NAMES.iter().map(PathBuf::from));
    v
}

/// Loads ONNX Runtime once per process and returns the path it came from.
pub fn load_library() -> Result<PathBuf, RuntimeError> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let result = LIBRARY.get_or_init(|| {
        let explicit = std::env::var(ORT_DYLIB_ENV).ok();
        let mut tried = Vec::new();
        for cand in library_candidates(explicit.as_deref()) {
            // ort resolves relative names against the executable's folder first; absolute
            // paths that do not exist would only produce a confusing dlopen message.
            if cand.is_absolute() && !cand.exists() {
                tried.push(format!("{} (no such file)", cand.display()));
                continue;
            }
            match ort::init_from(&cand) {
                Ok(builder) => {
                    let env = builder.with_name("nlcl").build().map_err(|e| e.to_string());
                    let _ = ENVIRONMENT.set(env);
                    return Ok(cand);
                }
                Err(e) => tried.push(format!("{} ({e})", cand.display())),
            }
        }
        if explicit.is_none() {
            tried.push(format!("{ORT_DYLIB_ENV} (not set)"));
        }
        Err(tried)
    });
    match result {
        Ok(p) => Ok(p.clone()),
        Err(tried) => Err(RuntimeError::LibraryNotFound {
            tried: tried.clone(),
        }),
    }
}

fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    load_library()?;
    match ENVIRONMENT.get() {
        Some(Ok(env)) => Ok(env),
        Some(Err(e)) => Err(RuntimeError::Inference(format!(
            "ONNX Runtime environment could not be created: {e}"
        ))),
        None => Err(RuntimeError::LibraryNotFound {
            tried: vec!["library loaded before the environment could be created".into()],
        }),
    }
}

/// What a loaded model is and how it runs.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Where it came from (a path, or `embedded`).
    pub origin: String,
    /// `metadata_props` of the model.
    pub metadata: Vec<(String, String)>,
    /// Frame sizes must be multiples of this.
    pub size_multiple: usize,
    /// The model also outputs the rain layer.
    pub has_rain: bool,
    /// The provider the session really uses.
    pub provider: Provider,
    /// Why the requested provider was not used, when it fell back to the CPU.
    pub fallback: Option<String>,
    /// The batch size the model's input is fixed to, if it is not dynamic.
    pub fixed_batch: Option<usize>,
    /// Height and width the model's input is fixed to, if they are not dynamic.
    pub fixed_size: Option<(usize, usize)>,
}

impl ModelInfo {
    /// Whether frames of `width` x `height` fit the model once padded to its size multiple:
    /// always with dynamic sizes; with a fixed input size only when the padded size is that
    /// size. The error says both sizes, so callers can refuse a stream before its first frame.
    pub fn check_frame_size(&self, width: usize, height: usize) -> Result<(), String> {
        let m = self.size_multiple.max(1);
        let (ph, pw) = (height.div_ceil(m) * m, width.div_ceil(m) * m);
        match self.fixed_size {
            Some((h, w)) if (h, w) != (ph, pw) => Err(format!(
                "model {} takes only {w}x{h} frames (its input size is fixed); this stream is \
                 {width}x{height}: scale it to {w}x{h} before the element (videoscale) or use \
                 a model with dynamic height and width",
                self.origin
            )),
            _ => Ok(()),
        }
    }

    /// A metadata value by key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The model's own rain-meter threshold ([`crate::onnx::meta::RAIN_THRESHOLD`]), when it
    /// records a valid one (a finite number of levels in `[0, 255]`).
    pub fn rain_threshold(&self) -> Option<f64> {
        self.meta(crate::onnx::meta::RAIN_THRESHOLD)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&t| crate::rain_meter::is_valid_threshold(t))
    }
}

/// An NLCL model ready to run.
pub struct Model {
    session: Session,
    info: ModelInfo,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("info", &self.info).finish()
    }
}

/// Runs `session` on one input tensor of `shape` (NCHW).
fn infer<'s>(
    session: &'s mut Session,
    input: &[f32],
    shape: [usize; 4],
) -> Result<ort::session::SessionOutputs<'s>, RuntimeError> {
    let tensor = TensorRef::from_array_view((shape, input))
        .map_err(|e| RuntimeError::Inference(e.to_string()))?;
    session
        .run(ort::inputs![INPUT_NAME => tensor])
        .map_err(|e| RuntimeError::Inference(e.to_string()))
}

/// The float output `name` of a run: its shape and values.
fn float_output<'a>(
    outputs: &'a ort::session::SessionOutputs<'_>,
    name: &str,
) -> Result<(&'a ort::value::Shape, &'a [f32]), RuntimeError> {
    outputs
        .get(name)
        .ok_or_else(|| RuntimeError::Inference(format!("no output {name:?}")))?
        .try_extract_tensor::<f32>()
        .map_err(|e| RuntimeError::Inference(e.to_string()))
}

/// Input and output names of the model contract.
pub const INPUT_NAME: &str = "rainy";
pub const CLEAN_NAME: &str = "clean";
pub const RAIN_NAME: &str = "rain";

impl Model {
    /// Opens a model file.
    pub fn open(path: impl AsRef<Path>, options: &SessionOptions) -> Result<Model, RuntimeError> {
        Self::open_source(
            &crate::family::ModelSource::File(path.as_ref().to_path_buf()),
            options,
        )
    }

    /// Opens a model from memory; `origin` names it in errors (e.g. `embedded`).
    pub fn from_bytes(
        bytes: &[u8],
        origin: &str,
        options: &SessionOptions,
    ) -> Result<Model, RuntimeError> {
        let env = environment()?;
        let invalid = |e: String| RuntimeError::ModelInvalid {
            origin: origin.to_string(),
            reason: e,
        };
        let mut fallback = None;
        let mut provider = options.provider;
        let session = match build_session(env, bytes, options, options.provider) {
            Ok(s) => s,
            Err(SessionFailure::Provider(reason)) if !options.strict_provider => {
                fallback = Some(format!(
                    "{} unavailable ({reason}); running on the CPU",
                    options.provider
                ));
                provider = Provider::Cpu;
                build_session(env, bytes, options, Provider::Cpu)
                    .map_err(|e| invalid(e.reason()))?
            }
            Err(SessionFailure::Provider(reason)) => {
                return Err(RuntimeError::ProviderUnavailable {
                    provider: options.provider,
                    reason,
                });
            }
            Err(SessionFailure::Model(reason)) => return Err(invalid(reason)),
        };
        let metadata = crate::onnx::read_metadata(bytes).unwrap_or_default();
        let info = validate(&session, origin, metadata, provider, fallback)?;
        Ok(Model { session, info })
    }

    /// Like [`Model::from_bytes`] on the CUDA provider, which is told to run on `stream` (a
    /// `CUstream`) instead of its own.
    ///
    /// # Safety
    /// `stream` must be a valid stream of the device's primary context that outlives the model.
    #[cfg(feature = "cuda")]
    pub(crate) unsafe fn from_bytes_on_stream(
        bytes: &[u8],
        origin: &str,
        options: &SessionOptions,
        stream: *mut (),
    ) -> Result<Model, RuntimeError> {
        let env = environment()?;
        let session = match build_session_with(env, bytes, options, Provider::Cuda, Some(stream)) {
            Ok(s) => s,
            Err(SessionFailure::Provider(reason)) => {
                return Err(RuntimeError::ProviderUnavailable {
                    provider: Provider::Cuda,
                    reason,
                });
            }
            Err(SessionFailure::Model(reason)) => {
                return Err(RuntimeError::ModelInvalid {
                    origin: origin.to_string(),
                    reason,
                });
            }
        };
        let metadata = crate::onnx::read_metadata(bytes).unwrap_or_default();
        let info = validate(&session, origin, metadata, Provider::Cuda, None)?;
        Ok(Model { session, info })
    }

    #[cfg(feature = "cuda")]
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    #[cfg(feature = "cuda")]
    pub(crate) fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Opens the built-in model `lite` ([`crate::DEFAULT_MODEL`]).
    pub fn open_default(options: &SessionOptions) -> Result<Model, RuntimeError> {
        Self::open_source(&crate::family::ModelSource::default(), options)
    }

    /// Opens a named model of the family or a model file.
    pub fn open_source(
        source: &crate::family::ModelSource,
        options: &SessionOptions,
    ) -> Result<Model, RuntimeError> {
        let (bytes, origin) = source.bytes()?;
        Self::from_bytes(&bytes, &origin, options)
    }

    /// Derains one tightly packed RGB8 image (`width * height * 3` bytes) and returns the
    /// result in the same layout. Pads to the model's size multiple and crops back.
    pub fn derain_rgb8(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Vec<u8>, RuntimeError> {
        use crate::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat};
        let m = self.info.size_multiple;
        let (ph, pw) = convert::padded_size(height, width, m);
        let mut input = vec![0.0f32; 3 * ph * pw];
        let frame = FrameRef {
            format: PixelFormat::Rgb,
            width,
            height,
            planes: [rgb, &[], &[]],
            strides: [width * 3, 0, 0],
        };
        convert::frame_to_tensor(&frame, ColorMatrix::Bt601, m, &mut input)
            .map_err(|e| RuntimeError::BadInput(e.to_string()))?;
        let mut output = vec![0.0f32; input.len()];
        self.run(&input, 1, ph, pw, &mut output, None)?;
        let mut out = vec![0u8; width * height * 3];
        let mut frame = FrameMut {
            format: PixelFormat::Rgb,
            width,
            height,
            planes: [&mut out, &mut [], &mut []],
            strides: [width * 3, 0, 0],
        };
        convert::tensor_to_frame(&output, ph, pw, ColorMatrix::Bt601, None, &mut frame)
            .map_err(|e| RuntimeError::BadInput(e.to_string()))?;
        Ok(out)
    }

    /// Runs the model on `n` images of `h` x `w` (NCHW, [-1, 1]) and returns the float outputs
    /// named `names`, whatever their shapes (e.g. the intermediate tensors that
    /// [`crate::onnx::int8::with_calibration_outputs`] exposes).
    pub fn run_named(
        &mut self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        names: &[String],
    ) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let len = n * 3 * h * w;
        if len == 0 || input.len() < len {
            return Err(RuntimeError::BadInput(format!(
                "input holds {} floats, {n}x3x{h}x{w} needs {len}",
                input.len()
            )));
        }
        let outputs = infer(&mut self.session, &input[..len], [n, 3, h, w])?;
        names
            .iter()
            .map(|name| {
                let (_, data) = float_output(&outputs, name)?;
                Ok(data.to_vec())
            })
            .collect()
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Runs the model on `n` images of `h` x `w` (NCHW, [-1, 1]) and copies the `clean` output into
    /// `clean` and, when requested and present, the `rain` output into `rain`.
    ///
    /// `h` and `w` must be multiples of [`ModelInfo::size_multiple`].
    pub fn run(
        &mut self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        clean: &mut [f32],
        rain: Option<&mut [f32]>,
    ) -> Result<(), RuntimeError> {
        let len = n * 3 * h * w;
        if n == 0 || h == 0 || w == 0 {
            return Err(RuntimeError::BadInput(format!(
                "empty tensor {n}x3x{h}x{w}"
            )));
        }
        let m = self.info.size_multiple;
        if !h.is_multiple_of(m) || !w.is_multiple_of(m) {
            return Err(RuntimeError::BadInput(format!(
                "{w}x{h} is not a multiple of {m} (pad first)"
            )));
        }
        if input.len() < len || clean.len() < len {
            return Err(RuntimeError::BadInput(format!(
                "buffers hold {} / {} floats, {n}x3x{h}x{w} needs {len}",
                input.len(),
                clean.len()
            )));
        }
        let outputs = infer(&mut self.session, &input[..len], [n, 3, h, w])?;
        let copy = |name: &str, dst: &mut [f32]| -> Result<(), RuntimeError> {
            let (shape, data) = float_output(&outputs, name)?;
            if data.len() != len {
                return Err(RuntimeError::Inference(format!(
                    "output {name:?} has shape {shape:?}, expected [{n}, 3, {h}, {w}]"
                )));
            }
            dst[..len].copy_from_slice(data);
            Ok(())
        };
        copy(CLEAN_NAME, clean)?;
        if let Some(r) = rain {
            if !self.info.has_rain {
                return Err(RuntimeError::BadInput(
                    "the model has no rain output".into(),
                ));
            }
            if r.len() < len {
                return Err(RuntimeError::BadInput("rain buffer too short".into()));
            }
            copy(RAIN_NAME, r)?;
        }
        Ok(())
    }
}

enum SessionFailure {
    Provider(String),
    Model(String),
}

impl SessionFailure {
    fn reason(self) -> String {
        match self {
            SessionFailure::Provider(r) | SessionFailure::Model(r) => r,
        }
    }
}

fn build_session(
    env: &ort::environment::Environment,
    bytes: &[u8],
    options: &SessionOptions,
    provider: Provider,
) -> Result<Session, SessionFailure> {
    build_session_with(env, bytes, options, provider, None)
}

/// [`build_session`], optionally handing the CUDA provider a stream to run on.
fn build_session_with(
    env: &ort::environment::Environment,
    bytes: &[u8],
    options: &SessionOptions,
    provider: Provider,
    cuda_stream: Option<*mut ()>,
) -> Result<Session, SessionFailure> {
    let model_err = |e: ort::Error<SessionBuilder>| SessionFailure::Model(e.to_string());
    let mut builder = Session::builder(env)
        .map_err(|e| SessionFailure::Model(e.to_string()))?
        .with_optimization_level(match options.optimization {
            Optimization::Disable => GraphOptimizationLevel::Disable,
            Optimization::Basic => GraphOptimizationLevel::Level1,
            Optimization::Extended => GraphOptimizationLevel::Level2,
            Optimization::All => GraphOptimizationLevel::All,
        })
        .map_err(model_err)?;
    if options.threads > 0 {
        builder = builder
            .with_intra_threads(options.threads)
            .map_err(model_err)?;
    }
    let ep = match provider {
        Provider::Cpu => None,
        Provider::Cuda => {
            let mut cuda = ort::ep::CUDA::default().with_device_id(options.device_id);
            if let Some(stream) = cuda_stream {
                // SAFETY: the caller of `from_bytes_on_stream` guarantees the stream outlives
                // the session.
                cuda = unsafe { cuda.with_compute_stream(stream) };
            }
            Some(cuda.build().error_on_failure())
        }
        Provider::TensorRt => {
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(options.device_id)
                .with_fp16(options.fp16);
            if let Some(dir) = &options.cache_dir {
                let dir = dir.display().to_string();
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.clone())
                    .with_timing_cache(true)
                    .with_timing_cache_path(dir);
            }
            Some(trt.build().error_on_failure())
        }
    };
    if let Some(ep) = ep {
        builder = builder
            .with_execution_providers([ep])
            .map_err(|e| SessionFailure::Provider(e.to_string()))?;
    }
    builder.commit_from_memory(bytes).map_err(|e| {
        let msg = e.to_string();
        // A provider whose libraries are missing fails at commit time too.
        if provider != Provider::Cpu
            && (msg.contains("CUDA") || msg.contains("TensorRT") || msg.contains("provider"))
        {
            SessionFailure::Provider(msg)
        } else {
            SessionFailure::Model(msg)
        }
    })
}

fn validate(
    session: &Session,
    origin: &str,
    metadata: Vec<(String, String)>,
    provider: Provider,
    fallback: Option<String>,
) -> Result<ModelInfo, RuntimeError> {
    let contract = |reason: String| RuntimeError::ModelContract {
        origin: origin.to_string(),
        reason,
    };
    let check_image = |name: &str, ty: &ValueType, role: &str| -> Result<(), RuntimeError> {
        let shape = ty
            .tensor_shape()
            .ok_or_else(|| contract(format!("{role} {name:?} is not a tensor")))?;
        if ty.tensor_type() != Some(ort::value::TensorElementType::Float32) {
            return Err(contract(format!(
                "{role} {name:?} has element type {:?}, expected float32",
                ty.tensor_type()
            )));
        }
        if shape.len() != 4 {
            return Err(contract(format!(
                "{role} {name:?} has rank {} (shape {shape:?}), expected [N,3,H,W]",
                shape.len()
            )));
        }
        if shape[1] != 3 {
            return Err(contract(format!(
                "{role} {name:?} has {} channels (shape {shape:?}), expected 3 (RGB)",
                shape[1]
            )));
        }
        Ok(())
    };
    let inputs = session.inputs();
    if inputs.len() != 1 || inputs[0].name() != INPUT_NAME {
        let names: Vec<&str> = inputs.iter().map(|o| o.name()).collect();
        return Err(contract(format!(
            "inputs are {names:?}, expected exactly [{INPUT_NAME:?}]"
        )));
    }
    check_image(INPUT_NAME, inputs[0].dtype(), "input")?;
    let fixed_dim = |i: usize| {
        inputs[0]
            .dtype()
            .tensor_shape()
            .and_then(|shape| usize::try_from(shape[i]).ok())
            .filter(|&n| n > 0)
    };
    let fixed_batch = fixed_dim(0);
    let fixed_size = fixed_dim(2).zip(fixed_dim(3));
    let mut has_clean = false;
    let mut has_rain = false;
    for o in session.outputs() {
        match o.name() {
            CLEAN_NAME => {
                check_image(CLEAN_NAME, o.dtype(), "output")?;
                has_clean = true;
            }
            RAIN_NAME => {
                check_image(RAIN_NAME, o.dtype(), "output")?;
                has_rain = true;
            }
            _ => {}
        }
    }
    if !has_clean {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return Err(contract(format!(
            "outputs are {names:?}, expected {CLEAN_NAME:?} (and optionally {RAIN_NAME:?})"
        )));
    }
    let size_multiple = match metadata.iter().find(|(k, _)| k == meta::SIZE_MULTIPLE) {
        Some((_, v)) => match v.parse::<usize>() {
            Ok(m) if (1..=64).contains(&m) => m,
            _ => return Err(contract(format!("{} = {v:?}", meta::SIZE_MULTIPLE))),
        },
        None => 1,
    };
    Ok(ModelInfo {
        origin: origin.to_string(),
        metadata,
        size_multiple,
        has_rain,
        provider,
        fallback,
        fixed_batch,
        fixed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_bounded_by_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(bound_threads(0), (0, None));
        assert_eq!(bound_threads(1), (1, None));
        let (n, msg) = bound_threads(1024);
        assert_eq!(n, THREADS_PER_CORE_LIMIT * cores);
        assert!(msg.unwrap().contains("1024"));
    }

    #[test]
    fn explicit_path_is_the_only_candidate() {
        assert_eq!(
            library_candidates(Some("/opt/x/libonnxruntime.so")),
            vec![PathBuf::from("/opt/x/libonnxruntime.so")]
        );
        let c = library_candidates(None);
        assert!(c.iter().any(|p| p == Path::new("libonnxruntime.so")));
        assert!(library_candidates(Some("")).len() >= LOADER_NAMES.len());
    }

    #[test]
    fn provider_names() {
        assert_eq!(Provider::from_name("CUDA").unwrap(), Provider::Cuda);
        assert_eq!(Provider::from_name("tensorrt").unwrap(), Provider::TensorRt);
        let e = Provider::from_name("tpu").unwrap_err().to_string();
        assert!(e.contains("tpu"), "{e}");
    }
}
