#!/usr/bin/env bash
# The main job on the built-in default data: train the paper's MLP on MNIST
# (Adam, lr 0.0015, batch 64, patience 5) at beta = 0 for a few epochs,
# warm-start it at beta = 0.002, and evaluate both checkpoints.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/runs/demo"
mkdir -p "$out"
pf="$root/$build/pathfinder"
echo "== train at beta = 0 (3 epochs) -> $out/beta0.safetensors"
"$pf" train --data mnist --arch 784,128,128,10 --act sigmoid --max-epochs 3 --seed 0 \
    --threads 2 --out "$out/beta0.safetensors"
echo "== warm-start at beta = 0.002 (3 epochs) -> $out/beta0.002.safetensors"
"$pf" train --data mnist --init "$out/beta0.safetensors" --beta 0.002 --max-epochs 3 --seed 0 \
    --threads 2 --out "$out/beta0.002.safetensors"
echo "== eval"
"$pf" eval "$out/beta0.002.safetensors" --threads 2
