#!/usr/bin/env bash
# One-time set-up on Debian 12 (idempotent; run as root or a user with sudo):
#   - GStreamer 1.22 development packages, tools and plugins;
#   - ONNX Runtime's shared library from the pinned PyPI `onnxruntime` wheel, installed as
#     /usr/local/lib/libonnxruntime.so so the plugin finds it with no environment variable;
#   - the named models `standard`, `full` and `dehaze` (models/*.onnx) into /usr/local/share/nlcl/models,
#     where the element's `model` property and `nlcl --model NAME` find them (`lite` is built in);
#   - libtorch for the trainer (scripts/setup-train.sh), unless --no-train.
set -euo pipefail

ORT_VERSION="${NLCL_ORT_VERSION:-1.31.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_TRAIN=1
for arg in "$@"; do
  case "$arg" in
    --no-train) WITH_TRAIN=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

PACKAGES=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp libgstrtspserver-1.0-dev
  python3-venv python3-pip unzip pkg-config g++)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "==> GStreamer packages already installed"
fi

LIB=/usr/local/lib/libonnxruntime.so.${ORT_VERSION}
if [ ! -f "$LIB" ]; then
  echo "==> installing ONNX Runtime ${ORT_VERSION} (PyPI wheel onnxruntime==${ORT_VERSION})"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==${ORT_VERSION}"
  whl="$(ls "$tmp"/onnxruntime-*.whl)"
  unzip -q -o "$whl" 'onnxruntime/capi/libonnxruntime.so*' -d "$tmp/x"
  so="$(ls "$tmp"/x/onnxruntime/capi/libonnxruntime.so* | head -n1)"
  $SUDO install -m 0644 "$so" "$LIB"
  $SUDO ln -sf "$LIB" /usr/local/lib/libonnxruntime.so.1
  $SUDO ln -sf "$LIB" /usr/local/lib/libonnxruntime.so
  $SUDO ldconfig
else
  echo "==> ONNX Runtime ${ORT_VERSION} already in /usr/local/lib"
fi

MODEL_DIR=/usr/local/share/nlcl/models
for name in standard full dehaze; do
  src="$ROOT/models/$name.onnx"
  [ -f "$src" ] || continue
  if ! cmp -s "$src" "$MODEL_DIR/$name.onnx" 2>/dev/null; then
    echo "==> installing model $name into $MODEL_DIR"
    $SUDO install -D -m 0644 "$src" "$MODEL_DIR/$name.onnx"
  fi
done

if [ "$WITH_TRAIN" -eq 1 ] && [ -x "$ROOT/scripts/setup-train.sh" ]; then
  "$ROOT/scripts/setup-train.sh"
fi
echo "==> set-up complete"
