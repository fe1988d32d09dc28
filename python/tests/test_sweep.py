"""Sweeps from Python: resume after SIGKILL, arrays against the same data as
files, the folder read back as arrays and dicts, and refinement."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pathfinder
from conftest import PYTHON_DIR, THREADS

# A small sweep: 12 points, a small model, a few epochs each, no refinement.
SMALL = dict(beta="0:0.033:0.003", arch="784,32,10", train_subset=1000, max_epochs=3, no_refine=True,
             threads=THREADS, figures=False)


@pytest.fixture(scope="module")
def small_reference(runs, mnist):
    """The small sweep, run once without interruption."""
    return pathfinder.sweep(runs / "small_ref", **SMALL)


def same_table(a, b, skip=("seconds",)):
    assert list(a) == list(b)
    for name in a:
        if name in skip:
            continue
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_table_matches_the_files(small_reference):
    s = small_reference
    rows = csv_rows(os.path.join(s.dir, "sweep.csv"))
    assert list(s.table) == rows[0]
    n = len(rows) - 1
    assert n == 12
    for j, name in enumerate(rows[0]):
        assert len(s.table[name]) == n
        cells = [r[j] for r in rows[1:]]
        if s.table[name].dtype.kind == "f":
            assert [float(c) for c in cells] == s.table[name].tolist(), name
        else:
            assert cells == s.table[name].tolist(), name
    assert set(s.table["direction"]) == {"up"}
    with open(os.path.join(s.dir, "transitions.json")) as f:
        assert s.transitions == json.load(f)["transitions"]
    with open(os.path.join(s.dir, "phases.json")) as f:
        assert s.phases == json.load(f)["phases"]
    assert s.report["command"] == "sweep"
    # the folder opened again reads the same
    again = pathfinder.open_sweep(s.dir)
    same_table(s.table, again.table, skip=())
    assert again.transitions == s.transitions and again.phases == s.phases
    # the grid and the protocol reached the library
    np.testing.assert_allclose(s.table["L2_strength"], np.arange(12) * 0.003, rtol=0, atol=1e-12)
    assert s.table["epochs"].max() <= 3
    assert s.config["settings"]["data"]["train_subset"] == 1000


CHILD = """
import sys, time
sys.path.insert(0, %r)
import pathfinder
def slow(e):
    if e["kind"] == "epoch":
        time.sleep(0.05)   # so that the parent's kill lands mid-run
pathfinder.sweep(%r, progress=slow, **%r)
"""


def test_resume_after_sigkill(runs, small_reference):
    reference = small_reference
    out = str(runs / "small_killed")
    child = subprocess.Popen([sys.executable, "-c", CHILD % (PYTHON_DIR, out, SMALL)], env=os.environ.copy())
    table = os.path.join(out, "sweep.csv")
    deadline = time.time() + 120
    try:
        while time.time() < deadline and child.poll() is None:
            if os.path.exists(table) and len(csv_rows(table)) - 1 >= 3:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the sweep ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    done = len(csv_rows(table)) - 1
    assert 3 <= done < 12
    notes = []
    resumed = pathfinder.sweep(out, progress=lambda e: e["kind"] == "note" and notes.append(e["text"]),
                               **SMALL)
    assert any(n.startswith("resuming") for n in notes), notes
    same_table(reference.table, resumed.table)
    assert resumed.transitions == reference.transitions
    # a second rerun of a finished sweep trains nothing and changes nothing
    again = pathfinder.sweep(out, **SMALL)
    same_table(resumed.table, again.table, skip=())


def test_other_settings_refused(small_reference):
    with pytest.raises(pathfinder.InputError, match="different"):
        pathfinder.sweep(small_reference.dir, **dict(SMALL, max_epochs=2))
    # and the folder is left as it was
    same_table(small_reference.table, pathfinder.open_sweep(small_reference.dir).table, skip=())


def pooled(images):
    """28x28 images as 14x14 sums of 2x2 blocks: 196 integral features."""
    x = images.reshape(-1, 14, 2, 14, 2).astype(np.int64)
    return x.sum(axis=(2, 4)).reshape(-1, 196)


def test_arrays_equal_the_same_data_as_files(runs, mnist, tmp_path):
    X, y, Xt, yt = mnist
    X, y, Xt, yt = pooled(X[:1500]), y[:1500].astype(np.int64), pooled(Xt[:800]), yt[:800].astype(np.int64)
    folder = tmp_path / "csvdata"
    folder.mkdir()
    for name, (a, b) in {"train.csv": (X, y), "test.csv": (Xt, yt)}.items():
        np.savetxt(folder / name, np.column_stack([a, b]), fmt="%d", delimiter=",")
    opts = dict(beta="0,0.005,0.01,0.02", arch="196,24,10", max_epochs=3, no_refine=True, threads=THREADS,
                figures=False)
    from_arrays = pathfinder.sweep(runs / "arrays", data=(X.astype(np.float32), y, Xt, yt), **opts)
    from_files = pathfinder.sweep(runs / "files", data=str(folder), **opts)
    same_table(from_arrays.table, from_files.table)
    assert len(from_arrays.table["L2_strength"]) == 4
    # it learned something from the arrays (10 classes, chance is 10%)
    assert from_arrays.table["Test_Accuracy"][0] > 60
    assert from_arrays.config["settings"]["data"]["spec"] == "arrays"
    # float64 and non-contiguous inputs are converted, to the same result
    again = pathfinder.sweep(runs / "arrays2", data=(np.asfortranarray(X.astype(np.float64)), y, Xt, yt), **opts)
    same_table(from_arrays.table, again.table)
    # refining a sweep of arrays needs the same arrays (there is no transition here to refine)
    with pytest.raises(pathfinder.InputError, match="pass the same arrays"):
        pathfinder.refine(from_arrays.dir, "T1")
    with pytest.raises(pathfinder.InputError, match="different data"):
        pathfinder.refine(from_arrays.dir, "T1", data=(X[:-1], y[:-1], Xt, yt))
    with pytest.raises(pathfinder.InputError, match="no transition T1"):
        pathfinder.refine(from_arrays.dir, "T1", data=(X, y, Xt, yt))


def test_refine_narrows_a_transition(t1_sweep):
    s = t1_sweep
    t1 = s.transition("T1")
    assert t1["refined"]["tol"] == 1e-3
    before = t1["refined"]["beta_to"] - t1["refined"]["beta_from"]
    assert 0 < before <= 1e-3
    assert os.path.exists(s.model("T1", "above")) and os.path.exists(s.model("T1", "below"))
    assert s.transitions[0]["label"] == "T1"
    notes = []
    # the transition is found with the sweep's detection threshold, given again
    r = pathfinder.refine(s.dir, "T1", tol=1e-4, threshold=4,
                          progress=lambda e: e["kind"] == "note" and notes.append(e["text"]))
    assert isinstance(r, pathfinder.Sweep)
    after = r.transition("T1")["refined"]
    assert after["tol"] == 1e-4
    assert 0 < after["beta_to"] - after["beta_from"] <= 1e-4
    # narrowed inside the interval of the coarser refinement
    assert t1["beta_below"] <= after["beta_from"] < after["beta_to"] <= t1["beta_above"]
    assert after["beta_to"] - after["beta_from"] < before
    assert any("refining T1" in n for n in notes)
    with open(os.path.join(s.dir, "transitions.json")) as f:
        assert json.load(f)["transitions"] == r.transitions
    # the table is untouched: refinement trains nothing else
    same_table(s.table, r.table, skip=())


def test_refine_unknown_transition(t1_sweep):
    with pytest.raises(pathfinder.InputError, match="T9"):
        pathfinder.refine(t1_sweep.dir, "T9", tol=1e-4, threshold=4)
