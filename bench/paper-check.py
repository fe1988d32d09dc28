#!/usr/bin/python3
"""Check finished paper sweeps against the paper's MNIST results (SPEC §3).

Usage: paper-check.py SWEEP_DIR...
For each folder (a `pathfinder sweep` over 0:0.09:0.0002, up leg): exactly
five major transitions in 0.02 < beta < 0.09, each within +-0.002 of the
paper's 0.0251, 0.0373, 0.0590, 0.0743, 0.0846; the last ends in the trivial
phase (test accuracy <= 12%, train CE within 0.02 of ln 10); the last classes
encoded before the trivial phase are {0, 1} and then {0}. Prints a table and
PASS/FAIL lines; exits 1 if any check fails.
"""
import csv
import json
import math
import sys

PAPER = [0.0251, 0.0373, 0.0590, 0.0743, 0.0846]


def check(folder):
    ok = True
    tr = json.load(open(f"{folder}/transitions.json"))["transitions"]
    ph = [p for p in json.load(open(f"{folder}/phases.json"))["phases"] if p["direction"] == "up"]
    rows = [r for r in csv.DictReader(open(f"{folder}/sweep.csv")) if r["direction"] == "up"]
    up = [t for t in tr if t["direction"] == "up"]
    major = [t for t in up if t["major"] and 0.02 < t["beta_above"] and t["beta_below"] < 0.09]
    print(f"{folder}: {len(up)} transitions on the up leg, {len(major)} major in 0.02 < beta < 0.09")
    print(f"  {'':4} {'beta':>17} {'refined':>23} {'paper':>7} {'r':>15} {'test acc %':>13}  lost")
    for t in up:
        ref = t.get("refined")
        rb = f"{ref['beta_from']:.7f}-{ref['beta_to']:.7f}" if ref else "-"
        mid = 0.5 * (t["beta_below"] + t["beta_above"])
        near = min(PAPER, key=lambda p: abs(p - mid))
        print(f"  {t['label']:4} {t['beta_below']:.4f}-{t['beta_above']:.4f} {rb:>23} {near:7.4f} "
              f"{t['r_below']:6.3f}->{t['r_above']:6.3f} {t['test_accuracy_below']:5.1f}->"
              f"{t['test_accuracy_above']:5.1f}  {t.get('classes_lost', [])}"
              f"{'' if t['major'] else '  (minor)'}")
    if len(major) != 5:
        ok = False
        print(f"  FAIL: {len(major)} major transitions, expected 5")
    else:
        for t, p in zip(major, PAPER):
            beta = t["refined"]["beta_to"] if t.get("refined") else t["beta_above"]
            good = abs(beta - p) <= 0.002
            ok &= good
            print(f"  {'PASS' if good else 'FAIL'}: {t['label']} at {beta:.5f}, paper {p:.4f}")
    last = rows[-1]
    acc, ce = float(last["Test_Accuracy"]), float(last["Train_Loss"])
    good = acc <= 12.0 and abs(ce - math.log(10)) <= 0.02
    ok &= good
    print(f"  {'PASS' if good else 'FAIL'}: at beta {float(last['L2_strength']):.4f} test accuracy "
          f"{acc:.2f}%, train CE {ce:.4f} (ln 10 = {math.log(10):.4f})")
    nontrivial = [p["encoded"] for p in ph if not p["trivial"] and p["encoded"]]
    tail = nontrivial[-2:]
    good = tail == [[0, 1], [0]]
    ok &= good
    print(f"  {'PASS' if good else 'FAIL'}: last encoded class sets {tail} (expected [[0, 1], [0]])")
    print("  phases: " + " -> ".join(
        "trivial" if p["trivial"] else "{" + ",".join(map(str, p["encoded"])) + "}" for p in ph))
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    results = [check(d) for d in sys.argv[1:]]
    print("ALL PASS" if all(results) else "SOME CHECKS FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
