#!/usr/bin/env bash
# Hessian-vector products and Lanczos on full MNIST (60,000 samples), the
# paper's MLP (784-128-128-10 sigmoid), pathfinder against PyTorch's double
# backward, measured in the same run:
#   1. one H.v: `pathfinder hessian --time-hvp` against bench/torch_hvp.py
#      (its best batch of 1000/10000/60000 and its better of 1 and 2 threads);
#   2. the 20 largest and 20 smallest eigenvalues: `pathfinder hessian --k 20
#      --which both` against an estimate of the paper's approach (scipy eigsh
#      on autograd products; scipy is not installed here, so the estimate is
#      PyTorch's measured time per product times a product count, stated).
# pathfinder's one-shot products after the first find the sparse form of
# MNIST made (the workspace keeps it); the first one's time is shown too.
# Usage: bench/hvp_bench.sh [BUILD] [THREADS]   (model cached in runs/bench_hvp/)
set -euo pipefail
build=${1:-build}
threads=${2:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$root/$build/pathfinder"
out="$root/runs/bench_hvp"
mkdir -p "$out"
model="$out/model.safetensors"
py=/usr/bin/python3
[ -x "$pf" ] || { echo "hvp_bench: $pf not built (make all)" >&2; exit 2; }

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -f "$model" ]; then
    echo "== training the model: pathfinder train --max-epochs 3 --threads 2 -> $model"
    "$pf" train --max-epochs 3 --threads 2 --seed 0 --quiet --out "$model" >/dev/null
fi

echo "== 1. one H.v over 60,000 samples"
echo "   PyTorch: batch 1000/10000/60000 x 1/2 threads"
"$py" "$root/bench/torch_hvp.py" "$model" --batches 1000,10000,60000 --threads 1,2 --reps 2 \
    >"$out/torch_hvp.jsonl"
best=$(tail -n 1 "$out/torch_hvp.jsonl")
tb=$("$py" -c 'import json,sys; b=json.loads(sys.argv[1])["best"]; print(b["batch"], b["threads"])' "$best")
set -- $tb
# The machine may be shared: alternate the two tools over three rounds and
# keep each one's best, so that neither is measured only in a busy moment.
: >"$out/pf_hvp.jsonl"
: >"$out/pf_hvp1.jsonl"
: >"$out/torch_best.jsonl"
for round in 1 2 3; do
    echo "   round $round: pathfinder ($threads and 1 thread), PyTorch (batch $1, $2 thread(s))"
    "$pf" hessian "$model" --time-hvp 2 --threads "$threads" --quiet >>"$out/pf_hvp.jsonl"
    "$pf" hessian "$model" --time-hvp 2 --threads 1 --quiet >>"$out/pf_hvp1.jsonl"
    "$py" "$root/bench/torch_hvp.py" "$model" --batches "$1" --threads "$2" --reps 2 \
        >"$out/torch_round.jsonl"
    head -n 1 "$out/torch_round.jsonl" >>"$out/torch_best.jsonl"
done

echo "== 2. k = 20 at both ends (Lanczos, full reorthogonalization, tol 1e-4)"
"$pf" hessian "$model" --k 20 --which both --threads "$threads" --json --quiet >"$out/pf_lanczos.json"
echo "== load average now $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
pf_rounds = [json.loads(l) for l in open(f"{out}/pf_hvp.jsonl")]
pf1_rounds = [json.loads(l) for l in open(f"{out}/pf_hvp1.jsonl")]
torch_runs = [json.loads(l) for l in open(f"{out}/torch_hvp.jsonl")]
torch_rounds = [json.loads(l) for l in open(f"{out}/torch_best.jsonl")]
lz = json.load(open(f"{out}/pf_lanczos.json"))
# best of the rounds, field by field
pf = dict(pf_rounds[0])
for key in ("one_shot_seconds", "setup_seconds", "first_seconds", "seconds"):
    pf[key] = min(r[key] for r in pf_rounds)
torch = dict(torch_rounds[0])
torch["seconds"] = min(r["seconds"] for r in torch_rounds + [torch_runs[-1]["best"]])

print()
print("one H.v, full MNIST, paper MLP (118,282 parameters)")
for r in torch_runs[:-1]:
    print(f"  pytorch {r['torch']} double backward, batch {r['batch']:>5}, {r['threads']} thread(s): "
          f"{r['seconds']:.3f} s")
print(f"  rounds, pytorch best config:  " + "  ".join(f"{r['seconds']:.3f}" for r in torch_rounds) + " s")
print(f"  rounds, pathfinder one-shot:  " + "  ".join(f"{r['one_shot_seconds']:.3f}" for r in pf_rounds)
      + " s;  reused: " + "  ".join(f"{r['seconds']:.3f}" for r in pf_rounds) + " s")
print(f"  pathfinder, {pf['threads']} thread(s), one-shot pf_hvp: {pf['one_shot_seconds']:.3f} s "
      f"(the process's first, which also makes the sparse form of MNIST: "
      f"{min(r['first_one_shot_seconds'] for r in pf_rounds):.3f} s)")
print(f"  pathfinder, reused operator (Lanczos): setup {pf['setup_seconds']:.3f} s, first "
      f"{pf['first_seconds']:.3f} s, then {pf['seconds']:.3f} s per product")
rel = abs(pf["vHv"] - torch["vHv"]) / abs(torch["vHv"])
print(f"  agreement: v.Hv pathfinder {pf['vHv']:.9g}, pytorch {torch['vHv']:.9g} (relative {rel:.1e})")
one = torch["seconds"] / pf["one_shot_seconds"]
reused = torch["seconds"] / pf["seconds"]
print(f"  speed-up over PyTorch's best ({torch['batch']} batch, {torch['threads']} thread(s), "
      f"{torch['seconds']:.3f} s): {one:.1f}x one-shot, {reused:.1f}x per product in Lanczos "
      f"(target >= 5x)")

# CPU time, one thread each: what a core does, whatever else the machine runs
torch1 = [r for r in torch_runs[:-1] + torch_rounds if r["threads"] == 1]
t1 = min(torch1, key=lambda r: r["cpu_seconds"])
p1_one = min(r["one_shot_cpu_seconds"] for r in pf1_rounds)
p1_re = min(r["cpu_seconds"] for r in pf1_rounds)
print(f"  CPU time on one thread each: PyTorch {t1['cpu_seconds']:.3f} s (batch {t1['batch']}), "
      f"pathfinder one-shot {p1_one:.3f} s ({t1['cpu_seconds'] / p1_one:.1f}x), reused "
      f"{p1_re:.3f} s ({t1['cpu_seconds'] / p1_re:.1f}x)")
# The team splits the rows with no waiting until the final sum, so its CPU
# time (all threads) should match one thread's; the wall clock then shows
# how much of the machine the run got.
pT_re = min(r["cpu_seconds"] for r in pf_rounds)
print(f"  pathfinder CPU per reused product, all {pf['threads']} threads together: {pT_re:.3f} s "
      f"(one thread: {p1_re:.3f} s)")

print()
print("k = 20 largest and 20 smallest eigenvalues of H_E")
print(f"  pathfinder: {lz['seconds']:.1f} s wall, {lz['hvps']} products, Krylov dimension "
      f"{lz['krylov_dim']}, all converged: {lz['all_converged']}")
print(f"  lambda_max {lz['lambda_max_E']:.6g}, lambda_min {lz['lambda_min_E']:.6g}, "
      f"saddle index {lz['saddle_index_E']}")
# ARPACK (scipy.sparse.linalg.eigsh) restarts its Lanczos process, and after
# m products its search space lies inside the same Krylov space K_m that an
# unrestarted Lanczos with full reorthogonalization builds from the same
# start, so it cannot converge the same pairs with fewer products: our count
# is a lower bound for it. The paper's code recomputes the double backward
# for every product, i.e. PyTorch's one-shot time above.
products = lz["hvps"]
estimate = products * torch["seconds"]
print(f"  paper's approach, ESTIMATED (scipy absent): PyTorch {torch['seconds']:.3f} s per product x "
      f">= {products} products (the count our unrestarted Lanczos needed; ARPACK's restarted "
      f"Lanczos needs at least as many) = >= {estimate:.0f} s")
print(f"  speed-up: >= {estimate / lz['seconds']:.1f}x (wall clock)")
cpu_estimate = products * t1["cpu_seconds"]
print(f"  in CPU time: pathfinder {lz['cpu_seconds']:.1f} s (all {lz['threads']} threads) vs "
      f">= {cpu_estimate:.0f} s (PyTorch one thread, {t1['cpu_seconds']:.3f} s x {products}): "
      f">= {cpu_estimate / lz['cpu_seconds']:.1f}x")
EOF
