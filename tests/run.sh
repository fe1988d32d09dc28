#!/usr/bin/env bash
# Run every test binary in BUILD/tests, show cmocka's output, and end with one
# summary line: "tests: N passed, N failed". Exit non-zero if any failed.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
export PF_TEST_BUILD="$build"
passed=0; failed=0; broken=()
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log="$build/tests/$name.log"
    echo "== $name"
    start=$(date +%s)
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END{print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END{print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before its summary
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -gt 0 ] && broken+=("$name")
    echo "   ($name: $(( $(date +%s) - start ))s)"
done
[ ${#broken[@]} -gt 0 ] && echo "failing: ${broken[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
