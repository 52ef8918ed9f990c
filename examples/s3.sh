#!/usr/bin/env bash
# A repository in an S3 bucket shared by two hosts (two caches on this machine): host A creates it and commits an
# image, host B commits a derived clone from its own cache, both see the same history, a local clone is made from
# the bucket, a branch is dropped and gc (kopia-style delayed deletion) frees its objects, and fsck from a third,
# empty cache checks every pack. Needs an S3 endpoint: S3_ENDPOINT (and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
# bucket S3_BUCKET, default viva-ci); without one, it starts a one-machine Ceph with .ci/ceph (Debian's radosgw,
# ceph-mon, ceph-osd) and stops it at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-s3.XXXXXX)}
mkdir -p "$work"
ceph=
trap '[ -n "$ceph" ] && bash "$here/../.ci/ceph" down "$ceph" >/dev/null 2>&1; echo; echo "files are in $work"' EXIT
if [ -z "${S3_ENDPOINT:-}" ]; then
  ceph=$work/ceph
  bash "$here/../.ci/ceph" up "$ceph"
  S3_ENDPOINT=http://127.0.0.1:7480
  export AWS_ACCESS_KEY_ID=viva-ci AWS_SECRET_ACCESS_KEY=viva-ci-secret
fi
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
url="s3://${S3_BUCKET:-viva-ci}/examples/$(basename "$work")-$RANDOM?endpoint=$(node -p 'encodeURIComponent(process.argv[1])' "$S3_ENDPOINT")"
set -x
bash "$here/make-example-image.sh" "$work/rootfs" >/dev/null
# Host A: the repository in the bucket, its directory bound to it (A's cache is $work/a/.viva).
viva init --storage "$url" "$work/a"
(cd "$work/a" && viva commit "$work/rootfs" -b debian/base -m "base image")
# Host B: any host opens the same URL with a cache of its own.
export VIVA_CACHE_DIR=$work/cache-b
viva -C "$url" derive debian/base -b team/web --set etc/hostname=web -m "web clone"
viva -C "$url" log --oneline team/web
(cd "$work/a" && viva log --oneline team/web && viva cat team/web:etc/hostname; echo) | sed 's/^/host A sees: /'
# A local copy, and the bucket as a remote of it.
viva clone --branch debian/base "$url" "$work/local"
viva -C "$work/local" checkout debian/base "$work/checkout"
diff -r -x null -x pipe "$work/rootfs" "$work/checkout" && echo "checkout from the bucket equals the committed tree"
# Drop the clone; gc marks its objects, waits for running writers (none here), then deletes them.
viva -C "$url" branch -d team/web
VIVA_GC_GRACE=0 viva -C "$url" gc --wait
VIVA_CACHE_DIR=$work/cache-c viva -C "$url" fsck && echo "fsck from an empty cache: every pack checked"
