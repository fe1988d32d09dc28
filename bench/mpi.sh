#!/usr/bin/env bash
# Task-parallel speed-up under mpirun: 4 seeds of a small sweep (MNIST,
# 10,000-image subset, 20 betas, paper protocol, 1 thread per rank) on 1
# rank and on 2, one after the other in the same run, into fresh folders;
# prints both wall times, the speed-up, and whether the two runs' folders
# are the same (tests/same_results.py).
#   bench/mpi.sh [BUILD] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$root/$build/pathfinder"
out="$root/runs/bench_mpi"
py=/usr/bin/python3
[ -x "$pf" ] || { echo "mpi: $pf not built (make all)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpi: no mpirun (scripts/install-deps.sh)" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
args=(sweep --seeds 0-3 --data mnist --train-subset 10000 --beta 0,0.02:0.09:0.0037 --threads 1 --quiet)
rm -rf "$out"
mkdir -p "$out"
cd "$out"
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== pathfinder ${args[*]}"
for r in $(seq "$rounds"); do
    for n in 1 2; do
        rm -rf run
        start=$(date +%s.%N)
        mpirun --oversubscribe -n "$n" "$pf" "${args[@]}" --out run >"n$n.txt"
        wall=$("$py" -c "import time; print(f'{time.time() - $start:.1f}')")
        echo "$wall" >>"wall_$n"
        echo "round $r: -n $n  ${wall} s"
        rm -rf "n$n"
        mv run "n$n"
    done
done
"$py" - <<'EOF'
import statistics
w = {n: [float(x) for x in open(f"wall_{n}")] for n in (1, 2)}
m = {n: statistics.median(v) for n, v in w.items()}
print(f"median wall: 1 rank {m[1]:.1f} s, 2 ranks {m[2]:.1f} s, speed-up {m[1] / m[2]:.2f}x (target >= 1.8x)")
EOF
if "$py" "$root/tests/same_results.py" n1 n2 >/dev/null; then
    echo "the folders of 1 and 2 ranks are the same (apart from wall times)"
else
    echo "the folders of 1 and 2 ranks DIFFER"
    exit 1
fi
