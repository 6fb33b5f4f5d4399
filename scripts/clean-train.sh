#!/usr/bin/env bash
# Links the clean training photos (clean_more/ less the validation photos of
# models/validation.txt) into OUT (default out/adapt/clean-train), once: the dry photos that
# `nlcl adapt` renders rain on (scripts/adapt-rain100l.sh) and that calibrate the INT8 variants
# (scripts/int8-variants.sh). NLCL_DATA points at the data folder (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
D="${NLCL_DATA:-../shared/data}"
C="${1:-out/adapt/clean-train}"
[ -d "$C" ] && exit 0
mkdir -p "$C.tmp"
held="$(sed 's/#.*//; s/[[:space:]]*$//' models/validation.txt)"
for f in "$D"/clean_more/*/*.{jpg,jpeg,png}; do
  [ -f "$f" ] || continue
  rel="$(basename "$(dirname "$f")")/$(basename "$f")"
  grep -qxF "$rel" <<< "$held" || ln -sf "$(realpath "$f")" "$C.tmp/${rel/\//_}"
done
mv "$C.tmp" "$C"
