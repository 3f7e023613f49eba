#!/usr/bin/env bash
# The main job on a fresh machine (as root, offline): install what is needed, build wharf,
# wharfd and runhcs, make a busybox image from the host's busybox-static (no registry needed),
# and show real containers: a run with its own address, two containers on one network that
# reach each other by name, a published port, exec and logs, a commit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
echo "+ building wharf, wharfd and runhcs (release)"
cargo build --release -q -p wharfd -p wharf
RUNHCS=$(bash scripts/build-runhcs.sh)
BIN=$(dirname "$RUNHCS")
cp target/release/wharfd target/release/wharf "$BIN/"
wharf() { echo "+ wharf $*" >&2; "$BIN/wharf" "$@"; }

work=$(mktemp -d /tmp/wharf-demo.XXXXXX)
cleanup() {
  "$BIN/wharf" rm -f demo-web demo-db demo-client >/dev/null 2>&1 || true
  "$BIN/wharf" network rm demo-net >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# wharf starts wharfd (next to it) on first use when /run/wharf/wharf.sock does not answer.
wharf version

if ! "$BIN/wharf" image inspect busybox:latest >/dev/null 2>&1; then
  mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/www"
  cp /bin/busybox "$work/rootfs/bin/"
  for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -s busybox "$work/rootfs/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
  echo 'root:x:0:' > "$work/rootfs/etc/group"
  tar -C "$work/rootfs" -cf "$work/busybox.tar" .
  wharf import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
fi
wharf images

wharf run --rm --name demo-hello busybox sh -c 'echo "hello from $(hostname), pid $$"; ip -4 addr show eth0 | grep inet'

wharf network create demo-net
wharf run -d --name demo-db --network demo-net busybox sh -c 'echo "db says hi" > /www/index.html; httpd -f -p 80 -h /www'
wharf run --rm --name demo-client --network demo-net busybox wget -qO- http://demo-db/index.html

wharf run -d --name demo-web -p 8080:80 busybox sh -c 'echo "published from a container" > /www/index.html; echo serving; httpd -f -v -p 80 -h /www'
sleep 0.3
echo "+ wget http://127.0.0.1:8080/ (from the host)"
busybox wget -qO- http://127.0.0.1:8080/
wharf ps
wharf exec demo-web sh -c 'echo "exec in $(hostname): $(cat /www/index.html)"'
wharf logs demo-web
wharf commit demo-web demo/web:1
wharf run --rm demo/web:1 cat /www/index.html
wharf rm -f demo-web demo-db
wharf rmi demo/web:1
echo "demo: done"
