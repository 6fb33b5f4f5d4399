#!/usr/bin/env bash
# The CUDA frame path on this machine's GPU: builds with `--features cuda`, runs the GPU tests
# (conversion kernels bit-identical to the CPU, model output within the parity tolerance, the
# element in pipelines), then measures frames per second at 1280x720 and 1920x1080 for each
# shipped model and full's float16 variant: the engine alone (examples/gpu_bench.rs) and the
# element in gst-launch-1.0.
# Needs scripts/setup.sh and scripts/setup-gpu.sh first. Results: target/gpu-check/.
# Without a GPU every GPU test prints why it skips and the benchmarks are not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=gpu-env.sh
source scripts/gpu-env.sh
OUTDIR="$ROOT/target/gpu-check"
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUTDIR/gpu.txt" || true

echo "==> GPU tests"
cargo test --release -p nlcl -p gst-plugin-nlcl --features nlcl/cuda,gst-plugin-nlcl/cuda \
  --test cuda --test gpu -- --nocapture --test-threads 1 2>&1 | tee "$OUTDIR/tests.log"
if grep -q "skipping" "$OUTDIR/tests.log"; then
  echo "==> the GPU tests skipped (reasons above); no benchmarks"
  exit 0
fi

# The family (lite is `default`, built in) and full's float16 variant, written here.
cargo run --release -p nlcl-cli -- float16 full -o "$OUTDIR/full-float16.onnx"
models=(models/standard.onnx models/full.onnx "$OUTDIR/full-float16.onnx")

echo "==> engine: frames per second and parity (examples/gpu_bench.rs)"
cargo run --release -p nlcl --features cuda --example gpu_bench -- \
  --frames 200 --json "$OUTDIR/bench.json" default "${models[@]}" | tee "$OUTDIR/bench.log"

echo "==> element in gst-launch-1.0 (bench/gst-launch-fps.sh)"
cargo build --release -p gst-plugin-nlcl --features cuda
for model in - "${models[@]}"; do
  for size in 1280x720 1920x1080; do
    bench/gst-launch-fps.sh "$model" "$size" 1200 bypass=true
    bench/gst-launch-fps.sh "$model" "$size" 200 execution-provider=cuda fallback-to-cpu=false
    bench/gst-launch-fps.sh "$model" "$size" 1200 execution-provider=cuda fallback-to-cpu=false
  done
done 2>&1 | tee "$OUTDIR/gst-launch-fps.log"
