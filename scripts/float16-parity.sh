#!/usr/bin/env bash
# Parity of a model's float16 variant with the model itself, as models/MODELS.md reports it:
#   scripts/float16-parity.sh [NAME|FILE]   (default full)
# Writes the variant with `nlcl float16`, derains the validation rain photos and the 640x360 dry
# clip with the float32 model, and scores the float16 variant against those outputs
# (`nlcl eval --pairs`: its "output" Y-PSNR is float16 against float32). On the CPU, ONNX Runtime
# computes float16 convolutions in float32, so this covers the rounding of weights and of the
# values between layers, not a GPU's half-precision arithmetic (scripts/gpu-check.sh).
# Needs scripts/eval-family.sh's sets (out/family-eval/val, out/family-eval/dry-clip-360).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
[ -f scripts/torch-env.sh ] && source scripts/torch-env.sh 2>/dev/null
model="${1:-full}"
OUT=out/float16-parity/$(basename "$model" .onnx)
rm -rf "$OUT" && mkdir -p "$OUT"
target/release/nlcl float16 "$model" -o "$OUT/float16.onnx"
for set in rain:out/family-eval/val/rain/input dry:out/family-eval/dry-clip-360; do
  name=${set%%:*}; dir=$(cd "${set#*:}" && pwd)
  mkdir -p "$OUT/$name"
  ln -s "$dir" "$OUT/$name/input"
  target/release/nlcl derain -m "$model" "$dir" -o "$OUT/$name/target" > /dev/null
  target/release/nlcl eval -m "$OUT/float16.onnx" --pairs "$OUT/$name" -o "$OUT/$name/eval" 2>/dev/null \
    | grep -E "output|pairs"
done
