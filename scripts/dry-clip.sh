#!/usr/bin/env bash
# Extracts the project's dry clip (the clean side of the MSCSC "corner" video pair: a street,
# 100 frames of 320x240) as PNG frames into DIR, unless DIR already holds them:
#   scripts/dry-clip.sh DIR [WIDTHxHEIGHT]
# With a size the frames are scaled by GStreamer's videoscale, as a pipeline feeding the
# element at that size would scale them. NLCL_DATA points at the data folder (default
# ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
D="${NLCL_DATA:-$ROOT/../shared/data}"
dir="${1:?usage: scripts/dry-clip.sh DIR [WIDTHxHEIGHT]}"
size="${2:-}"
[ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && exit 0
caps="video/x-raw,format=RGB"
[ -n "$size" ] && caps="$caps,width=${size%x*},height=${size#*x}"
mkdir -p "$dir"
gst-launch-1.0 -q filesrc location="$D/paired_video/MSCSC_corner/corner.mp4_gary.mp4" ! decodebin \
  ! videoconvert ! videoscale ! "$caps" ! pngenc ! multifilesink location="$dir/%04d.png"
