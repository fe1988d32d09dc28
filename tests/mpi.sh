#!/usr/bin/env bash
# The tool under mpirun (make mpi-check): every task-parallel command
# gives, on 2 and 3 ranks, the folders one process writes (apart from wall
# times); more tasks than ranks and fewer; a whole job killed with SIGKILL
# and run again completes to the same results; a failing task ends the job
# with a summary and a non-zero status and leaves finished results alone.
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
mpi 2 sweep --seeds 0-2 $sweep --out run >/dev/null && keep s_2
check "sweep --seeds 0-2 on 2 ranks equals one process" $same s_serial s_2
kills=0
rm -rf run
for round in 1 2 3; do
    mpirun --oversubscribe -n 3 "$tool" sweep --seeds 0-2 $sweep --out run >/dev/null 2>&1 &
    job=$!
    sleep "$(/usr/bin/python3 -c "import random; print(round(random.uniform(2, 25), 1))")"
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
check "after $kills kills (SIGKILL to the whole job) the rerun completes" [ "$status" = 0 ]
[ -d run ] && keep s_killed
check "and gives the results of one uninterrupted process" $same s_serial s_killed

# one task under mpirun: rank 0 runs it, once
mpi 2 train $small --max-epochs 1 --seed 9 --out one.safetensors >one.txt
check "a single-task command runs once under mpirun" [ "$(grep -c '"command":"train"' one.txt)" = 1 ]

echo "mpi: $passed passed, $failed failed"
[ "$failed" = 0 ]
