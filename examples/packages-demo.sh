#!/usr/bin/env bash
# Packages: install, upgrade and remove Debian packages in images offline, across a fleet, then rebuild after the
# base moves. The image is a small but real Debian root made from this host's own packages (dpkg, libc, coreutils,
# passwd, adduser, …: test/helpers/debian-root.ts); the packages are built here with dpkg-deb.
# Needs root (the sandbox mounts an overlay in its own namespaces), dpkg-deb and dpkg-scanpackages; skips itself
# otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
missing=()
[ "$(id -u)" = 0 ] || missing+=(root)
for c in dpkg-deb dpkg-scanpackages unshare setpriv; do command -v "$c" >/dev/null || missing+=("$c"); done
grep -q overlay /proc/filesystems || missing+=(overlayfs)
if [ ${#missing[@]} -gt 0 ]; then echo "packages demo skipped: needs ${missing[*]}"; exit 0; fi
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-demo.XXXXXX)}/packages
mkdir -p "$work"

# The image and two packages: a library and a tool that needs it (a conffile, a system user, an alternative).
(cd "$here/.." && node --import tsx --input-type=module -e "
  const { debianRoot } = await import('$here/../test/helpers/debian-root.ts');
  const { buildDeb, scanPackages } = await import('$here/../test/helpers/debs.ts');
  debianRoot('$work');
  const mk = (dir, version, text) => {
    buildDeb(dir, { name: 'libgreet1', version, arch: 'amd64', files: { '/usr/lib/x86_64-linux-gnu/libgreet.so.1': 'lib ' + version + '\n' }, triggers: 'activate-noawait ldconfig\n' });
    buildDeb(dir, { name: 'greet', version, arch: 'amd64', fields: { Depends: 'libgreet1 (>= ' + version + ')' },
      files: { '/usr/bin/greet': { data: '#!/bin/sh\necho ' + text + '\n', mode: 0o755 }, '/etc/greet.conf': 'greeting=hello\n' },
      conffiles: ['/etc/greet.conf'],
      scripts: { postinst: '#!/bin/sh\nset -e\nif [ \"\$1\" = configure ]; then getent passwd greeter >/dev/null || useradd --system --no-create-home greeter; fi\n' } });
    scanPackages(dir);
  };
  const fs = await import('node:fs');
  fs.mkdirSync('$work/v1'); fs.mkdirSync('$work/v2');
  mk('$work/v1', '1.0', 'hello from greet 1.0');
  mk('$work/v2', '2.0', 'hello from greet 2.0');
")  # tsx resolves from the repository (the demo may run from anywhere)
set -x
viva init "$work/repo"
export VIVA_REPO=$work/repo
viva commit "$work/root" -b demo/debian/base -m "a small Debian root"
viva packages demo/debian/base | head -5
# Install: resolved against the image's dpkg database, unpacked at tree level, scripts run in a sandbox.
viva install demo/debian/base greet -b demo/debian/greet --from "$work/v1"
viva cat demo/debian/greet:usr/bin/greet
viva diff --packages demo/debian/base demo/debian/greet
viva show demo/debian/greet --derivation
# The same request again: the recorded result, at once.
viva install demo/debian/base greet -b demo/debian/greet-again --from "$work/v1"
# A fleet: three clones, the same install in each (one checkout of the base shared by all).
for n in 1 2 3; do viva derive demo/debian/base -b "demo/fleet/app-$n" --set "etc/hostname=app-$n"$'\n'; done
viva install --branches 'demo/fleet/*' greet --from "$work/v1"
viva cat demo/fleet/app-2:etc/passwd | grep greeter
# Upgrade and remove.
viva upgrade demo/debian/greet -b demo/debian/greet --from "$work/v2"
viva cat demo/debian/greet:usr/bin/greet
viva remove demo/debian/greet greet -b demo/debian/no-greet
viva packages demo/debian/no-greet | grep greet || true
# The base moves: rebuild replays every install from the recorded packages.
viva derive demo/debian/base -b demo/debian/base --set $'etc/motd=base v2\n'
viva rebuild --derived-from demo/debian/base
viva cat demo/fleet/app-1:etc/motd
# Merge an image with a package installed and one with an edit of its own: both in the result.
viva derive demo/debian/base -b demo/debian/tools --set $'etc/motd=tools\n'
viva merge demo/debian/greet demo/debian/tools -b demo/debian/greet-tools
viva packages demo/debian/greet-tools | grep greet
viva cat demo/debian/greet-tools:etc/motd
viva fsck
