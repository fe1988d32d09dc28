#!/usr/bin/env bash
# The main job on the built-in default data: the paper's MNIST phase diagram,
# paper protocol (MLP 784-128-128-10 sigmoid, Adam lr 0.0015, batch 64,
# patience 5), made small enough for a few minutes on two cores: a fixed
# seeded subset of 10,000 training images (the full test set), beta = 0 and
# then 0.03 to 0.09 in steps of 0.0005 (the stretch that holds the
# transitions), each transition detected (threshold 4: a small subset
# scatters more than the full set, and at the default 6 the step at beta
# 0.0595 that loses {3,4,6,7}, score 5.9, goes unseen), refined to 1e-4 in
# beta, attributed to classes, and drawn: the classes go {5,8,9}, {2},
# {3,4,6,7}, {1}, then {0}, the paper's order at its end. Ends with the
# transitions table, the paths of the figures and the wall time. Rerunning
# resumes (or just re-reports) the sweep in runs/demo, which is made if
# missing. The paper's full protocol is `make paper-sweep`.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
"$root/$build/pathfinder" sweep --data mnist --arch 784,128,128,10 --act sigmoid \
    --train-subset 10000 --beta 0,0.03:0.09:0.0005 --threshold 4 --refine-tol 1e-4 --seed 0 --threads 2 \
    --out "$root/runs/demo"
elapsed=$(( $(date +%s) - start ))
printf 'demo: wall time %d min %02d s\n' $((elapsed / 60)) $((elapsed % 60))
