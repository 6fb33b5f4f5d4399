#!/usr/bin/env bash
# Installs libtorch for the trainer (`nlcl-train`, crate `tch` 0.24 -> torch 2.11.0) into a
# project-local virtual environment `.venv-torch` at the repository root. Idempotent.
#
# PyPI only ships the CUDA build of torch; the full dependency set is several GB. For CPU use
# libtorch_cpu.so needs only the CUDA runtime and CUPTI (checked with `readelf -d`: its NEEDED
# entries are libcudart.so.13 and libcupti.so.13), so we install torch with --no-deps plus those
# two. libtorch_cuda.so is present but only loaded when the trainer is asked for `--device cuda`
# (it then dlopens it; that needs a machine with the full CUDA 13 stack, e.g. a full torch install).
#
# Usage: scripts/setup-train.sh            (then: source scripts/torch-env.sh)
# Env:   PYTHON=python3.11 to pick the interpreter; NLCL_TORCH_VENV to install elsewhere.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NLCL_TORCH_VENV:-$ROOT/.venv-torch}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.11.0"            # pinned by tch 0.24 (torch-sys build.rs TORCH_VERSION)
CUDART_VERSION="13.0.96"          # torch 2.11.0 requires cuda-toolkit 13.0.2 (cudart 13.0.96)
CUPTI_VERSION="13.0.85"

if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "setup-train: $PYTHON lacks venv/ensurepip; installing python3-venv" >&2
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
        echo "setup-train: install python3-venv first" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup-train: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

have() {
    "$VENV/bin/python" - "$1" "$2" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
PY
}

want=()
have torch "$TORCH_VERSION" || want+=("torch==$TORCH_VERSION")
have nvidia-cuda-runtime "$CUDART_VERSION" || want+=("nvidia-cuda-runtime==$CUDART_VERSION")
have nvidia-cuda-cupti "$CUPTI_VERSION" || want+=("nvidia-cuda-cupti==$CUPTI_VERSION")

if [ ${#want[@]} -gt 0 ]; then
    echo "setup-train: installing ${want[*]} (torch is ~530 MB)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "${want[@]}"
else
    echo "setup-train: torch $TORCH_VERSION already installed in $VENV"
fi

# Check that libtorch_cpu resolves all its libraries with the environment we export.
# shellcheck source=torch-env.sh
source "$ROOT/scripts/torch-env.sh"
missing="$(ldd "$LIBTORCH/lib/libtorch_cpu.so" | grep 'not found' || true)"
if [ -n "$missing" ]; then
    echo "setup-train: libtorch_cpu.so has unresolved libraries:" >&2
    echo "$missing" >&2
    exit 1
fi
echo "setup-train: ok (LIBTORCH=$LIBTORCH)"
