#!/usr/bin/env bash
# Evaluates the ablation runs at one step (STEP, default: the highest kept step all four have):
# exports each run's checkpoint and prints Rain100L Y-PSNR / SSIM and Kodak24 do-no-harm, as in
# the ablation table of models/MODELS.md. Results go to out/ablations/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
cargo build --release -p nlcl-cli --features train
runs=(full nolayer noloc cut)
if [ -z "${STEP:-}" ]; then
  STEP=$(for n in "${runs[@]}"; do
    { ls "models/runs/ablation-$n/checkpoints/" 2>/dev/null || true; } \
      | sed -n 's/^step-0*\([0-9][0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1
  done | sort -n | head -1)
fi
echo "ablations at step $STEP"
for n in "${runs[@]}"; do
  run="models/runs/ablation-$n"
  ck=$(printf "%s/checkpoints/step-%06d.safetensors" "$run" "$STEP")
  [ -f "$ck" ] || { echo "$n: no checkpoint at step $STEP ($ck)" >&2; exit 1; }
  out="out/ablations/$n-$STEP"
  mkdir -p "$out"
  target/release/nlcl export "$ck" -o "$out/model.onnx" > /dev/null
  echo "== $n ($ck)"
  target/release/nlcl eval -m "$out/model.onnx" --pairs "$D/paired/Rain100L" --clean "$D/clean/Kodak24" -o "$out" 2>/dev/null \
    | grep -E "Y-PSNR|do-no-harm"
done
