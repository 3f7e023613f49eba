#!/usr/bin/env bash
# Every test: unit tests, and integration tests that run real containers as root with runhcs
# and, to prove each test right, with runc.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --all-targets -q
cargo test --workspace --no-fail-fast ${TEST_THREADS:+-- --test-threads="$TEST_THREADS"}
