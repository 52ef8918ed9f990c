#!/usr/bin/env bash
# The demo behind `npm run demo`: commit an example image, change it, commit again, then log, show, diff-by-ls,
# and check it out as a directory and as a tar; derive customized clones (one, then a batch with generated host keys),
# move the base and rebuild them, merge two teams' images, then switch, status, diff against a directory, log --graph
# and export to git — all with the viva CLI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-demo.XXXXXX)}
trap 'echo; echo "demo files are in $work"' EXIT
set -x
bash "$here/make-example-image.sh" "$work/rootfs" >/dev/null
viva init "$work/repo"
export VIVA_REPO=$work/repo
viva commit "$work/rootfs" -b demo/1.0/base -m "demo image 1.0" --label release=1.0
# Change the image: a config edit, a new file, a removed file.
sed -i 's/PermitRootLogin yes/PermitRootLogin no/' "$work/rootfs/etc/ssh/sshd_config"
echo "1.1" > "$work/rootfs/etc/demo-version"
rm "$work/rootfs/var/log/boot.log"
sed -i 's/3.0.11-1~deb12u2/3.0.13-1~deb12u1/' "$work/rootfs/var/lib/dpkg/status"
viva commit "$work/rootfs" -b demo/1.0/base -m "harden sshd, add version file" --label release=1.1
viva log
viva show demo/1.0/base
viva ls -l demo/1.0/base:etc
viva cat demo/1.0/base~1:etc/ssh/sshd_config
viva cat demo/1.0/base:etc/ssh/sshd_config
viva tag v1.1 demo/1.0/base
viva branch --list 'demo/**'
viva checkout v1.1 "$work/checkout"
viva checkout demo/1.0/base~1 "$work/base-1.0.tar.zst"
# Inspect: what changed, where a file is, which images have a vulnerable package, search, sizes.
viva diff demo/1.0/base~1 demo/1.0/base
viva diff -p demo/1.0/base~1 demo/1.0/base -- etc/ssh/sshd_config
viva diff --packages demo/1.0/base~1 demo/1.0/base
viva find --sha256 "$(sha256sum < "$work/rootfs/etc/ssh/sshd_config" | cut -d' ' -f1)"
viva find --package openssl --version '<3.0.13'
viva grep PermitRootLogin demo/1.0/base
viva search sshd
viva stats demo/1.0/base
viva du demo/1.0/base
# Derive: customized clones that cost a few KB, made without checking the base out, each with its recipe.
viva derive demo/1.0/base -b demo/web/01 --set $'etc/hostname=web01\n' --mkdir srv/www --set 'srv/www/index.html=<h1>web01</h1>' -m "web server 01"
viva show demo/web/01 --derivation
sed 's#debian/12/base#demo/1.0/base#; s#fleet/#demo/fleet/#; s#count: 100#count: 5#' "$here/fleet.yaml" > "$work/fleet.yaml"
viva derive --batch "$work/fleet.yaml"
viva cat demo/fleet/web-003:etc/ssh/ssh_host_ed25519_key.pub
viva diff demo/1.0/base demo/fleet/web-003 --stat
# Merge: two teams change the same base; their images combine against it (text merged line by line, users per record).
viva derive demo/1.0/base -b demo/team-a --set $'etc/demo-version=1.1-a\n' --set 'srv/a.txt=team a'
viva derive demo/1.0/base -b demo/team-b --set 'etc/ssh/sshd_config=PermitRootLogin no' --set 'srv/b.txt=team b'
viva merge-base demo/team-a demo/team-b
viva merge demo/team-a demo/team-b
viva show demo/team-a --derivation
# The base moves on: rebuild replays every clone's recipe on it (the merge too); a second run has nothing to do.
cp -a "$work/rootfs" "$work/rootfs-1.2"
echo "1.2" > "$work/rootfs-1.2/etc/demo-version"
viva commit "$work/rootfs-1.2" -b demo/1.0/base -m "version 1.2" --label release=1.2
viva derivations demo/1.0/base
viva rebuild --derived-from demo/1.0/base
viva rebuild --derived-from demo/1.0/base
viva cat demo/fleet/db-ams:etc/demo-version
viva cat demo/team-a:srv/b.txt
viva log --derived-from demo/1.0/base --oneline
# As git: HEAD moves with switch; a checkout knows where it came from (status); diff takes a directory on the host;
# log draws branches, merges and derivations; the history exports to a git repository (and imports back).
viva switch demo/team-a
viva checkout demo/team-a "$work/team-a"
echo "edited by hand" > "$work/team-a/etc/motd"
viva status "$work/team-a"
viva diff demo/team-a "$work/team-a" --stat --ignore-mtime
viva log --graph --oneline --decorate demo/team-a demo/team-b
viva export-git demo/1.0/base demo/team-a "$work/images.git"
if command -v git >/dev/null; then git -C "$work/images.git" log --oneline -n 5 demo/team-a; fi
viva fsck
set +x
# diff compares regular files and links; the device node and fifo are compared by type only.
diff -r -x null -x pipe "$work/rootfs" "$work/checkout" && echo "checkout equals the committed tree"
# Disk images (raw/qcow2): see examples/disk-demo.sh; it skips itself when mke2fs, sfdisk or qemu-img are missing.
DEMO_DIR=$work bash "$here/disk-demo.sh"
# Packages (install, upgrade, remove, fleets, rebuild): see examples/packages-demo.sh; it skips itself unless root.
DEMO_DIR=$work bash "$here/packages-demo.sh"
