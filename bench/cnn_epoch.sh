#!/usr/bin/env bash
# One epoch of the paper protocol on a convolutional model (default
# 1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10: 28x28 -> 14x14
# -> 7x7, every pooling tiling its input; sigmoid; Adam lr 0.0015, batch 64,
# full MNIST) in pathfinder and in PyTorch (Debian
# python3-torch, bench/torch_cnn.py), side by side on this machine, the two
# tools taking turns round by round so that a busy moment of the shared
# machine does not fall on one of them only. pathfinder: 1 and 2 threads
# (seconds_per_epoch: the epoch itself). PyTorch: 1 and 2 threads, each with
# the OpenBLAS kernels it picks itself and with the ones that suit the CPU
# (OPENBLAS_CORETYPE, see pf_blas_better_core), and each of those with
# OpenBLAS's own thread pool and with OPENBLAS_NUM_THREADS=1 (its pool
# otherwise runs beside torch's threads on the same cores); its best is the
# yardstick. Every figure is the best of the rounds. Also the share of the
# machine's sgemm rate at the multiply-adds of the epoch's convolutions and
# linear layers (forward, weight gradients, and input gradients after the
# first layer).
#   bench/cnn_epoch.sh [BUILD] [ROUNDS] [SPEC]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
spec=${3:-1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# both tools read the same copy of MNIST
export PATHFINDER_DATA="${PATHFINDER_DATA:-$root/data}"
mnist="$PATHFINDER_DATA/mnist"
out="$build/bench"
py=/usr/bin/python3
mkdir -p "$out"
cc -O2 -march=native $(pkg-config --cflags openblas) bench/sgemm_rate.c -o "$out/sgemm_rate" \
    $(pkg-config --libs openblas)
better=$(OPENBLAS_VERBOSE=2 "$build/pathfinder" --version 2>&1 | sed -n 's/^Core: //p' | tail -n 1)
echo "pathfinder $("$build/pathfinder" --version | cut -d' ' -f2), $(nproc) cores, $(date -u +%F)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); OpenBLAS kernels: $better for pathfinder"
echo "model: $spec, sigmoid"
: >"$out/cnn_epoch.jsonl"
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        line=$("$build/pathfinder" train --data mnist --arch "$spec" --act sigmoid --max-epochs 1 \
               --seed 0 --threads "$threads" --quiet --out "$out/cnn_epoch.safetensors")
        echo "{\"tool\":\"pathfinder\",\"path\":\"auto\",\"threads\":$threads,\"round\":$round,\"r\":$line}" \
            >>"$out/cnn_epoch.jsonl"
    done
    for core in default "$better"; do
        for blas in pool 1; do
            for threads in 1 2; do
                vars=()
                [ "$core" = default ] || vars+=("OPENBLAS_CORETYPE=$core")
                [ "$blas" = pool ] || vars+=("OPENBLAS_NUM_THREADS=$blas")
                env "${vars[@]}" "$py" bench/torch_cnn.py epoch --mnist "$mnist" --arch "$spec" \
                    --act sigmoid --threads "$threads" --epochs 2 >"$out/cnn_torch_round.jsonl"
                line=$(head -n 1 "$out/cnn_torch_round.jsonl")
                path=$core
                [ "$blas" = pool ] || path="$core/blas1"
                echo "{\"tool\":\"pytorch\",\"path\":\"$path\",\"threads\":$threads,\"round\":$round,\"r\":$line}" \
                    >>"$out/cnn_epoch.jsonl"
            done
        done
    done
done
rate1=$(OPENBLAS_CORETYPE="$better" "$out/sgemm_rate" 1024 1)
rate2=$(OPENBLAS_CORETYPE="$better" "$out/sgemm_rate" 1024 2)
echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" - "$out/cnn_epoch.jsonl" "$rate1" "$rate2" "$spec" <<'PY'
import json, math, os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import torch_interop as ti
runs = [json.loads(l) for l in open(sys.argv[1])]
rate = {1: json.loads(sys.argv[2])["gflops"], 2: json.loads(sys.argv[3])["gflops"]}
best = {}
for r in runs:
    key = (r["tool"], r["path"], r["threads"])
    best.setdefault(key, []).append(r["r"]["seconds_per_epoch"])
# multiply-adds per sample of every convolution and linear layer
_, layers = ti.parse_cnn_spec(sys.argv[4])
macs = []
for layer in layers:
    if layer["kind"] == "conv":
        macs.append(math.prod(layer["out_shape"]) * layer["in_shape"][0] * layer["k"] ** 2)
    elif layer["kind"] == "fc":
        macs.append(math.prod(layer["in_shape"]) * layer["out"])
# forward and weight gradient of every layer, input gradient of all but the first
flops = 2 * 60000 * (2 * sum(macs) + sum(macs[1:]))
print(f"{'':10} {'path':>14} {'threads':>7}  {'s/epoch (best; all rounds)':<34}")
for key in sorted(best):
    v = best[key]
    print(f"{key[0]:10} {key[1]:>14} {key[2]:>7}  {min(v):.3f}  ({', '.join(f'{x:.3f}' for x in v)})")
pt = min((min(v), k) for k, v in best.items() if k[0] == "pytorch")
print(f"PyTorch's best: {pt[0]:.3f} s/epoch ({pt[1][1]} kernels, {pt[1][2]} thread(s))")
for t in (1, 2):
    s = min(best[("pathfinder", "auto", t)])
    print(f"pathfinder, {t} thread(s): {s:.3f} s/epoch = {pt[0] / s:.1f}x PyTorch's best;"
          f" {flops / s / 1e9:.1f} GFLOP/s = {100 * flops / s / 1e9 / rate[t]:.0f}%"
          f" of sgemm's {rate[t]:.0f} GFLOP/s at 1024^3, {t} thread(s)")
print(f"epoch: {flops / 1e9:.1f} GFLOP of forward + backward multiply-adds")
PY
