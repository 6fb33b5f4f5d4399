#!/usr/bin/env bash
# Measures `nlcl adapt` as models/MODELS.md reports it: a model adapted for MINUTES (default 30)
# on one CPU thread to the rainy inputs of a paired set (default Rain100L; its targets are never
# read by adapt), with rain rendered on the clean training photos of clean_more/ (the validation
# photos of models/validation.txt left out), then scored on that set:
#   scripts/adapt-rain100l.sh NAME [TAG [nlcl adapt options...]]
# e.g. `scripts/adapt-rain100l.sh lite` (fitted rain, the default) and
# `scripts/adapt-rain100l.sh lite nofit --fit-share 0` (the control without the fit).
# PAIRS=DIR adapts to and scores another paired set (input/ and target/): the adapt recipe is
# chosen with PAIRS=out/family-eval/val/rain-classic (scripts/validation-set.sh), never on
# Rain100L.
# Output: out/adapt/SET-NAME-TAG.onnx, its run folder (rain-fit.txt, rain-fit.png, curves) and
# out/adapt/SET-NAME-TAG.txt (the score). Two runs side by side take one core each.
# NLCL_DATA points at the data folder (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
source scripts/torch-env.sh
D="${NLCL_DATA:-../shared/data}"
NAME="${1:?usage: scripts/adapt-rain100l.sh NAME [TAG [adapt options]]}"
TAG="${2:-fit}"
shift $(($# < 2 ? $# : 2))
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p nlcl-cli -p nlcl-train
P="${PAIRS:-$D/paired/Rain100L}"
set_name="$(basename "$P")"
# The clean training photos: clean_more/ less the validation photos, as symbolic links.
C=out/adapt/clean-train
scripts/clean-train.sh "$C"
out="out/adapt/$set_name-$NAME-$TAG.onnx"
OMP_NUM_THREADS=1 target/release/nlcl adapt --model "$NAME" --rainy "$P/input" --clean "$C" \
  --minutes "${MINUTES:-30}" --threads 1 -o "$out" "$@"
target/release/nlcl eval -m "$out" --threads 1 --pairs "$P" -o "out/adapt/$set_name-$NAME-$TAG-eval" 2>/dev/null \
  | grep -vE "^(model|per-image)" | tee "out/adapt/$set_name-$NAME-$TAG.txt"
