# shellcheck shell=bash
# Source this (`source scripts/torch-env.sh`) to build and run the trainer (`nlcl-train`, tch 0.24)
# against the libtorch installed by scripts/setup-train.sh.
#
# Exports LIBTORCH (torch-sys finds headers and libs there), LIBTORCH_CXX11_ABI=1 (PyPI wheels
# use the new C++ ABI), LD_LIBRARY_PATH (torch/lib and the CUDA runtime/CUPTI libs that
# libtorch_cpu.so needs at load time) and OMP_NUM_THREADS (default 1: on a small shared machine
# OpenMP's spin-waiting threads made two-thread steps up to 10x slower than one thread; raise
# it on a dedicated machine).
#
# NLCL_TORCH_VENV overrides the venv location. On a machine with its own torch 2.11 install,
# set LIBTORCH to that torch package directory before sourcing and it is kept.
_nlcl_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_nlcl_venv="${NLCL_TORCH_VENV:-$_nlcl_root/.venv-torch}"
if [ -z "${LIBTORCH:-}" ]; then
    _nlcl_sp="$(ls -d "$_nlcl_venv"/lib/python3*/site-packages 2>/dev/null | head -n1)"
    if [ -n "$_nlcl_sp" ] && [ -d "$_nlcl_sp/torch/lib" ]; then
        export LIBTORCH="$_nlcl_sp/torch"
    else
        echo "torch-env: no torch in $_nlcl_venv; run scripts/setup-train.sh" >&2
    fi
fi
if [ -n "${LIBTORCH:-}" ]; then
    _nlcl_libs="$LIBTORCH/lib"
    _nlcl_nv="$(dirname "$LIBTORCH")/nvidia"
    for _d in "$_nlcl_nv"/*/lib; do
        [ -d "$_d" ] && _nlcl_libs="$_nlcl_libs:$_d"
    done
    export LD_LIBRARY_PATH="$_nlcl_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    unset _d _nlcl_nv _nlcl_libs
fi
export LIBTORCH_CXX11_ABI="${LIBTORCH_CXX11_ABI:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
unset _nlcl_root _nlcl_venv _nlcl_sp
