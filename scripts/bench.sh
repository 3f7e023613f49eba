#!/usr/bin/env bash
# Start-latency benchmark: builds runhcs in release mode and compares it with crun and runc
# (crates/runhcs/benches/lifecycle.rs). Needs root. Arguments go to the bench:
#   scripts/bench.sh [-n N] [-w W] [--mode run|cycle|both] [--runtimes runhcs,crun,runc]
#                    [--timeout SECONDS] [--json FILE]
# RUNHCS=/path/to/runhcs overrides the binary under test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "bench: needs root (the runtimes create namespaces and cgroups)" >&2
  exit 1
fi

# Peer runtimes and the busybox root filesystem come from the project's deps script.
if ! command -v crun >/dev/null || ! command -v runc >/dev/null || [[ ! -x /bin/busybox ]]; then
  bash scripts/deps.sh
fi

# The seccomp case uses our own default profile when it exists, else the containers-common one.
if [[ ! -f crates/hcs/src/seccomp/default-profile.json && ! -f /usr/share/containers/seccomp.json ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    golang-github-containers-common >/dev/null 2>&1 ||
    echo "bench: no seccomp profile available; the seccomp case will be skipped" >&2
fi

# The binary as it ships (static, non-PIE): scripts/build-runhcs.sh.
RUNHCS=${RUNHCS:-$(bash scripts/build-runhcs.sh)}
export RUNHCS
exec cargo bench -p runhcs --bench lifecycle -- "$@"
