#!/usr/bin/env bash
# Soak test of `nlcl relay`: FRAMES derained frames through the relay, read by a real RTSP client,
# with the relay's resident memory (VmRSS) sampled at the start, every 10 s, and at the end.
#   bench/relay-soak.sh [FRAMES] [WIDTHxHEIGHT] [FPS]          (defaults: 10000 160x120 30)
# The source is a generated clip of 10 s (FPS x 10 frames, H.264 in MP4) served as a file, which
# the relay plays in a loop at its frame rate, so the run also rebuilds the source pipeline once
# every 10 s (33 times for 10,000 frames at 30 fps): the path a reconnect takes.
# The client is `gst-launch-1.0 rtspsrc ! decodebin ! fakesink num-buffers=FRAMES`.
# Uses target/release/nlcl (built here when missing). Prints "rss start", "rss end", the growth,
# wall time, the client's frame rate and the relay's last stats line; exits non-zero when the
# client or the relay fails, or the relay does not stop cleanly on SIGTERM.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FRAMES="${1:-10000}"
SIZE="${2:-160x120}"
FPS="${3:-30}"
W=${SIZE%x*} H=${SIZE#*x}
NLCL="${NLCL:-$ROOT/target/release/nlcl}"
if [ ! -x "$NLCL" ]; then
    # shellcheck source=../scripts/torch-env.sh
    source "$ROOT/scripts/torch-env.sh"
    (cd "$ROOT" && cargo build --release -p nlcl-cli)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/relay-soak.XXXXXX")"
relay_pid=""
sampler_pid=""
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
    [ -n "$relay_pid" ] && kill -KILL "$relay_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

echo "==> source clip: ${W}x${H} @ ${FPS} fps, $((FPS * 10)) frames (10 s), looped by the relay"
gst-launch-1.0 -q videotestsrc num-buffers=$((FPS * 10)) pattern=ball \
    ! "video/x-raw,width=$W,height=$H,framerate=$FPS/1" ! x264enc ! h264parse ! mp4mux \
    ! filesink location="$work/clip.mp4"

"$NLCL" relay "$work/clip.mp4" --port 0 --stats-interval 10 >"$work/stdout" 2>"$work/stderr" &
relay_pid=$!
url=""
for _ in $(seq 1 600); do
    url="$(sed -n 's/^serving //p' "$work/stdout" | head -n1)"
    [ -n "$url" ] && break
    kill -0 "$relay_pid" 2>/dev/null || { cat "$work/stderr" >&2; echo "relay died" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { cat "$work/stderr" >&2; echo "relay printed no URL" >&2; exit 1; }
# Wait for the first frames, so "start" is the relay at work, model loaded.
for _ in $(seq 1 300); do
    grep -q "source up" "$work/stderr" && break
    sleep 0.1
done
sleep 1
rss_start=$(rss_kib "$relay_pid")
echo "==> relay pid $relay_pid serving $url; rss start ${rss_start} KiB"

(
    while kill -0 "$relay_pid" 2>/dev/null; do
        echo "$(date +%s) $(rss_kib "$relay_pid")"
        sleep 10
    done
) >"$work/rss" 2>/dev/null &
sampler_pid=$!

start=$(date +%s.%N)
gst-launch-1.0 -q rtspsrc location="$url" ! decodebin ! fakesink num-buffers="$FRAMES" sync=false
end=$(date +%s.%N)
rss_end=$(rss_kib "$relay_pid")
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""

kill -TERM "$relay_pid"
status=0
wait "$relay_pid" || status=$?
relay_pid=""

loops=$(grep -c "source ended" "$work/stderr" || true)
awk -v f="$FRAMES" -v a="$start" -v b="$end" -v s0="$rss_start" -v s1="$rss_end" \
    -v size="$SIZE" -v fps="$FPS" -v loops="$loops" 'BEGIN {
        t = b - a
        printf "frames: %d at %s, source %d fps, in %.1f s (%.1f fps at the client); source looped %d times\n", f, size, fps, t, f / t, loops
        printf "rss start: %d KiB (%.1f MiB)\n", s0, s0 / 1024
        printf "rss end:   %d KiB (%.1f MiB)\n", s1, s1 / 1024
        printf "growth:    %+d KiB (%+.2f%%)\n", s1 - s0, 100 * (s1 - s0) / s0
    }'
awk 'NR == 1 { min = $2; max = $2 } { if ($2 < min) min = $2; if ($2 > max) max = $2; n++ }
     END { if (n) printf "rss over the run: %d samples, min %d KiB, max %d KiB\n", n, min, max }' "$work/rss"
echo "rss every 10 s (MiB): $(awk '{ printf "%.1f ", $2 / 1024 }' "$work/rss")"
echo "last stats: $(grep '^stats:' "$work/stdout" | tail -n1)"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
if [ "$status" -ne 0 ]; then
    cat "$work/stderr" >&2
    echo "relay exited with $status after SIGTERM" >&2
    exit 1
fi
echo "relay stopped cleanly on SIGTERM"
