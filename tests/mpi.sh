#!/usr/bin/env bash
# The tool under mpirun (make mpi-check): every task-parallel command
# gives, on 2 and 3 ranks, the folders one process writes (apart from wall
# times); more tasks than ranks and fewer; a whole job killed with SIGKILL
# and run again completes to the same results; a failing task ends the job
# with a summary and a non-zero status and leaves finished results alone;
# --data-parallel hessian, eval and L-BFGS training agree with one process.
# Tiny problems on MNIST subsets. Prints "mpi: N passed, N failed".
set -u
BUILD=${BUILD:-build}
tool=$(realpath "$BUILD/pathfinder")
here=$(dirname "$(realpath "$0")")
same="/usr/bin/python3 $here/same_results.py"
if ! command -v mpirun >/dev/null; then
    echo "mpi: mpirun not found (scripts/install-deps.sh installs Open MPI)" >&2
    exit 1
fi
# CI runs as root; Open MPI refuses that unless told it is meant.
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# one core per rank here is not a promise: let ranks share cores
mpi() { local n=$1; shift; timeout 600 mpirun --oversubscribe -n "$n" "$tool" "$@"; }

T=$(mktemp -d /tmp/pf_mpi_XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# Run "$@" into run/, then keep it as $name: every run writes the same
# paths, so the folders differ only in what the runs did.
keep() { local name=$1; rm -rf "$name"; mv run "$name"; }

small="--train-subset 2000 --arch 784,16,10 --threads 1 --quiet"
"$tool" train $small --max-epochs 1 --seeds 1-4 --out 'm{seed}.safetensors' >/dev/null ||
    { echo "mpi: could not train the models" >&2; exit 1; }

# hessian of several checkpoints: 4 tasks on 2 ranks, 2 tasks on 3
"$tool" hessian m1.safetensors m2.safetensors m3.safetensors m4.safetensors --k 2 --subset 500 \
    --threads 1 --out run >/dev/null && keep h_serial
mpi 2 hessian m1.safetensors m2.safetensors m3.safetensors m4.safetensors --k 2 --subset 500 \
    --threads 1 --out run >h2.txt && keep h_2
check "hessian of 4 checkpoints on 2 ranks equals one process" $same h_serial h_2
check "rank 0 alone printed the table" [ "$(grep -c '^Hessian spectra of 4 models' h2.txt)" = 1 ]
"$tool" hessian m1.safetensors m2.safetensors --k 2 --subset 500 --threads 1 --out run >/dev/null &&
    keep h2_serial
mpi 3 hessian m1.safetensors m2.safetensors --k 2 --subset 500 --threads 1 --out run >/dev/null && keep h2_3
check "hessian of 2 checkpoints on 3 ranks equals one process" $same h2_serial h2_3

# a failing task: a broken checkpoint among good ones
head -c 300 m2.safetensors >broken.safetensors
mpi 2 hessian m1.safetensors broken.safetensors m3.safetensors --k 2 --subset 500 --threads 1 \
    --out hb >hb.out 2>hb.err
status=$?
check "a failing task ends the job with a non-zero status ($status)" [ "$status" != 0 ]
check "the failure is one line naming the task" grep -q "task 'broken.safetensors' failed on rank" hb.err
check "the summary says what finished, failed and never started" \
    grep -Eq 'stage 1 of 1: [0-9]+ tasks? finished, 1 failed, [0-9]+ not started' hb.err
check "no table was printed" [ ! -s hb.out ]
check "finished results are whole" /usr/bin/python3 -c \
    "import json,sys; json.load(open('hb/model_0.json'))"
cp m2.safetensors broken.safetensors
mpi 2 hessian m1.safetensors broken.safetensors m3.safetensors --k 2 --subset 500 --threads 1 \
    --out hb >/dev/null 2>&1
check "the same job, the file mended, completes" [ -s hb/spectra.csv ]

# connect: 4 models, 6 pairs, on 3 ranks; probe with 2 anchors on 2 ranks
path="--train-subset 2000 --max-epochs 1 --max-points 5 --ratio 3 --step-cap 0.3 --threads 1 --quiet"
"$tool" connect m1.safetensors m2.safetensors m3.safetensors m4.safetensors $path --out run \
    >/dev/null && keep c_serial
mpi 3 connect m1.safetensors m2.safetensors m3.safetensors m4.safetensors $path --out run \
    >c3.txt && keep c_3
check "connect of 4 models (6 pairs) on 3 ranks equals one process" $same c_serial c_3
check "connect made 6 pairs" [ "$(ls -d c_3/pair_* | wc -l)" = 6 ]
"$tool" probe --from m1.safetensors --anchor m2.safetensors,m3.safetensors $path --out run >/dev/null &&
    keep p_serial
mpi 2 probe --from m1.safetensors --anchor m2.safetensors,m3.safetensors $path --out run >/dev/null &&
    keep p_2
check "probe with 2 anchors on 2 ranks equals one process" $same p_serial p_2

# sweep --seeds: each seed's sweep, its transitions' bisections, the merged
# hierarchy; then the same job killed at a random moment and run again
sweep="--train-subset 3000 --beta 0,0.06:0.1:0.0025 --max-epochs 6 --threshold 4 --refine-tol 2e-3"
sweep="$sweep --threads 1 --quiet"
"$tool" sweep --seeds 0-2 $sweep --out run >/dev/null && keep s_serial
check "the serial seeds found a transition to bisect" \
    sh -c 'ls s_serial/seed*/transitions/refined_*.json >/dev/null 2>&1'
t0=$(date +%s.%N)
mpi 3 sweep --seeds 0-2 $sweep --out run >/dev/null && keep s_3
took=$(/usr/bin/python3 -c "import time; print(time.time() - $t0)")
check "sweep --seeds 0-2 on 3 ranks equals one process" $same s_serial s_3
mpi 2 sweep --seeds 0-2 $sweep --out run >/dev/null && keep s_2
check "sweep --seeds 0-2 on 2 ranks equals one process" $same s_serial s_2
kills=0
rm -rf run
for round in 1 2 3; do
    mpirun --oversubscribe -n 3 "$tool" sweep --seeds 0-2 $sweep --out run >/dev/null 2>&1 &
    job=$!
    # a random moment within the work still to do (the job on 3 ranks took $took s)
    sleep "$(/usr/bin/python3 -c "import random; print(round(random.uniform(0.1, 0.45) * $took, 1))")"
    # the whole job: mpirun and its ranks (each in a process group of its own)
    ranks=$(pgrep -P "$job")
    if kill -0 "$job" 2>/dev/null; then
        kill -9 "$job" $ranks 2>/dev/null
        kills=$((kills + 1))
    fi
    wait "$job" 2>/dev/null
    while pgrep -f "$tool sweep --seeds 0-2" >/dev/null; do sleep 0.2; done
done
mpi 3 sweep --seeds 0-2 $sweep --out run >/dev/null 2>&1
status=$?
check "the job was killed in the middle of its work ($kills of 3 times)" [ "$kills" -ge 1 ]
check "after $kills kills (SIGKILL to the whole job) the rerun completes" [ "$status" = 0 ]
[ -d run ] && keep s_killed
check "and gives the results of one uninterrupted process" $same s_serial s_killed

# one task under mpirun: rank 0 runs it, once
mpi 2 train $small --max-epochs 1 --seed 9 --out one.safetensors >one.txt
check "a single-task command runs once under mpirun" [ "$(grep -c '"command":"train"' one.txt)" = 1 ]

# --data-parallel: every rank runs the one command on its share of the
# samples, the full-batch sums added up across them. Eigenvalues, losses
# and metrics agree with one process within 1e-6 relative; the same rank
# count gives the same bits again (apart from the times).
agree() { # A.json B.json KEY...: the numbers under each key agree within 1e-6 relative
    /usr/bin/python3 - "$@" <<'PY'
import json, sys
def load(f):  # a JSON file, or the first line of a report
    text = open(f).read()
    try: return json.loads(text)
    except ValueError: return json.loads(text.splitlines()[0])
a, b = (load(f) for f in sys.argv[1:3])
def nums(x):
    if isinstance(x, dict): return [v for k in sorted(x) for v in nums(x[k])]
    if isinstance(x, list): return [v for e in x for v in nums(e)]
    return [float(x)] if isinstance(x, (int, float)) and not isinstance(x, bool) else []
worst = 0.0
for key in sys.argv[3:]:
    u, v = nums(a[key]), nums(b[key])
    if len(u) != len(v) or not u: sys.exit(f"{key}: {len(u)} vs {len(v)} numbers")
    for p, q in zip(u, v):
        worst = max(worst, abs(p - q) / max(abs(p), abs(q), 1e-300))
print(f"  (worst relative difference {worst:.1e})")
sys.exit(worst > 1e-6)
PY
}
untimed() { sed -E 's/"[a-z_]*seconds[a-z_]*":[^,}]*[,]?//g' "$1"; }
dp="m1.safetensors --subset 1500 --k 3 --threads 1 --json"
"$tool" hessian $dp >dh_1.json
for n in 2 3; do
    mpi "$n" hessian $dp --data-parallel >dh_$n.json 2>dh_$n.err
    check "hessian --data-parallel on $n ranks agrees with one process" \
        agree dh_1.json dh_$n.json eigenvalues_E eigenvalues_L loss reg_loss samples
    check "rank 0 alone printed, on $n ranks" [ "$(wc -l <dh_$n.json)" = 1 ]
done
check "the allreduce's time is reported" grep -q 'data-parallel on 2 ranks: [0-9]* sums took' dh_2.err
mpi 2 hessian $dp --data-parallel >dh_2b.json 2>/dev/null
check "hessian --data-parallel on 2 ranks again: the same bits" cmp -s <(untimed dh_2.json) <(untimed dh_2b.json)
mpi 3 hessian $dp --data-parallel --out dh3.json >/dev/null 2>&1
check "hessian --data-parallel --out: rank 0 wrote the file" agree dh_3.json dh3.json eigenvalues_E
ev="m1.safetensors --train-subset 1700 --threads 1"
"$tool" eval $ev >de_1.json
for n in 2 3; do
    mpi "$n" eval $ev --data-parallel >de_$n.json 2>/dev/null
    check "eval --data-parallel on $n ranks agrees with one process" agree de_1.json de_$n.json train test r reg_loss
done
mpi 3 eval $ev --data-parallel >de_3b.json 2>/dev/null
check "eval --data-parallel on 3 ranks again: the same bits" cmp -s de_3.json de_3b.json
lb="--train-subset 2000 --arch 784,16,10 --threads 1 --quiet --optimizer lbfgs --max-epochs 4"
"$tool" train $lb --out dl_1.safetensors >dl_1.json
for n in 2 3; do
    mpi "$n" train $lb --data-parallel --out dl_$n.safetensors >dl_$n.json
    check "train --optimizer lbfgs --data-parallel on $n ranks agrees with one process" \
        agree dl_1.json dl_$n.json last_epoch_loss train test
done
mpi 2 train $lb --data-parallel --out dl_2b.safetensors >/dev/null
check "train --data-parallel on 2 ranks again: the same checkpoint" cmp -s dl_2.safetensors dl_2b.safetensors
mpi 2 train $small --max-epochs 1 --data-parallel --out dl_adam.safetensors >/dev/null 2>dl_adam.err
status=$?
check "minibatch training refuses --data-parallel ($status)" \
    sh -c "[ $status = 2 ] && grep -q 'full-batch work only' dl_adam.err && [ ! -e dl_adam.safetensors ]"

echo "mpi: $passed passed, $failed failed"
[ "$failed" = 0 ]
