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
cargo build --release -p nlcl-cli -p nlcl-train
runs=(full nolayer noloc cut)
# The step a run's last.safetensors holds.
last_step() { sed -n 's/^step = \([0-9][0-9]*\)$/\1/p' "models/runs/ablation-$1/state.toml"; }
if [ -z "${STEP:-}" ]; then
  # Each run's steps once (a kept checkpoint and last.safetensors may share one), then the
  # highest step all runs have.
  STEP=$(for n in "${runs[@]}"; do
    {
      { ls "models/runs/ablation-$n/checkpoints/" 2>/dev/null || true; } \
        | sed -n 's/^step-0*\([0-9][0-9]*\)\.safetensors$/\1/p'
      last_step "$n"
    } | sort -un
  done | sort -n | uniq -c | awk -v k="${#runs[@]}" '$1 >= k { s = $2 } END { print s }')
fi
[ -n "$STEP" ] || { echo "no step that every ablation run has a checkpoint of" >&2; exit 1; }
echo "ablations at step $STEP"
for n in "${runs[@]}"; do
  run="models/runs/ablation-$n"
  ck=$(printf "%s/checkpoints/step-%06d.safetensors" "$run" "$STEP")
  if [ ! -f "$ck" ]; then
    [ "$(last_step "$n")" = "$STEP" ] || { echo "$n: no checkpoint at step $STEP" >&2; exit 1; }
    ck="$run/last.safetensors"
  fi
  out="out/ablations/$n-$STEP"
  mkdir -p "$out"
  target/release/nlcl export "$ck" -o "$out/model.onnx" > /dev/null
  echo "== $n ($ck)"
  target/release/nlcl eval -m "$out/model.onnx" --pairs "$D/paired/Rain100L" --clean "$D/clean/Kodak24" -o "$out" 2>/dev/null \
    | grep -E "Y-PSNR|do-no-harm"
done
