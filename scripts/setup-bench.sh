#!/usr/bin/env bash
# Set-up for `nlcl bench` part (b) (idempotent): a virtual environment .venv-bench at the repository
# root with bench/requirements.txt (onnxruntime, numpy, OpenCV), the Python loop the element is
# compared against. `nlcl bench` finds .venv-bench/bin/python on its own; without it, part (b) is
# skipped with a message. Needs python3 with the venv module (Debian: python3-venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
REQ="$ROOT/bench/requirements.txt"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# pip is only run when the requirements changed since the last successful install.
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
  && "$VENV/bin/python" -c 'import cv2, numpy, onnxruntime' 2>/dev/null; then
  echo "==> $VENV is up to date"
else
  echo "==> installing bench/requirements.txt into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$WANT" >"$STAMP"
fi
"$VENV/bin/python" -c 'import cv2, numpy, onnxruntime as ort; print("==> python bench env: onnxruntime", ort.__version__, "numpy", numpy.__version__, "opencv", cv2.__version__)'
