#!/usr/bin/env bash
# The INT8 variants of the model family, as models/MODELS.md reports them:
#   scripts/int8-variants.sh [NAME...]   (default: lite standard full)
# Calibration images (never the validation or report sets): the clean training photos of
# clean_more/ (the validation photos of models/validation.txt left out; scripts/adapt-rain100l.sh
# links them) and the same photos with rendered rain (seed 1). Writes out/int8/NAME-int8.onnx
# with `nlcl int8`, scores each variant with scripts/eval-family.sh (validation, report sets,
# steadiness, fps in gst-launch-1.0) into out/family-eval/NAME-int8/, and times it against its
# float32 model, bare sessions side by side (`nlcl bench --parts d`, one and two threads) into
# out/int8/NAME-bench.txt. BENCH_ONLY=1 times variants written before.
# NLCL_DATA points at the data folder (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
[ -f scripts/torch-env.sh ] && source scripts/torch-env.sh 2>/dev/null
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli -p gst-plugin-nlcl
# The clean training photos: clean_more/ less the validation photos, as symbolic links.
C=out/adapt/clean-train
scripts/clean-train.sh "$C"
mkdir -p out/int8
[ -d out/int8/calib-rain ] ||
  target/release/nlcl render-rain "$C" -o out/int8/calib-rain --seed 1 --style realistic
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lite standard full)
if [ "${BENCH_ONLY:-0}" != 1 ]; then
  files=()
  for m in "${models[@]}"; do
    target/release/nlcl int8 "$m" --calibration out/int8/calib-rain "$C" -o "out/int8/$m-int8.onnx"
    files+=("out/int8/$m-int8.onnx")
  done
  MODELS="${files[*]}" SKIP_BUILD=1 scripts/eval-family.sh
fi
for m in "${models[@]}"; do
  for t in 1 2; do
    target/release/nlcl bench --parts d -m "$m" --versus "out/int8/$m-int8.onnx" --threads $t \
      --sizes 640x360 --frames 30 --rounds 5 2>/dev/null
  done | tee "out/int8/$m-bench.txt"
done
