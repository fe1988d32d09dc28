"""Pathfinder paths from Python: connect two minima, probe toward a saddle
saved by a sweep; the results as dicts and arrays."""

import csv
import json
import os

import numpy as np

import pathfinder
from conftest import THREADS

# Coarse steps (the library's examples use the same), one certification point per segment.
COARSE = dict(max_epochs=2, ratio=3, max_ratio=3, step_cap=0.25, tol=0.05, certify=1, threads=THREADS)


def check_path_folder(p):
    with open(os.path.join(p.dir, "path.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert list(p.table) == rows[0]
    assert all(len(v) == len(rows) - 1 for v in p.table.values())
    with open(os.path.join(p.dir, "summary.json")) as f:
        assert dict(p) == json.load(f)
    with open(os.path.join(p.dir, "transitions.json")) as f:
        tj = json.load(f)
    assert p.transitions == tj["transitions"] and p.phases == tj["phases"]
    assert p.table["kind"][0] == "start"
    assert p["path"]["points"] == int(np.sum(np.isin(p.table["kind"], ["start", "point"])))
    assert p.table["kind"][-1] == "end" and np.isinf(p.table["L2_strength"][-1])


def test_connect_two_minima(runs, small_minima):
    a, b = small_minima
    points = []
    opts = dict(COARSE, train_subset=2000, beta_start=1e-4, max_beta=10, tol=0.1, figures=False)
    p = pathfinder.connect(a, b, out=runs / "connect", progress=lambda e: e["kind"] == "point" and points.append(e),
                           **opts)
    assert isinstance(p, pathfinder.Path) and (p.i, p.j) == (0, 1)
    check_path_folder(p)
    t = p.table
    # the path starts at A and ends near B, as the distances columns say
    assert t["dist_A"][0] == 0
    np.testing.assert_allclose(t["dist_B"][0], p["distance"], rtol=1e-9)
    assert p["path"]["converged"]
    assert p["path"]["final_distance"] <= 0.1 * p["distance"] * (1 + 1e-9)
    assert np.all(np.diff(t["path_length"]) >= 0)
    # the cumulative length: the main path, then the closing segment onto B (the end row)
    np.testing.assert_allclose(t["path_length"][-2], p["path"]["length"], rtol=1e-9)
    np.testing.assert_allclose(t["path_length"][-1], p["path"]["total_length"], rtol=1e-9)
    np.testing.assert_allclose(np.diff(t["path_length"]), t["step"][1:], rtol=1e-9)
    # betas rise along the main path
    main = t["kind"] != "bridge"
    assert np.all(np.diff(t["L2_strength"][main]) > 0)
    # the progress events are the path's points
    assert len(points) >= 1 and all(e["dist_anchor"] > 0 for e in points)
    # the same result opened from the folder
    again = pathfinder.open_path(p.dir)
    assert dict(again) == dict(p)
    np.testing.assert_array_equal(again.table["Test_Error"], t["Test_Error"])


def test_probe_toward_a_saddle(runs, t1_sweep, mnist):
    start = str(runs / "probe_start.safetensors")
    pathfinder.train(start, train_subset=3000, max_epochs=4, threads=THREADS)
    anchor = t1_sweep.model("T1", "above")
    # toward a near-trivial model the error climbs 80 points: steps of up to 30 points, from beta 1e-3
    opts = dict(COARSE, train_subset=3000, bridge_depth=0, error_jump=30, beta_start=1e-3, figures=False)
    p = pathfinder.probe(start, anchor, out=runs / "probe", **opts)
    check_path_folder(p)
    assert p["command"] == "probe"
    assert os.path.samefile(p["a"], start) and os.path.samefile(p["b"], anchor)
    # the anchor is a model above T1 (near trivial): the path loses accuracy toward it
    acc = p.table["Test_Accuracy"]
    assert acc[0] > 70 and acc[-1] < acc[0] - 20
    assert p["path"]["converged"] and p.table["L2_strength"][1] == 1e-3
    # from_= works as the command line's --from does
    q = pathfinder.probe(from_=start, anchor=anchor, out=runs / "probe", **opts)
    assert dict(q) == dict(p)   # done before: read back, not run again
