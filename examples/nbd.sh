#!/usr/bin/env bash
# Serve a committed disk over NBD and read it with qemu's tools, without checking it out: commit a small ext4 disk,
# derive a clone of it, serve both from one server, list the exports, read a block, and copy each export to a file
# that is byte-identical to `viva checkout`. Needs mke2fs (e2fsprogs) and qemu-img, qemu-io, qemu-nbd (qemu-utils).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-nbd.XXXXXX)}
port=${NBD_PORT:-10809}
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; echo; echo "files are in $work"' EXIT
set -x
bash "$here/make-example-image.sh" "$work/rootfs" >/dev/null
truncate -s 64M "$work/disk.ext4"
mke2fs -q -t ext4 -d "$work/rootfs" "$work/disk.ext4"
viva init "$work/repo"
export VIVA_REPO=$work/repo
viva commit "$work/disk.ext4" -b vm/base -m "base disk"
viva derive vm/base -b vm/web --set etc/hostname=web -m "web clone"
# Started without the viva() wrapper, so that $! is the server itself.
node "$here/../bin/run.js" nbd vm/base vm/web --listen "127.0.0.1:$port" > "$work/uris" &
server=$!
until [ "$(wc -l < "$work/uris")" -ge 2 ]; do sleep 0.2; done
cat "$work/uris"
qemu-nbd -L -b 127.0.0.1 -p "$port"
qemu-img info "nbd://127.0.0.1:$port/vm/web"
qemu-io -r -f raw -c 'read -v 1024 64' "nbd://127.0.0.1:$port/vm/web"
for b in vm/base vm/web; do
  qemu-img convert -f raw -O raw "nbd://127.0.0.1:$port/$b" "$work/${b#vm/}.nbd.raw"
  viva checkout "$b" "$work/${b#vm/}.raw"
  cmp "$work/${b#vm/}.nbd.raw" "$work/${b#vm/}.raw" && echo "$b: identical"
done
kill -TERM "$server"; wait "$server"; server=
