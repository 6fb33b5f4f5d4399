#!/usr/bin/env bash
# Builds the validation set that recipes and checkpoints are chosen on (never reported; see
# models/MODELS.md, "Validation protocol"): the photos listed in models/validation.txt (held out of
# training with `nlcl train --holdout models/validation.txt`), from the data folder
# (NLCL_DATA, default ../shared/data, its clean_more/ subfolders), as
#   OUT/dry/          the photos themselves (do-no-harm: nlcl eval --clean OUT/dry)
#   OUT/rain/         rain rendered on them, fixed seed, realistic style (nlcl eval --pairs OUT/rain)
#   OUT/rain-light/   the same with the light style
#   OUT/rain-classic/ the same with the classic style (untapered noise-and-motion-blur streaks)
#   OUT/rain-downpour/ the realistic style with every heavy image a sharp downpour (dense thin
#                     unblurred streaks; render-rain --sharp-downpour 1)
#   OUT/haze/         haze rendered on them, fixed seed (the dehazing model's validation set)
# Usage: scripts/validation-set.sh OUT   (needs target/release/nlcl)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/validation-set.sh OUT}"
D="${NLCL_DATA:-$ROOT/../shared/data}/clean_more"
NLCL="${NLCL_BIN:-$ROOT/target/release/nlcl}"
[ -d "$D" ] || { echo "validation-set: no $D (set NLCL_DATA)" >&2; exit 1; }
mkdir -p "$OUT/dry"
files=()
while read -r entry; do
  entry="${entry%%#*}"; entry="$(echo "$entry" | xargs)"
  [ -n "$entry" ] || continue
  [ -f "$D/$entry" ] || { echo "validation-set: $D/$entry is missing" >&2; exit 1; }
  files+=("$D/$entry")
  # Folder and name, so equal names in two folders stay apart.
  cp "$D/$entry" "$OUT/dry/$(dirname "$entry")_$(basename "$entry")"
done < "$ROOT/models/validation.txt"
[ -d "$OUT/rain" ] || "$NLCL" render-rain "$OUT"/dry/* -o "$OUT/rain" --pairs --style realistic --seed 7
[ -d "$OUT/rain-light" ] || "$NLCL" render-rain "$OUT"/dry/* -o "$OUT/rain-light" --pairs --style light --seed 8
# Older sets made before the classic style or the haze renderer gain their folders without
# changing the rest.
[ -d "$OUT/rain-classic" ] || "$NLCL" render-rain "$OUT"/dry/* -o "$OUT/rain-classic" --pairs --style classic --seed 10
[ -d "$OUT/rain-downpour" ] || "$NLCL" render-rain "$OUT"/dry/* -o "$OUT/rain-downpour" --pairs --style realistic --sharp-downpour 1 --seed 11
[ -d "$OUT/haze" ] || "$NLCL" render-rain "$OUT"/dry/* -o "$OUT/haze" --pairs --haze --seed 9
echo "validation set: ${#files[@]} photos in $OUT"
