#!/usr/bin/env bash
# Trains (or resumes) the ablation runs of models/MODELS.md to STEPS steps each (default 6000,
# the plan the committed runs follow; the learning rate decays over the second half), one after
# another, with the earlier w24d6s2r model's stage-1 recipe and one flag changed per run:
#   models/runs/ablation-full     full NLCL
#   models/runs/ablation-nolayer  --no-layer-loss
#   models/runs/ablation-noloc    --no-location-loss
#   models/runs/ablation-cut      --cut (one generator, PatchNCE + GAN, random sampling)
# Every 500 steps a checkpoint is kept (checkpoints/step-NNNNNN.safetensors, not committed) so the runs can be
# compared at the same step; then evaluate with scripts/eval-ablations.sh. NLCL_DATA points at
# the data folder (default: ../shared/data); extra arguments go to every `nlcl train` call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
cargo build --release -p nlcl-cli -p nlcl-train
common=(--rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical"
  --render-rain-on "$D/clean/Kodak24" "$D/clean/skimage"
  --clean "$D/clean/Kodak24" "$D/clean/skimage"
  --width 24 --depth 6 --unshuffle 2 --residual --crop 128 --batch 1 --disc-channels 32 --lambda-idt 1
  --rain-style light
  --checkpoint-every 500 --keep-checkpoints --steps "${STEPS:-6000}" --device "${DEVICE:-auto}")
for run in full:"" nolayer:--no-layer-loss noloc:--no-location-loss cut:--cut; do
  name=${run%%:*} flag=${run#*:}
  # shellcheck disable=SC2086 # an empty flag must vanish
  target/release/nlcl train "${common[@]}" $flag --out "models/runs/ablation-$name" "$@"
done
