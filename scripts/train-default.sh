#!/usr/bin/env bash
# Trains (or resumes) the default model in models/runs/default, then exports models/default.onnx.
# Data: real rainy photos and frames plus rain rendered on clean photos, clean photos unpaired
# (see models/MODELS.md). NLCL_DATA points at the data folder (default: ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
STEPS="${STEPS:-20000}"
cargo build --release -p nlcl-cli --features train
target/release/nlcl train \
  --rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical" \
  --render-rain-on "$D/clean/Kodak24" "$D/clean/skimage" \
  --clean "$D/clean/Kodak24" "$D/clean/skimage" \
  --out models/runs/default \
  --width 24 --depth 6 --unshuffle 2 --residual \
  --crop 128 --batch 1 --disc-channels 32 --lambda-idt 1 \
  --steps "$STEPS" --checkpoint-every 250 --device "${DEVICE:-auto}" "$@"
target/release/nlcl export models/runs/default -o models/default.onnx
