//! Choosing the compute device.
//!
//! The trainer links libtorch's CPU libraries only (the linker drops `libtorch_cuda.so`, which
//! nothing references by symbol), so the same binary runs on machines without the CUDA stack.
//! For `--device cuda|auto` it loads `libtorch_cuda.so` at run time: loading it registers
//! libtorch's CUDA backend, after which `tch::Cuda::is_available()` answers truthfully.

use std::ffi::CString;
use std::path::PathBuf;

use tch::Device;

/// The `--device` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// The first CUDA GPU (error when none can be used).
    Cuda,
    /// CUDA when available, else the CPU.
    Auto,
}

fn dlopen_global(name: &str) -> Result<(), String> {
    let c = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is intentionally leaked so
    // the library stays loaded for the life of the process.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() {
            "unknown dlopen error".to_string()
        } else {
            // SAFETY: non-null dlerror result is a valid C string.
            unsafe { std::ffi::CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(msg);
    }
    Ok(())
}

/// Loads libtorch's CUDA backend (`libtorch_cuda.so`), searching the dynamic linker path and
/// then `$LIBTORCH/lib`.
pub fn load_cuda_backend() -> Result<(), String> {
    let mut candidates = vec![PathBuf::from("libtorch_cuda.so")];
    if let Ok(lt) = std::env::var("LIBTORCH") {
        candidates.push(PathBuf::from(lt).join("lib").join("libtorch_cuda.so"));
    }
    let mut errors = Vec::new();
    for c in candidates {
        match dlopen_global(&c.to_string_lossy()) {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

/// Resolves `--device` to a libtorch device.
pub fn select_device(choice: DeviceChoice) -> anyhow::Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda | DeviceChoice::Auto => {
            let loaded = load_cuda_backend();
            if loaded.is_ok() && tch::Cuda::is_available() {
                return Ok(Device::Cuda(0));
            }
            let why = match loaded {
                Err(e) => format!("libtorch_cuda.so could not be loaded: {e}"),
                Ok(()) => "libtorch reports no usable CUDA device".to_string(),
            };
            if choice == DeviceChoice::Cuda {
                anyhow::bail!("--device cuda: {why}");
            }
            eprintln!("device auto: using the CPU ({why})");
            Ok(Device::Cpu)
        }
    }
}
