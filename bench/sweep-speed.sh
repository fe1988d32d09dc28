#!/usr/bin/env bash
# The start of the paper's origin sweep, beta = 0, 0.0002, ... (N_BETAS
# points, default 40), under the paper protocol (Adam lr 0.0015, batch 64,
# at most 50 epochs, patience 5, warm starts, a new optimizer per beta), in
# pathfinder and in PyTorch (bench/torch_sweep.py, the paper's way), one
# after the other in the same run on the same data. Prints, per beta, each
# side's epochs and training seconds and the ratio of their seconds per
# epoch (the two draw different minibatches, so their epoch counts differ),
# then the totals.
#   bench/sweep-speed.sh [BUILD] [N_BETAS] [PF_THREADS] [TORCH_THREADS]
set -euo pipefail
build=${1:-build}
n=${2:-40}
pf_threads=${3:-2}
torch_threads=${4:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$root/$build/pathfinder"
mnist="${PATHFINDER_DATA:-$root/data}/mnist"
out="$root/runs/bench_sweep_speed"
py=/usr/bin/python3
[ -x "$pf" ] || { echo "sweep-speed: $pf not built (make all)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
last=$("$py" -c "print(f'{($n - 1) * 0.0002:.4f}')")

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== pathfinder sweep --beta 0:$last:0.0002 --threads $pf_threads --seed 0"
start=$(date +%s.%N)
"$pf" sweep --data mnist --beta "0:$last:0.0002" --threads "$pf_threads" --seed 0 --quiet \
    --out "$out/pathfinder" >"$out/pathfinder.txt"
pf_wall=$("$py" -c "import time; print(time.time() - $start)")
echo "== PyTorch (bench/torch_sweep.py, $torch_threads thread(s), its kernels as it finds them)"
start=$(date +%s.%N)
"$py" "$root/bench/torch_sweep.py" "$mnist" "$torch_threads" "$n" >"$out/torch.jsonl"
torch_wall=$("$py" -c "import time; print(time.time() - $start)")
echo "== load average now $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$out" "$pf_wall" "$torch_wall" <<'EOF'
import csv, json, sys
out, pf_wall, torch_wall = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
pf = [r for r in csv.DictReader(open(f"{out}/pathfinder/sweep.csv")) if r["direction"] == "up"]
pt = [json.loads(l) for l in open(f"{out}/torch.jsonl")]
print(f"{'beta':>7} {'pf ep':>5} {'pf s':>7} {'pt ep':>5} {'pt s':>7} {'s/epoch ratio':>13}"
      f" {'pf acc':>7} {'pt acc':>7}")
ratios = []
for a, b in zip(pf, pt):
    pe, ps = int(a["epochs"]), float(a["seconds"])
    te, ts = b["epochs"], b["train_seconds"]
    ratio = (ts / te) / (ps / pe)
    ratios.append(ratio)
    print(f"{float(a['L2_strength']):7.4f} {pe:5d} {ps:7.2f} {te:5d} {ts:7.2f} {ratio:12.1f}x"
          f" {float(a['Test_Accuracy']):7.2f} {b['test_accuracy']:7.2f}")
pe = sum(int(a["epochs"]) for a in pf); ps = sum(float(a["seconds"]) for a in pf)
te = sum(b["epochs"] for b in pt); ts = sum(b["train_seconds"] for b in pt)
tm = sum(b["measure_seconds"] for b in pt)
ratios.sort()
print(f"total: pathfinder {pe} epochs in {ps:.1f} s training ({ps / pe:.3f} s/epoch), {pf_wall:.1f} s wall;"
      f" PyTorch {te} epochs in {ts:.1f} s training ({ts / te:.3f} s/epoch) + {tm:.1f} s measuring,"
      f" {torch_wall:.1f} s wall")
print(f"per-beta s/epoch ratio: median {ratios[len(ratios) // 2]:.1f}x (min {ratios[0]:.1f}x, "
      f"max {ratios[-1]:.1f}x); wall clock {torch_wall / pf_wall:.1f}x")
EOF
