#!/usr/bin/env bash
# Extreme Hessian eigenvalues of E and L_beta at the models of a finished
# paper sweep: the beta = 0 minimum, mid-plateau points, both sides of every
# refined transition, and every point of a sweep segment that contains a
# transition (with a figure of lambda_min against beta).
#   bench/hessian-points.sh BUILD SWEEP_DIR MINIMUM SEGMENT_DIR OUT_DIR [SUBSET]
# SEGMENT_DIR holds pNNNNN.safetensors checkpoints of consecutive points.
set -euo pipefail
build=$1 sweep=$2 minimum=$3 segment=$4 out=$5 subset=${6:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
pf="$root/$build/pathfinder"
mkdir -p "$out"

row() { # LABEL MODEL SUBSET -> one CSV row
    local j
    j=$("$pf" hessian "$2" --k 3 --which both --subset "$3" --threads 1 --json --quiet)
    /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[2])
print(",".join([sys.argv[1]] + ["%.10g" % d[k] for k in
      ("beta", "lambda_min_E", "lambda_max_E", "lambda_min_L", "lambda_max_L", "loss", "r", "hvps", "seconds")]
      + [str(int(d["all_converged"]))]))' "$1" "$j"
}
header="label,beta,lambda_min_E,lambda_max_E,lambda_min_L,lambda_max_L,train_loss,r,hvps,seconds,converged"

echo "$header" > "$out/points.csv"
row minimum "$minimum" "$subset" >> "$out/points.csv"
for p in 50 150 250 350 400; do
    f=$(printf '%s/checkpoints/p%05d.safetensors' "$sweep" "$p")
    [ -f "$f" ] && row "plateau_p$p" "$f" "$subset" >> "$out/points.csv"
done
for f in "$sweep"/transitions/T*_below.safetensors "$sweep"/transitions/T*_above.safetensors; do
    [ -f "$f" ] && row "$(basename "$f" .safetensors)" "$f" "$subset" >> "$out/points.csv"
done
echo "$header" > "$out/segment.csv"
for f in "$segment"/p*.safetensors; do
    row "$(basename "$f" .safetensors)" "$f" "$subset" >> "$out/segment.csv"
done
"$pf" plot "$out/segment.csv" --x beta --y lambda_min_E,lambda_min_L,lambda_max_E,r \
    --title "Hessian extremes across a transition" --out "$out/segment"
column -s, -t < "$out/points.csv"
