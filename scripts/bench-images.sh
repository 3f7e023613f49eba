#!/usr/bin/env bash
# Image benchmarks (as root): layer unpack against GNU tar, registry pull against skopeo.
# Each prints medians of interleaved runs and the ratio.
#   bash scripts/bench-images.sh [-n RUNS] [--dir DIR]   (DIR: where layers are unpacked; default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo bench -p images --bench unpack -- "$@"
cargo bench -p images --bench pull -- "$@"
