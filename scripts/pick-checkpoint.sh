#!/usr/bin/env bash
# Scores the kept checkpoints of a run on the validation set (scripts/validation-set.sh; never
# on the report sets), so that the exported checkpoint is chosen there:
#   scripts/pick-checkpoint.sh models/runs/family-lite [EVERY]
# EVERY (default 5000) picks checkpoints whose step is a multiple of it. Prints one line per
# checkpoint: realistic-, light-, classic- and downpour-rain Y-PSNR / SSIM, dry-frame do-no-harm Y dB and the
# mean colour shift. Results go to out/pick/RUN/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
RUN="${1:?usage: scripts/pick-checkpoint.sh RUN [EVERY]}"
EVERY="${2:-5000}"
VAL=out/recipe-ablations/val
[ -d "$VAL/rain-downpour" ] || scripts/validation-set.sh "$VAL" > /dev/null
OUT="out/pick/$(basename "$RUN")"
mkdir -p "$OUT"
num() { sed -n "s/.*output Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 \/ \2/p"; }
for ck in "$RUN"/checkpoints/step-*.safetensors; do
  step=$(basename "$ck" .safetensors); step=$((10#${step#step-}))
  [ $((step % EVERY)) -eq 0 ] || continue
  m="$OUT/step-$step.onnx"
  target/release/nlcl export "$ck" -o "$m" > /dev/null
  r=$(target/release/nlcl eval -m "$m" --threads "${THREADS:-1}" --pairs "$VAL/rain" --clean "$VAL/dry" -o "$OUT/eval" 2>/dev/null)
  l=$(target/release/nlcl eval -m "$m" --threads "${THREADS:-1}" --pairs "$VAL/rain-light" -o "$OUT/eval" 2>/dev/null | num)
  k=$(target/release/nlcl eval -m "$m" --threads "${THREADS:-1}" --pairs "$VAL/rain-classic" -o "$OUT/eval" 2>/dev/null | num)
  p=$(target/release/nlcl eval -m "$m" --threads "${THREADS:-1}" --pairs "$VAL/rain-downpour" -o "$OUT/eval" 2>/dev/null | num)
  d=$(echo "$r" | sed -n 's/.*Y \([0-9.]*\) dB, RGB [0-9.]* dB; mean colour shift \(.*\) levels/\1 dB, \2/p')
  printf "step %6d  realistic %s  light %s  classic %s  downpour %s  dry %s\n" "$step" "$(echo "$r" | num)" "$l" "$k" "$p" "$d"
done
