#!/usr/bin/env bash
# Data-parallel Hessian under mpirun: 20 Lanczos steps (both ends, the
# tolerance too tight to stop earlier) on the full MNIST training set
# (60,000 images) at the paper's MLP 784,128,128,10, trained here for one
# epoch by `pathfinder train`; one process without mpirun, then
# `mpirun -n 2 ... --data-parallel`, 1 thread each, in the same run.
# Prints the Lanczos and wall times, the speed-up, the share of rank 0's
# time spent in the allreduces (the reducer's calls, waiting for the other
# rank included), and how far the eigenvalues of the two runs are apart.
# The ranks are not pinned to cores (--bind-to none), so that other jobs
# on the machine hit them no harder than the one process; the CPU times
# say what the split itself saves.
#   bench/mpi-hessian.sh [BUILD] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$root/$build/pathfinder"
out="$root/runs/bench_mpi_hessian"
py=/usr/bin/python3
[ -x "$pf" ] || { echo "mpi-hessian: $pf not built (make all)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpi-hessian: no mpirun (scripts/install-deps.sh)" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mkdir -p "$out"
cd "$out"
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ -s mlp.safetensors ] ||
    "$pf" train --data mnist --arch 784,128,128,10 --max-epochs 1 --threads 2 --quiet \
        --out mlp.safetensors >/dev/null
args=(hessian mlp.safetensors --data mnist --k 1 --which both --max-dim 20 --tol 1e-12 --threads 1 --json)
echo "== pathfinder ${args[*]}"
rm -f runs.txt
for r in $(seq "$rounds"); do
    for n in 1 2; do
        start=$(date +%s.%N)
        if [ "$n" = 1 ]; then
            "$pf" "${args[@]}" >"n1.json" 2>n1.err
        else
            mpirun --oversubscribe --bind-to none -n 2 "$pf" "${args[@]}" --data-parallel >"n2.json" 2>n2.err
        fi
        wall=$("$py" -c "import time; print(f'{time.time() - $start:.2f}')")
        echo "$r $n $wall" >>runs.txt
        cp "n$n.json" "r${r}_n$n.json"
        cp "n$n.err" "r${r}_n$n.err"
    done
done
"$py" - "$rounds" <<'EOF'
import json, re, statistics, sys
rounds = int(sys.argv[1])
lanczos = {1: [], 2: []}; wall = {1: [], 2: []}; cpu = {1: [], 2: []}; share = []; sums = []
for line in open("runs.txt"):
    r, n, w = line.split()
    n = int(n)
    doc = json.loads(open(f"r{r}_n{n}.json").readline())
    assert doc["krylov_dim"] == 20, doc["krylov_dim"]
    lanczos[n].append(doc["seconds"]); wall[n].append(float(w)); cpu[n].append(doc["cpu_seconds"])
    if n == 2:
        m = re.search(r"(\d+) sums took ([0-9.]+) s of ([0-9.]+) s", open(f"r{r}_n2.err").read())
        sums.append(float(m.group(2)))
        share.append(float(m.group(2)) / doc["seconds"])
med = {k: statistics.median(v) for k, v in lanczos.items()}
mw = {k: statistics.median(v) for k, v in wall.items()}
print(f"20 Lanczos steps, median of {rounds}: 1 process {med[1]:.2f} s, 2 ranks {med[2]:.2f} s, "
      f"speed-up {med[1] / med[2]:.2f}x (target >= 1.6x)")
mc = {k: statistics.median(v) for k, v in cpu.items()}
print(f"CPU time of the Lanczos steps (rank 0's, its waits in the allreduce included): 1 process "
      f"{mc[1]:.2f} s, 2 ranks {mc[2]:.2f} s, ratio {mc[1] / mc[2]:.2f}x")
print(f"wall (loading MNIST included): 1 process {mw[1]:.2f} s, 2 ranks {mw[2]:.2f} s, "
      f"speed-up {mw[1] / mw[2]:.2f}x")
print(f"allreduce on rank 0: {statistics.median(sums):.3f} s, {100 * statistics.median(share):.1f}% of "
      f"the Lanczos time (waiting for the other rank included)")
a = json.loads(open("r1_n1.json").readline()); b = json.loads(open("r1_n2.json").readline())
pairs = list(zip(a["eigenvalues_E"], b["eigenvalues_E"]))
scale = max(abs(x) for x, _ in pairs)
own = max(abs(x - y) / max(abs(x), abs(y)) for x, y in pairs)
print(f"Ritz values after 20 steps {a['eigenvalues_E']} vs {b['eigenvalues_E']}: worst difference "
      f"{max(abs(x - y) for x, y in pairs) / scale:.1e} of the largest |value|, {own:.1e} of its own")
EOF
