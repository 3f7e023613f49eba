#!/usr/bin/env bash
# hns benchmark: endpoint create+attach+delete against the CNI bridge plugin (needs root).
# HNS_BENCH_ITERS=N changes the number of runs (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo bench -p hns --bench endpoint
