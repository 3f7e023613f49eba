#!/usr/bin/env bash
# Installs every system package wharf's tests and benchmarks need, idempotently.
# Safe to run again: it installs only what is missing.
set -euo pipefail

PKGS=(
  busybox-static      # root filesystems for test and demo containers
  runc crun           # peer runtimes: the integration suite runs against runc, benches against both
  containerd          # real consumer of runhcs (runc v2 shim with BinaryName)
  util-linux          # unshare, nsenter for test harnesses
  iproute2 procps psmisc
  hyperfine
  golang-go golang-github-opencontainers-runtime-tools-dev  # OCI runtime-tools validation suite, built offline
  golang-github-google-uuid-dev    # imported by runtime-tools validation/ (scripts/oci-validation.sh)
  docker-registry apache2-utils   # local registry (and htpasswd) for image push/pull tests
  openssl                         # key + certificate for the registry token-auth test
  skopeo podman zstd              # image archive interop peers, zstd layers
  nftables iperf3 containernetworking-plugins  # hns: inspect rules in tests, throughput bench, CNI bridge peer
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps: all system packages present"
fi

# containerd is started by tests with their own config; never leave the packaged service running.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl stop containerd || true
fi
pkill -x containerd 2>/dev/null || true
# Same for the packaged registry: tests start their own on loopback ports.
pkill -x docker-registry 2>/dev/null || true
exit 0
