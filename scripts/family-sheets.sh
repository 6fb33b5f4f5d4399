#!/usr/bin/env bash
# Side-by-side sheets of real rain for the model family, committed in models/sheets/:
# each row is input | pure NLCL (the first built-in model) | the InstanceNorm lite (built in
# until the normalisation-free one) | lite | standard | full.
#   real-rain-sirr.jpg     the first six SIRR_real web photos by file name
#   real-rain-video.jpg    frames 10 and 40 of NTURain rb2 and of J4RNet practical
#   samples.jpg            the README's four sample photos (samples/rain)
#   dry-video.jpg          frames 10 and 60 of a dry street clip at 640x360 (scripts/dry-clip.sh):
#                          what each model changes where there is no rain
#   rendered-rain.jpg      the realistic renderer on the sample photos (original | rendered)
# NLCL_DATA points at the data folder (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=torch-env.sh
[ -f scripts/torch-env.sh ] && source scripts/torch-env.sh 2>/dev/null
D="${NLCL_DATA:-../shared/data}"
S=models/sheets
mkdir -p "$S" out/sheets
compare=(-m models/nlcl-w16d4s2r.onnx --compare models/lite-instancenorm.onnx --compare lite
  --compare standard --compare full)
sirr=()
while read -r f; do sirr+=("$D/real_rain/SIRR_real/$f"); done < <(ls "$D/real_rain/SIRR_real" | sort | head -n 6)
target/release/nlcl derain "${sirr[@]}" -o out/sheets/sirr --overwrite "${compare[@]}" --sheet "$S/real-rain-sirr.jpg"
target/release/nlcl derain "$D/real_rain_video/NTURain_rb2/00010.jpg" "$D/real_rain_video/NTURain_rb2/00040.jpg" \
  "$D/real_rain_video/J4RNet_practical/010.png" "$D/real_rain_video/J4RNet_practical/040.png" \
  -o out/sheets/video --overwrite "${compare[@]}" --sheet "$S/real-rain-video.jpg"
target/release/nlcl derain samples/rain -o out/sheets/samples --overwrite "${compare[@]}" --sheet "$S/samples.jpg"
scripts/dry-clip.sh out/family-eval/dry-clip-360 640x360
target/release/nlcl derain out/family-eval/dry-clip-360/0010.png out/family-eval/dry-clip-360/0060.png \
  -o out/sheets/dry --overwrite "${compare[@]}" --sheet "$S/dry-video.jpg"
target/release/nlcl render-rain samples/norain -o out/sheets/rendered --style realistic --seed 1 \
  --sheet "$S/rendered-rain.jpg"
