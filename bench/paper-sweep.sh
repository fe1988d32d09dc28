#!/usr/bin/env bash
# The paper's MNIST phase diagram, in full: the 451-point origin sweep
# 0 ... 0.09 (step 0.0002) under the paper protocol for seeds 0, 1 and 2.
# Seed 0 sweeps up and back down (hysteresis). Each sweep detects and
# refines its transitions; the hierarchy is then merged across the runs.
# Rerunning resumes any unfinished sweep. Takes about an hour on 2 cores.
#   bench/paper-sweep.sh [BUILD] [OUTDIR]
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/runs/paper-sweep}
pf="$root/$build/pathfinder"
mkdir -p "$out"
for seed in 0 1 2; do
    direction=up
    [ "$seed" = 0 ] && direction=loop
    echo "== seed $seed ($direction) -> $out/seed$seed"
    start=$(date +%s)
    "$pf" sweep --data mnist --arch 784,128,128,10 --act sigmoid --beta 0:0.09:0.0002 \
        --direction "$direction" --seed "$seed" --threads 2 --out "$out/seed$seed"
    echo "   wall time: $(( $(date +%s) - start )) s"
done
"$pf" hierarchy "$out/seed0" "$out/seed1" "$out/seed2" --out "$out/hierarchy"
