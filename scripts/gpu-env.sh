# Source this file (`source scripts/gpu-env.sh [PYTHON]`): points the project at the
# onnxruntime-gpu library and the CUDA 13 libraries of a Python environment (default: the
# .venv-gpu that scripts/setup-gpu.sh makes; or any python3 with onnxruntime-gpu installed).
# Sets ORT_DYLIB_PATH and puts the libraries on LD_LIBRARY_PATH.
_nlcl_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_nlcl_py="${1:-$_nlcl_root/.venv-gpu/bin/python}"
_nlcl_sp="$("$_nlcl_py" -c 'import onnxruntime, os; print(os.path.dirname(os.path.dirname(onnxruntime.__file__)))' 2>/dev/null)" || _nlcl_sp=""
if [ -z "$_nlcl_sp" ]; then
  echo "gpu-env.sh: $_nlcl_py has no onnxruntime; run scripts/setup-gpu.sh first" >&2
else
  _nlcl_ort="$(ls "$_nlcl_sp"/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -n 1)"
  if [ ! -e "$_nlcl_sp/onnxruntime/capi/libonnxruntime_providers_cuda.so" ]; then
    echo "gpu-env.sh: $_nlcl_sp has the CPU-only onnxruntime; install onnxruntime-gpu" >&2
  fi
  export ORT_DYLIB_PATH="$_nlcl_ort"
  _nlcl_libs="$(find "$_nlcl_sp/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')"
  export LD_LIBRARY_PATH="$_nlcl_sp/onnxruntime/capi:${_nlcl_libs}${LD_LIBRARY_PATH:-}"
  echo "gpu-env.sh: ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
fi
unset _nlcl_root _nlcl_py _nlcl_sp _nlcl_ort _nlcl_libs
