#!/usr/bin/env bash
# Scores the model family (MODELS="lite standard full" by default; names or ONNX files) as
# models/MODELS.md reports them, into out/family-eval/NAME/*.txt:
#   report.txt      Rain100L Y-PSNR / SSIM, Kodak24 do-no-harm (the report sets: never used to
#                   choose anything)
#   val.txt         the validation set (scripts/validation-set.sh): rendered rain and dry photos,
#                   and do-no-harm on a dry clip scaled to 640x360 (as bench/auto-bypass.sh runs it)
#   steadiness.txt  frame-to-frame change on the rain videos and on a dry clip (the clean side of
#                   the MSCSC pair, decoded by GStreamer)
#   fps.txt         frames per second at 640x360 in gst-launch-1.0 (bench/gst-launch-fps.sh,
#                   start-up included; 2 runs)
# NLCL_DATA points at the data folder (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# A build with the train feature links libtorch; harmless otherwise.
# shellcheck source=torch-env.sh
[ -f scripts/torch-env.sh ] && source scripts/torch-env.sh 2>/dev/null
D="${NLCL_DATA:-../shared/data}"
OUT=out/family-eval
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli -p gst-plugin-nlcl
mkdir -p "$OUT"
[ -d "$OUT/val/rain-downpour" ] || scripts/validation-set.sh "$OUT/val" > /dev/null
scripts/dry-clip.sh "$OUT/dry-clip"
# The same clip as bench/auto-bypass.sh feeds the element (scaled to 640x360): soft, upscaled
# video is where the models change dry frames most.
scripts/dry-clip.sh "$OUT/dry-clip-360" 640x360
for m in ${MODELS:-lite standard full}; do
  o="$OUT/$(basename "$m" .onnx)"
  mkdir -p "$o"
  echo "== $m"
  target/release/nlcl eval -m "$m" --pairs "$D/paired/Rain100L" --clean "$D/clean/Kodak24" -o "$o/report" 2>/dev/null \
    | grep -vE "^(model|per-image)" | tee "$o/report.txt"
  { target/release/nlcl eval -m "$m" --pairs "$OUT/val/rain" --clean "$OUT/val/dry" -o "$o/val" 2>/dev/null
    target/release/nlcl eval -m "$m" --pairs "$OUT/val/rain-light" -o "$o/val" 2>/dev/null
    target/release/nlcl eval -m "$m" --pairs "$OUT/val/rain-classic" -o "$o/val" 2>/dev/null
    target/release/nlcl eval -m "$m" --pairs "$OUT/val/rain-downpour" -o "$o/val" 2>/dev/null
    target/release/nlcl eval -m "$m" --clean "$OUT/dry-clip-360" -o "$o/val" 2>/dev/null; } \
    | grep -vE "^(model|per-image)" | tee "$o/val.txt"
  target/release/nlcl eval -m "$m" --frames "$D/real_rain_video/J4RNet_practical" \
    --frames "$D/real_rain_video/NTURain_rb2" --frames "$OUT/dry-clip" -o "$o/steadiness" 2>/dev/null \
    | grep steadiness | tee "$o/steadiness.txt"
  if [ "${SKIP_FPS:-0}" != 1 ]; then
    if [ -f "$m" ]; then fps_args=("$m" 640x360 300); else fps_args=(- 640x360 300 "model=$m"); fi
    for _ in 1 2; do bench/gst-launch-fps.sh "${fps_args[@]}"; done | tee "$o/fps.txt"
  fi
done
