#!/usr/bin/env bash
# CPU time of nlclderain on a dry clip and a rainy clip, with and without auto-bypass:
#   bench/auto-bypass.sh [DRY_CLIP] [RAINY_CLIP] [extra nlclderain properties...]
# Defaults, from NLCL_DATA (default ../shared/data): dry = the clean side of the MSCSC "corner"
# pair (a street, 100 frames); rainy = the J4RNet "practical" frames (real heavy rain, 50
# frames), encoded to a clip first. (The pair's corner.mp4_garyrain.mp4 is not a rainy clip: it
# holds the rain layer alone, streaks on black.) Each clip is decoded once to raw I420 frames of SIZE
# (default 640x360) in a file (so decoding does not count), then pushed through the element
# with and without auto-bypass, REPEAT times in a row (default 3: start-up counts less). Prints, per clip
# and setting, the process's CPU time (user + system), the frames the model ran on (the
# nlcl-rain messages of message-interval=1) and the share of frames auto-bypass passed without
# running the model, then the CPU ratio with / without, and the rain meter per frame without
# auto-bypass (the `last` field of every nlcl-rain message: min / median / max, what
# rain-threshold is compared with). GST_PLUGIN_PATH must reach
# libgstnlcl.so (default: target/release of this checkout).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$ROOT/target/release}"
D="${NLCL_DATA:-$ROOT/../shared/data}"
dry="${1:-$D/paired_video/MSCSC_corner/corner.mp4_gary.mp4}"
rainy="${2:-}"
shift $(( $# < 2 ? $# : 2 ))
extra=("$@")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ -z "$rainy" ]; then
  frames_dir="$D/real_rain_video/J4RNet_practical"
  [ -d "$frames_dir" ] || { echo "missing frames: $frames_dir" >&2; exit 2; }
  rainy="$tmp/J4RNet_practical.mp4"
  gst-launch-1.0 -q multifilesrc location="$frames_dir/%03d.png" start-index=1 \
    caps=image/png,framerate=25/1 ! pngdec ! videoconvert ! video/x-raw,format=I420 \
    ! x264enc quantizer=10 pass=quant ! h264parse ! mp4mux ! filesink location="$rainy"
fi
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(getconf _NPROCESSORS_ONLN) cores"
for clip in "$dry" "$rainy"; do
  [ -f "$clip" ] || { echo "missing clip: $clip" >&2; exit 2; }
  name=$(basename "$clip")
  size="${SIZE:-640x360}"; w=${size%x*}; h=${size#*x}
  # Raw I420 frames in a file, so each run reads frames without decoding them.
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin ! videoconvert ! videoscale \
    ! "video/x-raw,format=I420,width=$w,height=$h" ! filesink location="$tmp/once" > /dev/null
  for _ in $(seq "${REPEAT:-3}"); do cat "$tmp/once"; done > "$tmp/raw"
  frames=$(( $(stat -c %s "$tmp/raw") / (w * h * 3 / 2) ))
  declare -A cpu=()
  for auto in false true; do
    /usr/bin/time -f "%U %S" -o "$tmp/time" gst-launch-1.0 -m filesrc location="$tmp/raw" \
      blocksize=$(( w * h * 3 / 2 )) ! rawvideoparse format=i420 width="$w" height="$h" framerate=25/1 \
      ! nlclderain qos=false auto-bypass="$auto" message-interval=1 "${extra[@]}" \
      ! fakesink sync=false > "$tmp/log" 2>&1
    ran=$(grep -c "nlcl-rain" "$tmp/log" || true)
    t=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/time")
    cpu[$auto]=$t
    [ "$auto" = false ] && sed -n 's/.*nlcl-rain,.* last=(double)\([0-9.e+-]*\),.*/\1/p' "$tmp/log" \
      | sort -g > "$tmp/meter"
    awk -v n="$name" -v a="$auto" -v t="$t" -v r="$ran" -v f="$frames" 'BEGIN {
      printf "%-28s auto-bypass=%-5s CPU %7.2f s  model ran on %4d of %4d frames (%.0f %% bypassed)\n",
        n, a, t, r, f, 100 * (f - r) / f }'
  done
  awk -v n="$name" -v a="${cpu[true]}" -v b="${cpu[false]}" \
    'BEGIN { printf "%-28s CPU with / without auto-bypass: %.2f\n", n, a / b }'
  awk -v n="$name" '{ v[NR] = $1 } END { if (NR) printf "%-28s rain meter per frame (levels): min %.2f  median %.2f  max %.2f  (%d frames)\n", n, v[1], v[int((NR + 1) / 2)], v[NR], NR }' "$tmp/meter"
done
