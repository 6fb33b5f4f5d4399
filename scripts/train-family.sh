#!/usr/bin/env bash
# Trains (or resumes) one model of the family and exports it:
#   MODEL=lite      w16d4s2r  -> models/default.onnx (the model built into the plugin)
#   MODEL=standard  w24d5s2r  -> models/standard.onnx
#   MODEL=full      w32d8s2r  -> models/full.onnx
# (w16d4s2rn etc. with --no-norm, as shipped).
# Recipe (models/MODELS.md, "Recipe"): synthetic pairs rendered on the clean photos with the
# realistic renderer (L1 + gradient L1, 30 % dry pairs), NLCL's unpaired losses on real rainy
# images every UNPAIRED_EVERY-th step (default 0 = off: at full weight they cancel most of the effect, see the ablation), a moving average of the weights;
# the validation photos of models/validation.txt are held out. The run folder is
# models/runs/family-MODEL; rerunning resumes it (MINUTES limits one sitting, default none).
# NLCL_DATA points at the data folder (default ../shared/data); THREADS sets libtorch's threads
# (default 1). RUN names another run folder (models/runs/RUN, e.g. a fine-tune started with
# `--init models/default.onnx`), STYLE the renderer (default realistic), PAIR_IDENTITY the share
# of dry pairs (default 0.3), EXPORT_TO where the model is written (default the shipped file
# of MODEL). Extra arguments go to `nlcl train`. Shipped (chosen on the validation set, see
# models/MODELS.md): all three are normalisation-free, trained from scratch with the mixed
# renderer, then fine-tuned without the accumulation veil and with 30 % of the dry pairs
# softened ("Sixth round"); lite and full have since become longer runs fine-tuned with sharp
# downpours (models/MODELS.md, "Recipe", "Seventh round" and "Tenth round"). The sixth round's recipe:
#   MODEL=lite RUN=family-lite-nf-mixed STYLE=mixed PAIR_IDENTITY=0.4 \
#     scripts/train-family.sh --no-norm --lr 5e-4            (40,000 steps; step 36,000 kept)
#   MODEL=lite RUN=family-lite-nf-softdry STYLE=mixed PAIR_IDENTITY=0.4 STEPS=6000 \
#     scripts/train-family.sh --no-norm --lr 2e-4 --rain-accumulation 0 \
#     --pair-soften 0.3 --pair-soften-dry-only \
#     --init models/runs/family-lite-nf-mixed/checkpoints/step-036000.safetensors
#   standard: the same with MODEL=standard, RUN=family-standard-nf-mixed and STEPS=16000, then
#     RUN=family-standard-nf-softdry STEPS=6000 ... --init models/runs/family-standard-nf-mixed/last.safetensors
#   full: MODEL=full, RUN=family-full-nf-mixed, STEPS=16000, THREADS=2, then
#     RUN=family-full-nf-softdry STEPS=4000 ... --init models/runs/family-full-nf-mixed/last.safetensors
# Without the variables, this script trains the earlier InstanceNorm recipe.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
NAME="${MODEL:-lite}"
case "$NAME" in
  lite) arch=(--width 16 --depth 4); out=models/default.onnx; steps=40000 ;;
  standard) arch=(--width 24 --depth 5); out=models/standard.onnx; steps=15000 ;;
  full) arch=(--width 32 --depth 8); out=models/full.onnx; steps=10000 ;;
  *) echo "MODEL must be lite, standard or full, not $NAME" >&2; exit 2 ;;
esac
out="${EXPORT_TO:-$out}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli -p nlcl-train
run="models/runs/${RUN:-family-$NAME}"
limit=()
[ -n "${MINUTES:-}" ] && limit=(--max-minutes "$MINUTES")
OMP_NUM_THREADS="${THREADS:-1}" target/release/nlcl train \
  --render-rain-on "$D/clean_more" "$D/clean/skimage" --clean "$D/clean_more" "$D/clean/skimage" \
  --rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical" \
  --holdout models/validation.txt \
  --rain-style "${STYLE:-realistic}" \
  "${arch[@]}" --unshuffle 2 --residual --disc-channels 32 --crop 128 --batch 1 \
  --lambda-pair 1 --pair-batch 8 --pair-crop 96 --pair-identity "${PAIR_IDENTITY:-0.3}" --lambda-pair-rain 0 \
  --unpaired-every "${UNPAIRED_EVERY:-0}" --lambda-idt 1 --ema 0.999 \
  --steps "${STEPS:-$steps}" --checkpoint-every 1000 --keep-checkpoints --no-progress \
  --out "$run" "${limit[@]}" "$@"
# The exported checkpoint is chosen on the validation set (scripts/pick-checkpoint.sh RUN):
# EXPORT_STEP=N exports the kept checkpoint of step N instead of the last.
if [ -n "${EXPORT_STEP:-}" ]; then
  target/release/nlcl export "$(printf "%s/checkpoints/step-%06d.safetensors" "$run" "$EXPORT_STEP")" -o "$out"
else
  target/release/nlcl export "$run" -o "$out"
fi
