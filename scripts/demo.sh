#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build runhcs, build a busybox
# bundle and run a real container from it with runhcs. Works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
RUNHCS=$(bash scripts/build-runhcs.sh)

work=$(mktemp -d /tmp/wharf-demo.XXXXXX)
trap '"$RUNHCS" --root "$work/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/etc"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/bundle/rootfs/etc/group"
"$RUNHCS" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["hostname"] = "wharf-demo"
c["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname), pid $$ in its own namespaces\"; id; grep -E 'Cap(Eff|Bnd)|NoNewPrivs' /proc/self/status; echo 'mounts:'; mount | sed -n '1,6p'"]
json.dump(c, open(p, "w"), indent=2)
PY
echo "+ runhcs run --bundle $work/bundle demo"
"$RUNHCS" --root "$work/state" run --bundle "$work/bundle" demo
