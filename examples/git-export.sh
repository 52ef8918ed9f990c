#!/usr/bin/env bash
# Image history as a git repository and back: commit two versions of the example image, export them with
# `viva export-git` (files + a .viva-meta sidecar per directory), look at them with plain git, export again
# (incremental), export manifests for review, then import into a fresh repository and compare the tree ids.
# Needs git. Runs in a temporary directory (or DEMO_DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viva() { node "$here/../bin/run.js" "$@"; }
command -v git >/dev/null || { echo "git export demo skipped: git is not installed"; exit 0; }
work=${DEMO_DIR:-$(mktemp -d /tmp/viva-git-demo.XXXXXX)}
trap 'echo; echo "demo files are in $work"' EXIT
set -x
bash "$here/make-example-image.sh" "$work/rootfs" >/dev/null
viva init "$work/repo"
export VIVA_REPO=$work/repo
viva commit "$work/rootfs" -b demo/base -m "demo image 1.0"
echo "1.1" > "$work/rootfs/etc/demo-version"
viva commit "$work/rootfs" -b demo/base -m "add a version file"
# A bare git repository with one git commit per viva commit; git itself can read it.
viva export-git demo/base "$work/images.git"
git -C "$work/images.git" fsck --strict
git -C "$work/images.git" log --shortstat --format='%h %an %ad%n    %s' demo/base
git -C "$work/images.git" show demo/base:etc/.viva-meta
# A second export writes only what is new (here: nothing).
viva export-git demo/base "$work/images.git"
# Manifests only: one text file per image, so that a change is a diff line in any git tool.
viva export-git demo/base "$work/review.git" --manifests-only
git -C "$work/review.git" diff demo/base~1 demo/base -- manifest.txt
# Back into a fresh repository: the same tree and commit ids.
viva init "$work/other"
viva import-git "$work/images.git" demo/base -C "$work/other"
orig=$(viva show demo/base --json | node -e 'process.stdin.on("data", d => console.log(JSON.parse(d).root))')
back=$(viva show demo/base --json -C "$work/other" | node -e 'process.stdin.on("data", d => console.log(JSON.parse(d).root))')
[ "$orig" = "$back" ] && echo "same tree id: $back"
