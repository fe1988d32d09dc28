#!/usr/bin/python3
"""Compare two result folders file by file: same files, same contents,
apart from wall times (CSV columns and JSON keys whose name contains
"seconds") and figures (their renderers may stamp them). Prints what
differs and exits 1 when anything does.

    same_results.py A B [--skip NAME ...]
"""
import csv
import io
import json
import os
import sys


def timeless_json(x):
    if isinstance(x, dict):
        return {k: timeless_json(v) for k, v in x.items() if "seconds" not in k}
    if isinstance(x, list):
        return [timeless_json(v) for v in x]
    return x


def timeless_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return rows
    keep = [i for i, name in enumerate(rows[0]) if "seconds" not in name]
    return [[r[i] for i in keep if i < len(r)] for r in rows]


def same(a, b):
    if a.endswith(".json"):
        with open(a) as fa, open(b) as fb:
            ta, tb = fa.read(), fb.read()
        try:
            return timeless_json(json.loads(ta)) == timeless_json(json.loads(tb))
        except ValueError:   # JSON lines
            la = [timeless_json(json.loads(l)) for l in ta.splitlines() if l.strip()]
            lb = [timeless_json(json.loads(l)) for l in tb.splitlines() if l.strip()]
            return la == lb
    if a.endswith(".csv"):
        with open(a) as fa, open(b) as fb:
            return timeless_csv(fa.read()) == timeless_csv(fb.read())
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def files(root, skip):
    out = set()
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x != "figures" and x not in skip]
        for n in names:
            if n.startswith(".") or n in skip or n.endswith((".png", ".pdf", ".svg")):
                continue
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def main():
    args = sys.argv[1:]
    skip = set()
    if "--skip" in args:
        i = args.index("--skip")
        skip = set(args[i + 1:])
        args = args[:i]
    a, b = args
    fa, fb = files(a, skip), files(b, skip)
    bad = 0
    for f in sorted(fa ^ fb):
        print(f"only in {a if f in fa else b}: {f}")
        bad += 1
    for f in sorted(fa & fb):
        if not same(os.path.join(a, f), os.path.join(b, f)):
            print(f"differs: {f}")
            bad += 1
    if not fa:
        print(f"{a}: no results")
        bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
