#!/usr/bin/env bash
# Trains (or resumes) the default model in two stages, then exports models/default.onnx:
#   1. models/runs/default       NLCL training, identity weight 1 (20,000 steps planned)
#   2. models/runs/default-idt5  fine-tune from stage 1 with identity weight 5 (2,000 steps),
#                                which removes the colour cast stage 1 puts on rain-free frames
# STAGE=1 or STAGE=2 runs one stage only. Data: real rainy photos and frames plus rain rendered on
# clean photos, clean photos unpaired (see models/MODELS.md); NLCL_DATA points at the data folder
# (default: ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
cargo build --release -p nlcl-cli --features train
common=(--rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical"
  --render-rain-on "$D/clean/Kodak24" "$D/clean/skimage"
  --clean "$D/clean/Kodak24" "$D/clean/skimage"
  --width 24 --depth 6 --unshuffle 2 --residual --crop 128 --batch 1 --disc-channels 32
  --checkpoint-every 250 --device "${DEVICE:-auto}")
if [ "${STAGE:-1}" = 1 ]; then
  target/release/nlcl train "${common[@]}" --out models/runs/default --lambda-idt 1 --steps "${STEPS1:-20000}" "$@"
fi
if [ "${STAGE:-2}" = 2 ]; then
  target/release/nlcl train "${common[@]}" --out models/runs/default-idt5 --lambda-idt 5 --steps "${STEPS2:-2000}" \
    --init models/runs/default/last.safetensors "$@"
fi
target/release/nlcl export models/runs/default-idt5 -o models/default.onnx
