#!/usr/bin/env bash
# The paper's MNIST phase diagram, in full: the 451-point origin sweep
# 0 ... 0.09 (step 0.0002) under the paper protocol for seeds 0, 1 and 2,
# each refined and analysed; then seed 0's hysteresis loop (from its
# beta = 0.02 model, up to 0.09 and back down, step 0.0005); then the merged
# hierarchy and the check against the paper's results (bench/paper-check.py).
# Sweeps run single-threaded, as many at once as there are cores.
# Rerunning resumes whatever is unfinished.
#   bench/paper-sweep.sh [BUILD] [OUTDIR]
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/runs/paper-sweep}
pf="$root/$build/pathfinder"
mkdir -p "$out"
paper=(--data mnist --arch 784,128,128,10 --act sigmoid --threads 1 --quiet)

sweep_seed() {
    local start; start=$(date +%s)
    "$pf" sweep "${paper[@]}" --beta 0:0.09:0.0002 --save-every 50 --seed "$1" --out "$out/seed$1" \
        > "$out/seed$1.txt"
    echo "seed $1: $(( $(date +%s) - start )) s" | tee -a "$out/times.txt"
}

jobs=$(nproc)
for seed in 0 1 2; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
    sweep_seed "$seed" &
done
wait
for seed in 0 1 2; do cat "$out/seed$seed.txt"; done

start=$(date +%s)
"$pf" sweep "${paper[@]}" --init "$out/seed0/checkpoints/p00100.safetensors" \
    --beta 0.02:0.09:0.0005 --direction loop --seed 0 --out "$out/loop0"
echo "loop0: $(( $(date +%s) - start )) s" | tee -a "$out/times.txt"

"$pf" hierarchy "$out/seed0" "$out/seed1" "$out/seed2" "$out/loop0" --out "$out/hierarchy"
/usr/bin/python3 "$root/bench/paper-check.py" "$out/seed0" "$out/seed1" "$out/seed2"
