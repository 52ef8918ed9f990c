#!/usr/bin/env bash
# Builds a small example root filesystem (a few MB) in DIR: config files, a "binary", symlinks, a hardlink,
# a sparse disk file, and — when run as root — owners, setuid, xattrs, a device node and a fifo.
set -euo pipefail
D=${1:?usage: make-example-image.sh DIR}
rm -rf "$D"; mkdir -p "$D"/{etc/ssh,usr/bin,usr/share/doc/demo,var/lib/demo,var/log,home/alice,tmp,dev}
cd "$D"
printf 'PRETTY_NAME="viva demo 1.0"\nNAME="viva-demo"\nVERSION_ID="1.0"\nID=demo\n' > etc/os-release
printf 'demo\n' > etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n' > etc/passwd
printf 'PermitRootLogin yes\nPasswordAuthentication yes\n' > etc/ssh/sshd_config
mkdir -p var/lib/dpkg
printf 'Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2+deb12u2\n\nPackage: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n' > var/lib/dpkg/status
# A "binary" of pseudo-random bytes (deterministic, so re-running gives the same content).
python3 -c "import random,sys; r=random.Random(42); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(2_000_000)))" > usr/bin/demo-server
chmod 755 usr/bin/demo-server
ln -s demo-server usr/bin/demo
for i in $(seq 1 50); do printf 'Documentation page %d of the demo image.\n%s\n' "$i" "$(seq 1 200 | tr '\n' ' ')" > usr/share/doc/demo/page$i.txt; done
cp usr/share/doc/demo/page1.txt usr/share/doc/demo/copy-of-page1.txt   # duplicate content: stored once
ln usr/share/doc/demo/page2.txt usr/share/doc/demo/hardlink-to-page2.txt
truncate -s 64M var/lib/demo/disk.img; printf 'data in a sparse file' | dd of=var/lib/demo/disk.img bs=1 seek=1048576 conv=notrunc status=none
printf 'boot ok\n' > var/log/boot.log
printf 'hello from alice\n' > home/alice/notes.txt
chmod 1777 tmp
if [ "$(id -u)" = 0 ]; then
  chown -R 1000:1000 home/alice
  cp usr/bin/demo-server usr/bin/demo-su && chmod 4755 usr/bin/demo-su
  setfattr -n user.origin -v demo etc/os-release 2>/dev/null || true
  mknod dev/null c 1 3; mkfifo var/log/pipe
fi
touch -d '2024-01-02 03:04:05.123456789' etc/os-release
echo "example image in $D"
