#!/usr/bin/env bash
# Measures the element's temporal smoothing (`temporal-smoothing`, `nlcl eval --temporal-smoothing`)
# on still-camera footage, for each model and carry:
#   scripts/temporal-smoothing.sh [MODELS] [CARRIES] [MOTION]
#   (default: "lite standard full", "0 0.9", 2 levels)
# Prints, per model and carry: Y-PSNR / SSIM on rendered rain over the dry clip (a still street,
# 100 frames of 320x240; every frame its own rain, light style seed 21 and realistic style seed
# 22, as `nlcl render-rain --pairs` writes them), do-no-harm on the dry clip at 640x360, and the
# steadiness (output/input frame-to-frame change) on the J4RNet and NTURain rb2 rain videos and
# on the dry clip. Results go to out/temporal-smoothing/. NLCL_DATA points at the data folder
# (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
[ -f scripts/torch-env.sh ] && source scripts/torch-env.sh 2>/dev/null
D="${NLCL_DATA:-../shared/data}"
OUT=out/temporal-smoothing
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli
mkdir -p "$OUT"
scripts/dry-clip.sh "$OUT/dry-clip"
scripts/dry-clip.sh "$OUT/dry-clip-360" 640x360
[ -d "$OUT/clip-rain-light/input" ] || target/release/nlcl render-rain "$OUT/dry-clip" --style light \
  --seed 21 --pairs -o "$OUT/clip-rain-light" > /dev/null
[ -d "$OUT/clip-rain/input" ] || target/release/nlcl render-rain "$OUT/dry-clip" --style realistic \
  --seed 22 --pairs -o "$OUT/clip-rain" > /dev/null
motion="${3:-2}"
for m in ${1:-lite standard full}; do
  for carry in ${2:-0 0.9}; do
    o="$OUT/$(basename "$m" .onnx)-$carry-$motion"
    mkdir -p "$o"
    ev=(target/release/nlcl eval -m "$m" --threads 1 --temporal-smoothing "$carry" --motion-threshold "$motion" -o "$o/eval")
    { "${ev[@]}" --pairs "$OUT/clip-rain-light" --clean "$OUT/dry-clip-360" \
        --frames "$D/real_rain_video/J4RNet_practical" --frames "$D/real_rain_video/NTURain_rb2" \
        --frames "$OUT/dry-clip" 2>/dev/null
      "${ev[@]}" --pairs "$OUT/clip-rain" 2>/dev/null; } | grep -vE "^(model|per-image)" > "$o/result.txt"
    printf "%s carry %s motion %s: " "$m" "$carry" "$motion"
    sed -n 's/^pairs [^:]*\/\([^/:]*\): input  Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/\1 (input \2 \/ \3)/p; s/.*output Y-PSNR \([0-9.]*\) dB  SSIM \([0-9.]*\).*/ \1 \/ \2;/p;
            s/^do-no-harm [^:]*: PSNR(model(x), x) Y \([0-9.]*\) dB.*/ dry clip 640x360 \1 dB;/p;
            s/^steadiness [^:]*\/\([^/:]*\):.*(output\/input \([0-9.]*\).*/ steadiness \1 \2;/p' "$o/result.txt" | tr '\n' ' '
    echo
  done
done
