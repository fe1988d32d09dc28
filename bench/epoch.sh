#!/usr/bin/env bash
# One epoch of the paper protocol (MLP 784-128-128-10 sigmoid, Adam lr 0.0015,
# batch 64, full MNIST) in pathfinder and in PyTorch (Debian python3-torch),
# side by side on this machine, the two tools taking turns round by round so
# that a busy moment of the shared machine does not fall on one of them only.
# pathfinder: 1 and 2 threads, with the sparse and with the dense input layer
# (seconds_per_epoch: the epoch itself; the sparse form of the training set is
# made once, before it, and reported as setup_seconds). PyTorch: 1 and 2
# threads, each with the OpenBLAS kernels it picks itself and with the ones
# that suit the CPU (OPENBLAS_CORETYPE, see pf_blas_better_core); its best
# is the yardstick. Every figure is the best of the rounds. Also the share
# of the machine's sgemm rate: the dense path's FLOPs at its own time, and
# the same dense FLOPs at the sparse path's time (an equivalent rate).
#   bench/epoch.sh [BUILD] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mnist="${PATHFINDER_DATA:-$root/data}/mnist"
out="$build/bench"
py=/usr/bin/python3
mkdir -p "$out"
cc -O2 -march=native $(pkg-config --cflags openblas) bench/sgemm_rate.c -o "$out/sgemm_rate" \
    $(pkg-config --libs openblas)
better=$(OPENBLAS_VERBOSE=2 "$build/pathfinder" --version 2>&1 | sed -n 's/^Core: //p' | tail -n 1)
echo "pathfinder $("$build/pathfinder" --version | cut -d' ' -f2), $(nproc) cores, $(date -u +%F)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); OpenBLAS kernels: $better for pathfinder"
: >"$out/epoch.jsonl"
for round in $(seq "$rounds"); do
    for path in sparse dense; do
        for threads in 1 2; do
            line=$("$build/pathfinder" train --max-epochs 1 --seed 0 --threads "$threads" --quiet \
                   --input-layer "$path" --out "$out/epoch.safetensors")
            echo "{\"tool\":\"pathfinder\",\"path\":\"$path\",\"threads\":$threads,\"round\":$round,\"r\":$line}" \
                >>"$out/epoch.jsonl"
        done
    done
    for core in default "$better"; do
        for threads in 1 2; do
            if [ "$core" = default ]; then
                line=$("$py" bench/torch_epoch.py "$mnist" "$threads" 2)
            else
                line=$(OPENBLAS_CORETYPE="$core" "$py" bench/torch_epoch.py "$mnist" "$threads" 2)
            fi
            echo "{\"tool\":\"pytorch\",\"path\":\"$core\",\"threads\":$threads,\"round\":$round,\"r\":$line}" \
                >>"$out/epoch.jsonl"
        done
    done
done
rate1=$(OPENBLAS_CORETYPE="$better" "$out/sgemm_rate" 1024 1)
rate2=$(OPENBLAS_CORETYPE="$better" "$out/sgemm_rate" 1024 2)
echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" - "$out/epoch.jsonl" "$rate1" "$rate2" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rate = {1: json.loads(sys.argv[2])["gflops"], 2: json.loads(sys.argv[3])["gflops"]}
best = {}
for r in runs:
    key = (r["tool"], r["path"], r["threads"])
    s = r["r"]["seconds_per_epoch"]
    best.setdefault(key, []).append(s)
# multiply-adds of one epoch on the dense path: forward and weight gradient
# of every layer, deltas of the hidden layers; 60000 samples
sizes = [784, 128, 128, 10]
w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
deltas = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
flops = 2 * 60000 * (2 * w + deltas)
print(f"{'':10} {'path':>9} {'threads':>7}  {'s/epoch (best; all rounds)':<34}")
for key in sorted(best):
    v = best[key]
    print(f"{key[0]:10} {key[1]:>9} {key[2]:>7}  {min(v):.3f}  ({', '.join(f'{x:.3f}' for x in v)})")
pt = min((min(v), k) for k, v in best.items() if k[0] == "pytorch")
print(f"PyTorch's best: {pt[0]:.3f} s/epoch ({pt[1][1]} kernels, {pt[1][2]} thread(s))")
for path in ("sparse", "dense"):
    for t in (1, 2):
        s = min(best[("pathfinder", path, t)])
        print(f"pathfinder {path:>6}, {t} thread(s): {s:.3f} s/epoch = {pt[0] / s:.1f}x PyTorch's best;"
              f" dense-equivalent {flops / s / 1e9:.0f} GFLOP/s = {100 * flops / s / 1e9 / rate[t]:.0f}%"
              f" of sgemm's {rate[t]:.0f} GFLOP/s at 1024^3, {t} thread(s)")
print(f"epoch: {flops / 1e9:.1f} GFLOP of dense forward + backward")
PY
