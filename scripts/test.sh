#!/usr/bin/env bash
# The project's test command: set-up (idempotent), formatting and lint checks, then every test
# of the workspace (engine, element, command, trainer) in release mode.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh
# shellcheck source=torch-env.sh
source scripts/torch-env.sh

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --release -- -D warnings
echo "==> cargo test"
cargo test --workspace --all-features --release
