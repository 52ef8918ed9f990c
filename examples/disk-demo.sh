#!/usr/bin/env bash
# Disk images with viva: build a small GPT disk (ext4 root partition + a raw partition) from the example rootfs,
# commit it as qcow2 without mounting it, look inside, check it out bit-exact, and build a new disk from its files.
# Needs mke2fs (e2fsprogs), sfdisk (fdisk) and qemu-img (qemu-utils). `npm run demo` runs it when they are installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-disk-demo.XXXXXX)}
for tool in mke2fs sfdisk qemu-img; do
  command -v "$tool" >/dev/null || { echo "disk demo skipped: $tool is not installed (apt-get install e2fsprogs fdisk qemu-utils)"; exit 0; }
done
set -x
[ -d "$work/rootfs" ] || bash "$here/make-example-image.sh" "$work/rootfs" >/dev/null
# A 64 MiB GPT disk: p1 ext4 (the rootfs), p2 "swap" bytes. Then the same disk as compressed qcow2.
truncate -s 64M "$work/disk.raw"
printf 'start=2048, size=98304, type=linux, name=root\nstart=100352, type=swap, name=swap\n' | sfdisk -q --label gpt "$work/disk.raw"
mke2fs -q -F -t ext4 -L root -d "$work/rootfs" -E offset=$((2048 * 512)) "$work/disk.raw" $((98304 / 2))
qemu-img convert -c -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
[ -d "$work/repo" ] || viva init "$work/repo"
export VIVA_REPO=$work/repo
viva commit "$work/disk.qcow2" -b demo/vm/web -m "web VM disk"
viva ls demo/vm/web                         # the partition table, then p1/
viva ls -l demo/vm/web:p1/etc
viva cat demo/vm/web:p1/etc/hostname
viva checkout demo/vm/web "$work/copy.raw"  # bit-exact
viva checkout demo/vm/web "$work/copy.qcow2"
viva checkout demo/vm/web "$work/new.qcow2" --size 128M --label rebuilt   # a new disk from p1's files
# The same files as an EFI system partition (mkfs.vfat + mtools): FAT keeps names, contents and mtimes; what it cannot
# hold (owners, modes, symlinks, ...) is one warning line per kind. (--fs xfs works the same way, run as root.)
if command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null; then
  viva checkout demo/vm/web "$work/esp.raw" --size 128M --fs vfat --label ESP   # FAT has no holes: the 64 MiB sparse file takes 64 MiB
fi
# A disk clone: p1's ext4 patched in place (no rebuild), checked out as a qcow2 overlay over copy.qcow2.
viva derive demo/vm/web -b demo/vm/web-02 --set $'p1/etc/hostname=web-02\n' --mkdir p1/srv/www
viva checkout demo/vm/web-02 "$work/web-02.qcow2" --backing "$work/copy.qcow2"
viva fsck
set +x
[ "$(sha256sum < "$work/disk.raw")" = "$(sha256sum < "$work/copy.raw")" ] && echo "copy.raw is bit-identical to disk.raw"
qemu-img compare -q "$work/disk.qcow2" "$work/copy.qcow2" && echo "copy.qcow2 has the same guest content as disk.qcow2"
qemu-img check -q "$work/new.qcow2" && echo "new.qcow2 (128 MiB, GPT, ext4 'rebuilt') passes qemu-img check"
qemu-img check -q "$work/web-02.qcow2" && echo "web-02.qcow2 is an overlay of $(stat -c %s "$work/web-02.qcow2") bytes on copy.qcow2"
qemu-img info "$work/web-02.qcow2" | grep 'backing file:'
