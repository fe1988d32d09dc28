#!/usr/bin/env bash
# A pkg-config file for an installed library: pkg-config.sh NAME VERSION
# PREFIX LIBDIR INCLUDEDIR, NAME pathfinder or pathfinder-fig.
set -euo pipefail
name=$1 version=$2 prefix=$3 libdir=$4 includedir=$5
libdir=${libdir/#$prefix/\$\{prefix\}}
includedir=${includedir/#$prefix/\$\{prefix\}}
echo "prefix=$prefix"
echo "libdir=$libdir"
echo "includedir=$includedir"
echo
case "$name" in
    pathfinder)
        echo "Name: pathfinder"
        echo "Description: Phase transitions, saddles and low-error paths in neural network error landscapes"
        echo "Version: $version"
        echo "Requires.private: openblas libcjson zlib lapacke"
        echo "Libs: -L\${libdir} -lpathfinder"
        echo "Libs.private: -lm -lpthread"
        echo "Cflags: -I\${includedir}" ;;
    pathfinder-fig)
        echo "Name: pathfinder-fig"
        echo "Description: Figures (PNG, PDF, SVG) of pathfinder run folders"
        echo "Version: $version"
        echo "Requires: pathfinder = $version"
        echo "Requires.private: plplot"
        echo "Libs: -L\${libdir} -lpathfinder-fig"
        echo "Cflags: -I\${includedir}" ;;
    *) echo "pkg-config.sh: unknown library '$name'" >&2; exit 2 ;;
esac
