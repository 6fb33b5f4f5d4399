#!/usr/bin/env bash
# Set-up for the CUDA frame path (idempotent): a virtual environment .venv-gpu at the repository
# root with onnxruntime-gpu 1.31.1 (the same ONNX Runtime release as scripts/setup.sh installs,
# built for CUDA 13) and the CUDA 13 libraries it loads (runtime, cuBLAS, cuDNN, cuFFT, cuRAND,
# NVRTC). Needs an NVIDIA driver of the CUDA 13 generation (580 or newer) and python3-venv.
# Afterwards: `source scripts/gpu-env.sh` and build with `--features cuda` (scripts/gpu-check.sh
# does both and checks the GPU against the CPU).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-gpu"
PYTHON="${PYTHON:-python3}"
PACKAGES=(
  "onnxruntime-gpu[cuda,cudnn]==1.31.1"
  "nvidia-cublas>=13,<14"
)

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if "$VENV/bin/python" -c 'import onnxruntime as o, sys; sys.exit(o.__version__ != "1.31.1")' 2>/dev/null; then
  echo "==> $VENV is up to date"
else
  echo "==> installing ${PACKAGES[*]} into $VENV (about 1.5 GB)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
fi
"$VENV/bin/python" -c 'import onnxruntime as o; print("==> onnxruntime", o.__version__, "providers:", ", ".join(o.get_available_providers()))'
echo "==> now: source scripts/gpu-env.sh"
