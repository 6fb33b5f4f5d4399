#!/usr/bin/env bash
# The recipe ablation of models/MODELS.md: the `lite` architecture trained STEPS steps (default
# 3000) per row, each row changing one thing, then scored on the validation set
# (scripts/validation-set.sh; never on the report sets). Two rows train at a time, one thread
# each (JOBS=1: one at a time). Runs and scores go to out/recipe-ablations/ROW/; the table is
# printed at the end.
#   light      synthetic pairs (20 % of them dry), light renderer, InstanceNorm blocks, lr 2e-4
#   realistic  the same with the realistic renderer (heavy rain, veil, drops, dark streaks):
#              the base the rows below change one thing of
#   fastlr     learning rate 1e-3
#   normfree   normalisation-free blocks
#   nffastlr   normalisation-free blocks and learning rate 1e-3
#   ema        moving average of the weights (0.999) exported
#   noidt      no dry (identity) pairs
#   moreidt    40 % dry pairs
#   rainsup    rain-layer supervision (the rain generator learns the rendered rain)
#   nlcl       NLCL's unpaired losses on real rainy images every 4th step (identity weight 1)
#   nlcllow    the same with the unpaired losses at a tenth of their weight
#   purenlcl   NLCL alone, no pairs (the shipped model's stage-1 recipe)
#   combined   the family's recipe (scripts/train-family.sh): realistic, ema, 30 % dry pairs
# NLCL_DATA points at the data folder (default ../shared/data); ROWS="a b" picks rows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
OUT=out/recipe-ablations
STEPS="${STEPS:-3000}"
cargo build --release -p nlcl-cli -p nlcl-train
[ -d "$OUT/val/dry" ] || scripts/validation-set.sh "$OUT/val" > /dev/null
data=(--render-rain-on "$D/clean_more" "$D/clean/skimage" --clean "$D/clean_more" "$D/clean/skimage"
  --holdout models/validation.txt
  --rainy "$D/real_rain/SIRR_real" "$D/real_rain_video/NTURain_rb2" "$D/real_rain_video/J4RNet_practical")
arch=(--width 16 --depth 4 --unshuffle 2 --residual --disc-channels 32 --crop 128 --batch 1)
pairs=(--lambda-pair 1 --pair-batch 8 --pair-crop 96)
# Rows without NLCL's unpaired losses and without rain-layer supervision add these.
only=(--unpaired-every 0 --lambda-pair-rain 0)
row_args() {
  case "$1" in
    light) echo "${pairs[*]} ${only[*]} --rain-style light" ;;
    realistic) echo "${pairs[*]} ${only[*]}" ;;
    fastlr) echo "${pairs[*]} ${only[*]} --lr 1e-3" ;;
    normfree) echo "${pairs[*]} ${only[*]} --no-norm" ;;
    nffastlr) echo "${pairs[*]} ${only[*]} --no-norm --lr 1e-3" ;;
    ema) echo "${pairs[*]} ${only[*]} --ema 0.999" ;;
    noidt) echo "${pairs[*]} ${only[*]} --pair-identity 0" ;;
    moreidt) echo "${pairs[*]} ${only[*]} --pair-identity 0.4" ;;
    rainsup) echo "${pairs[*]} --unpaired-every 0 --lambda-pair-rain 0.5" ;;
    nlcl) echo "${pairs[*]} --lambda-pair-rain 0 --unpaired-every 4 --lambda-idt 1" ;;
    nlcllow) echo "${pairs[*]} --lambda-pair-rain 0 --unpaired-every 4 --lambda-idt 0.1 --lambda-gan 0.1 --lambda-location 0.1 --lambda-layer 0.1 --lambda-rec 0.1 --lambda-fid 0.01" ;;
    purenlcl) echo "--lambda-idt 1" ;;
    combined) echo "${pairs[*]} ${only[*]} --ema 0.999 --pair-identity 0.3" ;;
    *) echo "unknown row $1" >&2; return 1 ;;
  esac
}
ROWS="${ROWS:-light realistic fastlr normfree nffastlr ema noidt moreidt rainsup nlcl nlcllow purenlcl combined}"
train_row() {
  local row=$1
  # shellcheck disable=SC2046 # the row's flags are words
  OMP_NUM_THREADS=1 target/release/nlcl train "${data[@]}" "${arch[@]}" $(row_args "$row") \
    --steps "$STEPS" --checkpoint-every 1000 --no-progress --out "$OUT/$row" > "$OUT/$row.log" 2>&1
  target/release/nlcl export "$OUT/$row" -o "$OUT/$row/model.onnx" > /dev/null
  target/release/nlcl eval -m "$OUT/$row/model.onnx" --threads 1 --pairs "$OUT/val/rain" \
    --clean "$OUT/val/dry" -o "$OUT/$row/eval" > "$OUT/$row/eval.txt" 2>/dev/null
  target/release/nlcl eval -m "$OUT/$row/model.onnx" --threads 1 --pairs "$OUT/val/rain-light" \
    -o "$OUT/$row/eval-light" > "$OUT/$row/eval-light.txt" 2>/dev/null
}
mkdir -p "$OUT"
running=0
for row in $ROWS; do
  row_args "$row" > /dev/null
  train_row "$row" &
  running=$((running + 1))
  if [ "$running" -ge "${JOBS:-2}" ]; then wait -n; running=$((running - 1)); fi
done
wait
printf "%-10s %-22s %-22s %s\n" row "val realistic (dB/SSIM)" "val light (dB/SSIM)" "val dry (Y / RGB dB, colour shift)"
for row in $ROWS; do
  r=$(sed -n 's/.*output Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 \/ \2/p' "$OUT/$row/eval.txt")
  l=$(sed -n 's/.*output Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 \/ \2/p' "$OUT/$row/eval-light.txt")
  d=$(sed -n 's/.*PSNR(model(x), x) Y \([0-9.]*\) dB, RGB \([0-9.]*\) dB; mean colour shift \(.*\) levels/\1 \/ \2, \3/p' "$OUT/$row/eval.txt")
  printf "%-10s %-22s %-22s %s\n" "$row" "$r" "$l" "$d"
done
i=$(sed -n 's/.*input  Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 \/ \2/p' "$OUT/${ROWS%% *}/eval.txt")
il=$(sed -n 's/.*input  Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 \/ \2/p' "$OUT/${ROWS%% *}/eval-light.txt")
printf "%-10s %-22s %-22s\n" input "$i" "$il"
