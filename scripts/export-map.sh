#!/usr/bin/env bash
# The linker version script of a shared library (libpathfinder or
# libpathfinder-fig): the functions its public headers declare are
# exported, everything else stays inside the library.
set -euo pipefail
cd "$(dirname "$0")/.."

case "$1" in
    libpathfinder)
        headers="include/pathfinder/core.h include/pathfinder/conv.h include/pathfinder/hessian.h
                 include/pathfinder/exp.h include/pathfinder/io.h include/pathfinder/run.h"
        # what the figure library takes from the numerics besides the public API
        extra="pf_hierarchy_free pf_path_sample_from_metrics pf_profile_free pf_sweep_csv_read" ;;
    libpathfinder-fig)
        headers="include/pathfinder/fig.h"
        extra="" ;;
    *) echo "export-map.sh: unknown library '$1'" >&2; exit 2 ;;
esac

# function names declared in the headers, comments left out
names=$(perl -0pe 's{/\*.*?\*/}{}gs' $headers | grep -oE '\bpf_[a-z0-9_]+[[:space:]]*\(' |
        sed 's/[[:space:]]*($//' | sort -u)
echo "PATHFINDER_0 {"
echo "  global:"
for n in $names $extra; do echo "    $n;"; done
echo "  local: *;"
echo "};"
