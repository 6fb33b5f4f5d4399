#!/usr/bin/env bash
# Trains (or resumes) the dehazing model and exports it as models/dehaze.onnx (model=dehaze):
# the lite architecture started from the deraining lite model, synthetic pairs of haze rendered
# on the clean photos (--degradation haze: atmospheric scattering over a depth proxy, see
# nlcl::haze), 20 % dry pairs, the colour term, 20 % JPEG-compressed pairs; the validation
# photos of models/validation.txt are held out. The run folder is models/runs/dehaze-lite; the
# shipped model is its step 14,000 (EXPORT_STEP), chosen on the validation set's haze/ folder
# (scripts/validation-set.sh; models/MODELS.md). NLCL_DATA points at the data folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli -p nlcl-train
run=models/runs/dehaze-lite
OMP_NUM_THREADS="${THREADS:-1}" target/release/nlcl train \
  --render-rain-on "$D/clean_more" "$D/clean/skimage" --clean "$D/clean_more" "$D/clean/skimage" \
  --holdout models/validation.txt --init models/lite-instancenorm.onnx --degradation haze \
  --unshuffle 2 --residual --disc-channels 32 --crop 128 --batch 1 \
  --lambda-pair 1 --pair-batch 8 --pair-crop 96 --pair-identity 0.2 --lambda-pair-rain 0 \
  --lambda-pair-mean 1 --pair-jpeg 0.2 --unpaired-every 0 --lambda-idt 1 --ema 0.999 --lr 2e-4 \
  --steps "${STEPS:-16000}" --checkpoint-every 2000 --keep-checkpoints --no-progress --out "$run" "$@"
step="${EXPORT_STEP:-14000}"
target/release/nlcl export "$(printf "%s/checkpoints/step-%06d.safetensors" "$run" "$step")" \
  -o models/dehaze.onnx --task dehaze
