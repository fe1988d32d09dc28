#!/usr/bin/env bash
# Build the examples as a user of an installed pathfinder would, and run
# them on small data: install into a temporary DESTDIR, compile each
# example with the flags pkg-config gives for that tree, run it against the
# installed shared libraries. Run by `make check` (make examples-check).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cc=${CC:-cc}
stage=$(mktemp -d "${TMPDIR:-/tmp}/pathfinder-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
prefix=/usr/local

make --no-print-directory -s install BUILD="$build" DESTDIR="$stage" PREFIX="$prefix" >/dev/null
export PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$stage$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$stage$prefix/lib"
for f in bin/pathfinder include/pathfinder.h include/pathfinder/run.h lib/libpathfinder.so.0 \
         lib/libpathfinder-fig.so lib/pkgconfig/pathfinder.pc share/man/man1/pathfinder.1; do
    [ -e "$stage$prefix/$f" ] || { echo "examples: make install left no $prefix/$f" >&2; exit 1; }
done
[ "$(pkg-config --modversion pathfinder)" = "$("$build/pathfinder" --version | awk '{print $NF}')" ] ||
    { echo "examples: pathfinder.pc and the tool disagree on the version" >&2; exit 1; }

bin="$build/examples"
mkdir -p "$bin"
for ex in sweep_refine connect_probe spectrum; do
    pkgs=pathfinder
    [ "$ex" = spectrum ] || pkgs="pathfinder pathfinder-fig"
    # shellcheck disable=SC2046
    "$cc" -std=c11 -Wall -Wextra -Werror -o "$bin/$ex" "examples/$ex.c" $(pkg-config --cflags --libs $pkgs)
    # the installed libraries are the ones it runs with
    ldd "$bin/$ex" > "$bin/$ex.ldd"
    grep -q "$stage$prefix/lib/libpathfinder.so.0" "$bin/$ex.ldd" ||
        { echo "examples: $ex does not load the installed libpathfinder.so.0" >&2; exit 1; }
done

run="$build/examples-run"
rm -rf "$run"
mkdir -p "$run"
t0=$(date +%s)
# the sweep, stopped after a few seconds and run again: it resumes
( timeout -s KILL 6 "$bin/sweep_refine" "$run/sweep" > "$run/sweep-1.log" 2>&1 || true ) 2>/dev/null
"$bin/sweep_refine" "$run/sweep" > "$run/sweep-2.log" 2>&1 ||
    { cat "$run/sweep-2.log"; echo "examples: sweep_refine failed" >&2; exit 1; }
grep -q "^resuming" "$run/sweep-2.log" ||
    { echo "examples: the second sweep_refine run did not resume" >&2; exit 1; }
grep -q "T1 " "$run/sweep-2.log" || { echo "examples: the sweep found no transition T1" >&2; exit 1; }
grep -Eq '"tol":[[:space:]]*0.0001' "$run/sweep/transitions.json" ||
    { echo "examples: T1 was not refined to 1e-4" >&2; exit 1; }
"$bin/connect_probe" "$run/paths" "$run/sweep/transitions/T1_above.safetensors" > "$run/paths.log" 2>&1 ||
    { cat "$run/paths.log"; echo "examples: connect_probe failed" >&2; exit 1; }
for f in connect/summary.json connect/path.csv connect/path_profile.png probe/summary.json; do
    [ -s "$run/paths/$f" ] || { echo "examples: connect_probe wrote no $f" >&2; exit 1; }
done
"$bin/spectrum" "$run/paths/minima/seed1.safetensors" "$run/density.csv" > "$run/spectrum.log" 2>&1 ||
    { cat "$run/spectrum.log"; echo "examples: spectrum failed" >&2; exit 1; }
[ "$(wc -l < "$run/density.csv")" -gt 10 ] || { echo "examples: spectrum wrote no density" >&2; exit 1; }
echo "examples: sweep_refine (killed, resumed, T1 refined), connect_probe, spectrum built against" \
     "the installed tree and run in $(( $(date +%s) - t0 )) s (logs in $run)"
