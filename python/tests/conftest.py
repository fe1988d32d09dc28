"""Shared fixtures: the package from this tree, MNIST read with numpy, and
the runs several tests look at (made once per session, small: MNIST
subsets, a few epochs, two threads)."""

import gzip
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
TREE = os.path.dirname(PYTHON_DIR)

# The tool runs on the OpenBLAS kernels that suit the CPU when OpenBLAS fell
# back to its slowest ones (it executes itself again with OPENBLAS_CORETYPE);
# OpenBLAS reads the variable as it loads, so this process sets it before numpy
# or the package loads it, and the cross-checks compare like with like.
_BETTER_CORE = (
    "import ctypes, sys; sys.path.insert(0, sys.argv[1]); from pathfinder._lib import library; "
    "f = library().lib.pf_blas_better_core; f.restype = ctypes.c_char_p; r = f(); "
    "print(r.decode() if r else '')")
if "OPENBLAS_CORETYPE" not in os.environ:
    _core = subprocess.run([sys.executable, "-c", _BETTER_CORE, PYTHON_DIR], capture_output=True,
                           text=True).stdout.strip()
    if _core:
        os.environ["OPENBLAS_CORETYPE"] = _core

import numpy as np  # noqa: E402
import pytest  # noqa: E402

if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

import pathfinder  # noqa: E402

# The tool built from the same tree, for cross-checks of the two entry points.
CLI = os.environ.get("PATHFINDER_CLI", os.path.join(TREE, "build", "pathfinder"))
THREADS = 2


def _idx(path):
    """An IDX array (MNIST's format), raw or .gz."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                raw = f.read()
            ndim = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(path)


@pytest.fixture(scope="session")
def mnist():
    """(train images (60000, 784) uint8, train labels, test images, test labels)."""
    try:
        d = pathfinder.data_dir("mnist")
    except pathfinder.InputError as e:
        pytest.skip("MNIST not found (%s); set PATHFINDER_DATA" % e)
    return (_idx(os.path.join(d, "train-images-idx3-ubyte")).reshape(-1, 784),
            _idx(os.path.join(d, "train-labels-idx1-ubyte")),
            _idx(os.path.join(d, "t10k-images-idx3-ubyte")).reshape(-1, 784),
            _idx(os.path.join(d, "t10k-labels-idx1-ubyte")))


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def t1_sweep(runs, mnist):
    """A sweep with one transition: T1, refined to 1e-3 (about 11 s on 2 cores)."""
    return pathfinder.sweep(runs / "sweep_t1", beta="0,0.06:0.1:0.0025", train_subset=3000, max_epochs=6,
                            threshold=4, refine_tol=1e-3, threads=THREADS, figures=False)


@pytest.fixture(scope="session")
def small_minima(runs, mnist):
    """Two minima of a small MLP (784,32,10) at beta = 0 on 2000 training samples."""
    pattern = str(runs / "small" / "seed{seed}.safetensors")
    os.makedirs(runs / "small", exist_ok=True)
    reports = pathfinder.train(pattern, seeds=[1, 2], arch="784,32,10", train_subset=2000, max_epochs=4,
                               threads=THREADS)
    return [r["out"] for r in reports]
