#!/usr/bin/env bash
# Trains (or resumes) a shipped model in two stages, then exports it:
#   1. models/runs/NAME       NLCL training, identity weight 1
#   2. models/runs/NAME-idt5  fine-tune from stage 1 with identity weight 5 (and, for the default
#                             model, colour weight 10), which removes the colour cast stage 1
#                             puts on rain-free frames
# This is the pure NLCL recipe (no synthetic pairs; the model family is trained by
# scripts/train-family.sh). MODEL picks what to train: `default` (w16d4s2r,
# models/nlcl-w16d4s2r.onnx, the built-in model until the family replaced it) or `w24`
# (w24d6s2r, models/w24d6s2r.onnx, the earlier, slower model). STAGE=1 or STAGE=2 runs
# one stage only; STEPS1 / STEPS2 set each stage's planned steps (the learning rate decays over
# the second half of them), EXPORT_STEP exports a kept stage-2 checkpoint instead of the last. Data: real rainy photos and frames plus
# rain rendered on clean photos, clean photos unpaired (see models/MODELS.md); NLCL_DATA points
# at the data folder (default: ../shared/data). Extra arguments go to both `nlcl train` calls.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
NAME="${MODEL:-default}"
case "$NAME" in
  default) arch=(--width 16 --depth 4); stage2=(--lambda-colour 10); out=models/nlcl-w16d4s2r.onnx ;;
  w24) arch=(--width 24 --depth 6); stage2=(); out=models/w24d6s2r.onnx ;;
  *) echo "MODEL must be default or w24, not $NAME" >&2; exit 2 ;;
esac
cargo build --release -p nlcl-cli -p nlcl-train
common=(--rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical"
  --render-rain-on "$D/clean/Kodak24" "$D/clean/skimage"
  --clean "$D/clean/Kodak24" "$D/clean/skimage"
  "${arch[@]}" --unshuffle 2 --residual --crop 128 --rain-style light --batch 1 --disc-channels 32
  --checkpoint-every 250 --keep-checkpoints --device "${DEVICE:-auto}")
if [ "${STAGE:-1}" = 1 ]; then
  target/release/nlcl train "${common[@]}" --out "models/runs/$NAME" --lambda-idt 1 --steps "${STEPS1:-20000}" "$@"
fi
if [ "${STAGE:-2}" = 2 ]; then
  target/release/nlcl train "${common[@]}" --out "models/runs/$NAME-idt5" --lambda-idt 5 "${stage2[@]}" \
    --steps "${STEPS2:-1000}" --init "models/runs/$NAME/last.safetensors" "$@"
fi
if [ -n "${EXPORT_STEP:-}" ]; then
  target/release/nlcl export "$(printf "models/runs/%s-idt5/checkpoints/step-%06d.safetensors" "$NAME" "$EXPORT_STEP")" -o "$out"
else
  target/release/nlcl export "models/runs/$NAME-idt5" -o "$out"
fi
