"""The front itself: errors, options, events, loading the library, help and version."""

import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import pathfinder
from conftest import CLI, PYTHON_DIR, TREE


@pytest.fixture
def tiny(tmp_path):
    """A data folder of 3 features and 3 classes."""
    rng = np.random.default_rng(2)
    d = tmp_path / "tiny"
    d.mkdir()
    for name, n in (("train.csv", 60), ("test.csv", 30)):
        y = np.arange(n) % 3
        x = rng.normal(size=(n, 3)) + y[:, None]
        np.savetxt(d / name, np.column_stack([x, y]), fmt=["%.6f"] * 3 + ["%d"], delimiter=",")
    return str(d)


def one_line(e):
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


def test_unknown_option(tmp_path, tiny):
    with pytest.raises(pathfinder.InputError) as e:
        pathfinder.train(tmp_path / "m.safetensors", data=tiny, max_epoch=3)
    assert one_line(e) == "unknown option '--max-epoch'" and e.value.code == 2
    with pytest.raises(pathfinder.InputError, match="unknown command 'sweeep'"):
        pathfinder.run("sweeep")


def test_bad_values(tmp_path, tiny):
    out = tmp_path / "m.safetensors"
    cases = [(dict(max_epochs=0), "--max-epochs needs a whole number from 1"),
             (dict(lr="fast"), "--lr needs a number > 0, got 'fast'"),
             (dict(optimizer="adamw"), "--optimizer takes adam, sgd, lbfgs or newton, got 'adamw'"),
             (dict(act="swish"), "swish"),
             (dict(threads=1000), "--threads"),
             (dict(arch="3,x,3"), "3,x,3")]
    for opts, words in cases:
        with pytest.raises(pathfinder.InputError) as e:
            pathfinder.train(out, data=tiny, max_epochs=opts.pop("max_epochs", 1), **opts)
        assert words in one_line(e), (opts, str(e.value))
    assert not out.exists()
    # values the front cannot turn into an option's text
    with pytest.raises(pathfinder.InputError, match="--lr takes a number"):
        pathfinder.train(out, data=tiny, lr={"a": 1})
    with pytest.raises(pathfinder.InputError, match="NUL"):
        pathfinder.train(out, data=tiny, arch="3\0,3")


def test_options_reach_the_library(tmp_path, tiny):
    out = tmp_path / "m.safetensors"
    r = pathfinder.train(out, data=tiny, arch=[3, 5, 3], act="tanh", max_epochs=2, seed=4, batch=16,
                         no_bias=True, keep_optimizer=False, beta=0.001)
    assert r["epochs"] == 2 and r["seed"] == 4 and r["beta"] == 0.001
    md = pathfinder.load(out)["metadata"]
    assert md["architecture"] == "3,5,3" and md["bias"] == "false" and md["activations"] == "tanh,linear"
    assert sorted(k for k in pathfinder.load(out) if k != "metadata") == ["fc1.weight", "fc2.weight"]
    # several seeds: one report each, files named by seed, existing ones skipped
    pattern = str(tmp_path / "s{seed}.safetensors")
    reports = pathfinder.train(pattern, data=tiny, seeds=range(2), max_epochs=1)
    assert [r["seed"] for r in reports] == [0, 1]
    assert all(os.path.exists(pattern.format(seed=s)) for s in (0, 1))
    again = pathfinder.train(pattern, data=tiny, seeds=[0, 1, 2], max_epochs=1)
    assert [r.get("skipped", False) for r in again] == [True, True, False]


def test_missing_files(tmp_path, tiny):
    with pytest.raises(pathfinder.InputError, match="nowhere.safetensors"):
        pathfinder.evaluate(tmp_path / "nowhere.safetensors", data=tiny)
    with pytest.raises(pathfinder.InputError, match="nodata"):
        pathfinder.train(tmp_path / "m.safetensors", data=str(tmp_path / "nodata"))
    with pytest.raises(pathfinder.InputError, match="no such sweep folder"):
        pathfinder.open_sweep(tmp_path / "nosweep")
    with pytest.raises(pathfinder.InputError, match="needs at least two"):
        pathfinder.run("connect", str(tmp_path / "a.safetensors"), out=str(tmp_path / "c"))


def test_bad_arrays(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)).astype(np.float32), np.arange(20) % 2
    out = tmp_path / "m.safetensors"
    good = (X, y, X, y)
    r = pathfinder.train(out, data=good, max_epochs=1)
    assert r["train"]["n"] == 20
    bad_x = X.copy()
    bad_x[3, 2] = np.nan
    cases = [((bad_x, y, X, y), "train feature 2 of sample 3 is not finite"),
             ((X, y - 1, X, y), "train label -1 of sample 0"),
             ((X, y[:5], X, y), "20 samples but its targets have shape (5,)"),
             ((X[0], y, X, y), "shape (samples, features)"),
             ((X, y, X), "arrays (X, y, X_test, y_test)"),
             ((X, y.astype(str), X, y), "integers (class labels) or floats"),
             ((X, y, X[:, :3], y), "train has 4 features but test has 3"),
             ((X, y, X, y.astype(np.float32)), "class labels vs regression")]
    for data, words in cases:
        with pytest.raises(pathfinder.InputError) as e:
            pathfinder.train(out, data=data, max_epochs=1)
        assert words in one_line(e), str(e.value)
    # float targets are regression: one output, MSE
    r = pathfinder.train(tmp_path / "reg.safetensors", data=(X, X[:, 0] * 2.0, X, X[:, 0] * 2.0), max_epochs=1)
    assert pathfinder.load(tmp_path / "reg.safetensors")["metadata"]["loss"] == "mse"
    # and a command that reads no data says so
    with pytest.raises(pathfinder.InputError, match="takes no arrays"):
        pathfinder.run("transitions", str(tmp_path), data=good)


def test_progress_errors_surface_after_the_call(tmp_path, tiny):
    out = tmp_path / "m.safetensors"
    seen = []

    def progress(e):
        seen.append(e["kind"])
        raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        pathfinder.train(out, data=tiny, max_epochs=3, batch=8, progress=progress)
    assert seen == ["epoch"]      # not called again after it raised
    assert out.exists()           # the call itself ran to its end


def test_ctrl_c_is_seen_when_the_call_returns(tmp_path, tiny):
    out = tmp_path / "m.safetensors"
    epochs = []

    def progress(e):
        epochs.append(e["epoch"])
        if len(epochs) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler, as an interactive session has it (a job
    # started in the background of a shell inherits SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            pathfinder.train(out, data=tiny, max_epochs=3, batch=60, progress=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert out.exists()


def test_events(tmp_path, tiny):
    events = []
    pathfinder.sweep(tmp_path / "sw", data=tiny, beta="0,0.01", arch="3,4,3", max_epochs=2, no_refine=True,
                     figures=False, progress=events.append)
    points = [e for e in events if e["kind"] == "point"]
    assert [e["index"] for e in points] == [0, 1] and [e["beta"] for e in points] == [0, 0.01]
    assert all(e["total"] == 2 and e["direction"] == 1 and e["class_accuracy"].shape == (3,) for e in points)
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert epochs and all(1 <= e["epoch"] <= 2 and e["run"] == str(tmp_path / "sw") for e in epochs)


def test_figures(tmp_path, tiny):
    if pathfinder.fig_library_path is None:
        pytest.skip("no libpathfinder-fig")
    s = pathfinder.sweep(tmp_path / "sw", data=tiny, beta="0,0.01,0.02", arch="3,4,3", max_epochs=1,
                         no_refine=True)
    assert os.path.exists(os.path.join(s.dir, "figures", "phase_diagram_up.png"))
    t = pathfinder.sweep(tmp_path / "sw2", data=tiny, beta="0,0.01,0.02", arch="3,4,3", max_epochs=1,
                         no_refine=True, figures=False)
    assert not os.path.exists(os.path.join(t.dir, "figures", "phase_diagram_up.png"))


def test_help_and_commands_are_the_librarys():
    assert pathfinder.commands() == ["train", "eval", "hessian", "saddle", "sweep", "transitions", "hierarchy",
                                     "refine", "connect", "probe"]
    for cmd in ("sweep", "connect", "hessian"):
        cli = subprocess.run([CLI, cmd, "--help"], check=True, capture_output=True, text=True).stdout
        assert pathfinder.help(cmd) == cli
    opts = pathfinder.options("probe")
    assert opts["from"] is True and opts["json"] is False and "max-epochs" in opts


def test_version():
    with open(os.path.join(TREE, "include", "pathfinder", "core.h")) as f:
        pf_version = re.search(r'#define PF_VERSION "([^"]+)"', f.read()).group(1)
    cli = subprocess.run([CLI, "--version"], check=True, capture_output=True, text=True).stdout.split()[-1]
    assert pathfinder.__version__ == pf_version == cli
    from pathfinder import _version
    assert _version.__version__ == pf_version


def run_python(code, **env):
    e = dict(os.environ, PYTHONPATH=PYTHON_DIR, **env)
    for k, v in env.items():
        if v is None:
            del e[k]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd="/")


def test_library_from_pathfinder_lib(tmp_path):
    real = os.path.realpath(pathfinder.library_path)
    copy = tmp_path / "lib" / "libpathfinder.so.0"
    copy.parent.mkdir()
    shutil.copy(real, copy)
    r = run_python("import pathfinder; print(pathfinder.library_path); print(pathfinder.commands()[0])",
                   PATHFINDER_LIB=str(copy), PATHFINDER_FIG_LIB=None)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(copy), "train"]
    # named but missing: an ImportError naming the place, not another library
    r = run_python("import pathfinder", PATHFINDER_LIB=str(tmp_path / "none" / "libpathfinder.so.0"))
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert "LibraryNotFound" in last and str(tmp_path / "none" / "libpathfinder.so.0") in last
    assert "PATHFINDER_LIB" in last
    # not a library: the same, caught as an ImportError
    r = run_python("try:\n    import pathfinder\nexcept ImportError as e:\n    print(e)", PATHFINDER_LIB=str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("pathfinder: cannot load libpathfinder.so.0") and str(tmp_path) in r.stdout


def test_the_interpreter_survives_bad_input(tmp_path):
    code = """
import numpy as np, pathfinder
bad = [lambda: pathfinder.train("%(d)s/x.safetensors", data=(np.zeros((0, 3)), np.zeros(0, int), np.zeros((0, 3)), np.zeros(0, int))),
       lambda: pathfinder.train("%(d)s/m.safetensors", data=(np.ones((4, 2)), np.array([0, 1, 2**40, 0]), np.ones((4, 2)), np.zeros(4, int))),
       lambda: pathfinder.hessian("%(d)s"),
       lambda: pathfinder.sweep("%(d)s/s", beta="1:0:0.1", data="%(d)s"),
       lambda: pathfinder.run("probe", out="%(d)s/p"),
       lambda: pathfinder.refine("%(d)s", "T1")]
for f in bad:
    try:
        f()
    except pathfinder.Error as e:
        print(type(e).__name__, e.code, e)
print("alive")
""" % {"d": str(tmp_path)}
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "alive" and len(lines) == 7, r.stdout
    assert all(line.startswith("InputError 2 ") for line in lines[:-1]), r.stdout


def test_cnn_spec(tmp_path):
    """A convolutional model through the package: the spec reaches the library,
    the checkpoint holds PyTorch's conv tensors, and a bad spec is one line."""
    rng = np.random.default_rng(3)
    d = tmp_path / "img"
    d.mkdir()
    for name, n in (("train.csv", 90), ("test.csv", 30)):
        y = np.arange(n) % 3
        x = rng.normal(size=(n, 16)) + y[:, None] * np.linspace(-1, 1, 16)[None, :]
        np.savetxt(d / name, np.column_stack([x, y]), fmt=["%.6f"] * 16 + ["%d"], delimiter=",")
    out = tmp_path / "cnn.safetensors"
    spec = "1x4x4,conv3:3:1:1,maxpool2,fc3"
    r = pathfinder.train(out, data=str(d), arch=spec, act="relu", max_epochs=30, patience=30, batch=16,
                         lr=0.01)
    assert r["epochs"] == 30 and r["train"]["accuracy"] > 80
    t = pathfinder.load(out)
    assert t["metadata"]["architecture"] == "1x4x4,conv3:3:1:1,maxpool2,fc3"
    assert t["metadata"]["activations"] == "relu,linear"
    assert t["conv1.weight"].shape == (3, 1, 3, 3) and t["fc1.weight"].shape == (3, 12)
    with pytest.raises(pathfinder.InputError) as e:
        pathfinder.train(tmp_path / "bad.safetensors", data=str(d), arch="1x4x4,conv3:2,maxpool2,fc3")
    assert "window 2 does not divide its input 3x3" in one_line(e) and e.value.code == 2
