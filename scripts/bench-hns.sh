#!/usr/bin/env bash
# hns benchmarks (need root), each interleaving both sides in one run:
#   endpoint   — endpoint create+attach+delete against the CNI bridge plugin (goal <= 0.5x)
#   throughput — iperf3 between two containers on an hns NAT network against a bare veth
#                pair between two namespaces (goal >= 0.9x)
# HNS_BENCH_ITERS=N (default 30) endpoint runs; HNS_TPUT_ROUNDS=N (default 5) and
# HNS_TPUT_SECS=S (default 3) throughput rounds. Arguments pick benches (default: both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
benches=("$@")
((${#benches[@]})) || benches=(endpoint throughput)
for b in "${benches[@]}"; do
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo bench -p hns --bench "$b"
done
