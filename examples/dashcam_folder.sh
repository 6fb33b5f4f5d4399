#!/usr/bin/env bash
# A dashcam workflow: derain every clip of a card dump (sub-folders included) into a mirror
# folder, skipping clips done in an earlier run, then list what was written.
#   examples/dashcam_folder.sh CARD_DUMP OUT [nlcl derain options, e.g. --model standard --crf 23]
# `nlcl` is taken from PATH, else from this checkout's target/release.
set -euo pipefail
src="${1:?usage: dashcam_folder.sh CARD_DUMP OUT [options]}"
out="${2:?usage: dashcam_folder.sh CARD_DUMP OUT [options]}"
shift 2
nlcl="$(command -v nlcl || echo "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/nlcl")"
# --recursive keeps the card's folder structure; existing outputs are kept (no --overwrite), so
# an interrupted run resumes where it stopped; --keep-going lets one broken clip not stop the rest.
"$nlcl" derain "$src" -o "$out" --recursive --keep-going "$@" || status=$?
echo "derained clips:"
find "$out" -name '*.mp4' -printf '  %P  %s bytes\n' | sort
exit "${status:-0}"
