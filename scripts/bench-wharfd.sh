#!/usr/bin/env bash
# End-to-end benchmark (as root): `wharf run --rm IMG true` against `podman run --rm IMG true`
# with the same busybox image and the same network mode, interleaved in one run; then the idle
# RSS of a container's monitor (runhcs shim) against podman's conmon, and wharfd's idle RSS.
# Both engines run inside a network namespace this script creates (their bridges and nftables
# rules live there) and are removed afterwards.
#   bash scripts/bench-wharfd.sh [-n RUNS] [--net default|none]
set -euo pipefail
cd "$(dirname "$0")/.."
N=20
NET=default
while [[ $# -gt 0 ]]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    --net) NET=$2; shift 2 ;;
    *) echo "bench-wharfd: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "bench-wharfd: needs root" >&2; exit 1; }
bash scripts/deps.sh >/dev/null
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release -q -p wharfd -p wharf
RUNHCS=$(bash scripts/build-runhcs.sh)
BIN=$(dirname "$RUNHCS")
cp target/release/wharfd target/release/wharf "$BIN/"

work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
ns=wbench$$
ip netns add "$ns"
ip -n "$ns" link set lo up
cleanup() {
  set +e
  WHARF_HOST=unix://$work/run/wharf.sock "$BIN/wharf" rm -f $(WHARF_HOST=unix://$work/run/wharf.sock "$BIN/wharf" ps -aq 2>/dev/null) >/dev/null 2>&1
  [[ -n ${wpid:-} ]] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
  nsenter --net=/run/netns/"$ns" -- podman rm -f -a >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip netns del "$ns"
  rm -rf "$work"
}
trap cleanup EXIT

# The same root filesystem for both: busybox-static with its applets.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

nsenter --net=/run/netns/"$ns" -- "$BIN/wharfd" --data-root "$work/data" --exec-root "$work/run" \
  --runhcs "$RUNHCS" >"$work/wharfd.log" 2>&1 &
wpid=$!
export WHARF_HOST=unix://$work/run/wharf.sock
for _ in $(seq 100); do [[ -S $work/run/wharf.sock ]] && break; sleep 0.05; done
"$BIN/wharf" import "$work/busybox.tar" wbench:latest >/dev/null
nsenter --net=/run/netns/"$ns" -- podman import "$work/busybox.tar" localhost/wbench:latest >/dev/null

wnet=(); pnet=()
if [[ $NET == none ]]; then wnet=(--network none); pnet=(--network none); fi
PODMAN=(nsenter --net=/run/netns/"$ns" -- podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "${pnet[@]}" localhost/wbench true)
WHARF=("$BIN/wharf" run --rm "${wnet[@]}" wbench true)
# Warm both (first-use costs: image unpack, network creation).
"${WHARF[@]}"; "${PODMAN[@]}"

python3 - "$N" "$NET" <<PY
import subprocess, sys, time, statistics, os
n, net = int(sys.argv[1]), sys.argv[2]
wharf = """${WHARF[*]}""".split()
podman = """${PODMAN[*]}""".split()
times = {"wharf": [], "podman": []}
for i in range(n):
    order = [("wharf", wharf), ("podman", podman)] if i % 2 == 0 else [("podman", podman), ("wharf", wharf)]
    for name, cmd in order:
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(f"{name} failed: {r.stderr.decode()}")
        times[name].append(dt)
w, p = statistics.median(times["wharf"]), statistics.median(times["podman"])
print(f"run --rm true (network {net}), {n} runs each, interleaved:")
print(f"  wharf  median {w*1000:7.1f} ms")
print(f"  podman median {p*1000:7.1f} ms")
print(f"  ratio wharf/podman {w/p:.2f} (goal <= 0.20: {'met' if w/p <= 0.2 else 'not met'})")
PY

# Idle memory: five sleeping containers each.
for i in 1 2 3 4 5; do
  "$BIN/wharf" run -d "${wnet[@]}" wbench sleep 1000 >/dev/null
  nsenter --net=/run/netns/"$ns" -- podman run -d --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "${pnet[@]}" localhost/wbench sleep 1000 >/dev/null
done
sleep 3
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
shim=$(for p in $(pgrep -f "runhcs.*shim --id"); do rss "$p"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
conmon=$(for p in $(pgrep -x conmon); do rss "$p"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "idle RSS per container monitor (median of 5): runhcs shim ${shim} KiB, podman conmon ${conmon} KiB (goal <= 1024 KiB: $([[ ${shim:-99999} -le 1024 ]] && echo met || echo 'not met'))"
echo "wharfd idle RSS with 5 containers: $(rss "$wpid") KiB"
