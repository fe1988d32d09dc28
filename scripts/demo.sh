#!/usr/bin/env bash
# The main job on the built-in default data: the paper's MNIST phase diagram
# on a coarser grid (91 betas from 0 to 0.09 instead of 451), paper protocol
# (MLP 784-128-128-10 sigmoid, Adam lr 0.0015, batch 64, patience 5), with
# transitions detected, refined to 1e-4 in beta, attributed to classes, and
# drawn. Ends with the transitions table and the paths of the figures.
# Rerunning resumes (or just re-reports) the sweep in runs/demo.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/$build/pathfinder" sweep --data mnist --arch 784,128,128,10 --act sigmoid \
    --beta 0:0.09:0.001 --window 4 --refine-tol 1e-4 --seed 0 --threads 2 \
    --out "$root/runs/demo"
