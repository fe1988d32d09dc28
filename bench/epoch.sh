#!/usr/bin/env bash
# One epoch of the paper protocol (MLP 784-128-128-10 sigmoid, Adam lr 0.0015,
# batch 64, full MNIST) in pathfinder and in PyTorch (Debian python3-torch),
# side by side on this machine. Each side gets its better of 1 and 2
# threads and its best of several epochs. Prints the speed ratio and the
# share of the machine's measured sgemm rate that a pathfinder epoch reaches.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mnist="${PATHFINDER_DATA:-$root/data}/mnist"
out="$build/bench"
mkdir -p "$out"
cc -O2 -march=native $(pkg-config --cflags openblas) bench/sgemm_rate.c -o "$out/sgemm_rate" \
    $(pkg-config --libs openblas)

json() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }

echo "pathfinder $("$build/pathfinder" --version | cut -d' ' -f2), $(nproc) cores, $(date -u +%F)"
best_pf=1e9; best_pf_threads=0
for threads in 1 2; do
    for rep in 1 2 3; do
        line=$("$build/pathfinder" train --max-epochs 1 --seed 0 --threads "$threads" --quiet \
               --out "$out/epoch.safetensors")
        s=$(json "$line" "['seconds_per_epoch']")
        printf '  pathfinder  threads %d  run %d  %.3f s/epoch\n' "$threads" "$rep" "$s"
        if /usr/bin/python3 -c "import sys; sys.exit(0 if $s < $best_pf else 1)"; then
            best_pf=$s; best_pf_threads=$threads
        fi
    done
done
best_pt=1e9; best_pt_threads=0
for threads in 1 2; do
    line=$(/usr/bin/python3 bench/torch_epoch.py "$mnist" "$threads" 3)
    s=$(json "$line" "['seconds_per_epoch']")
    printf '  pytorch     threads %d  best of 3 epochs  %.3f s/epoch (test acc %.2f%%)\n' "$threads" "$s" \
        "$(json "$line" "['test_accuracy']")"
    if /usr/bin/python3 -c "import sys; sys.exit(0 if $s < $best_pt else 1)"; then
        best_pt=$s; best_pt_threads=$threads
    fi
done
rate=$(json "$("$out/sgemm_rate" 1024 "$best_pf_threads")" "['gflops']")
/usr/bin/python3 - "$best_pf" "$best_pf_threads" "$best_pt" "$best_pt_threads" "$rate" <<'PY'
import sys
pf, pft, pt, ptt, rate = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
# multiply-adds of one epoch: forward and weight gradients of every layer,
# deltas of the hidden layers; 60000 samples
sizes = [784, 128, 128, 10]
w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
deltas = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
flops = 2 * 60000 * (2 * w + deltas)
print(f"pathfinder: {pf:.3f} s/epoch ({pft} threads)   pytorch: {pt:.3f} s/epoch ({ptt} threads)")
print(f"speed-up: {pt / pf:.2f}x")
print(f"epoch: {flops / 1e9:.1f} GFLOP -> {flops / pf / 1e9:.1f} GFLOP/s = "
      f"{100 * flops / pf / 1e9 / rate:.0f}% of this machine's sgemm rate "
      f"({rate:.1f} GFLOP/s, 1024^3, {pft} threads)")
PY
