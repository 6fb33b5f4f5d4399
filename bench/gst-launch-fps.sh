#!/usr/bin/env bash
# Frames per second of nlclderain inside gst-launch-1.0, as a user would run it:
#   bench/gst-launch-fps.sh [MODEL.onnx] [WIDTHxHEIGHT] [FRAMES] [extra nlclderain properties...]
# The built-in model when MODEL is empty or "-". Times the whole gst-launch-1.0 process
# (start-up and model loading included, so the figure is a lower bound on steady state) and
# prints "FRAMES frames in S s: F fps". GST_PLUGIN_PATH must reach libgstnlcl.so
# (default: target/release of this checkout). QUEUE=1 puts a queue in front of the element, so
# that the source renders frames on a thread of its own (what a decoder thread would do).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$ROOT/target/release}"
model="${1:--}"; size="${2:-640x360}"; frames="${3:-300}"
shift $(( $# < 3 ? $# : 3 ))
w=${size%x*} h=${size#*x}
props=("$@")
[ "$model" != "-" ] && props+=("model-file=$model")
start=$(date +%s.%N)
queue=()
[ "${QUEUE:-0}" = 1 ] && queue=(! queue max-size-buffers=8)
gst-launch-1.0 -q videotestsrc num-buffers="$frames" pattern=ball \
  ! "video/x-raw,format=I420,width=$w,height=$h,framerate=30/1" "${queue[@]}" \
  ! nlclderain qos=false "${props[@]}" ! fakesink sync=false
end=$(date +%s.%N)
awk -v f="$frames" -v a="$start" -v b="$end" -v s="$size" -v m="$model" -v p="${props[*]}" \
  'BEGIN { t = b - a; printf "%s %s: %d frames in %.2f s: %.2f fps\n", (m == "-" ? "built-in model" : m) (p == "" ? "" : " (" p ")"), s, f, t, f / t }'
