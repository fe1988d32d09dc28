"""Hessian spectra from Python: the same numbers as the command line, and the
extreme eigenvalues of a dense finite-difference Hessian on a tiny model."""

import json
import subprocess

import numpy as np
import pytest

import pathfinder
from conftest import CLI, THREADS


def test_same_as_the_command_line(small_minima):
    model = small_minima[0]
    opts = dict(k=3, which="both", subset=500, seed=3, tol=1e-5)
    h = pathfinder.hessian(model, threads=THREADS, **opts)
    args = [CLI, "hessian", model, "--json", "--threads", str(THREADS)]
    for k, v in opts.items():
        args += ["--" + k, str(v)]
    cli = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    for key in ("eigenvalues_E", "eigenvalues_L", "residuals"):
        assert isinstance(h[key], np.ndarray) and h[key].dtype == np.float64
        np.testing.assert_array_equal(h[key], np.array(cli[key]), err_msg=key)
    assert h["converged"].dtype == bool and list(h["converged"]) == cli["converged"]
    for key in ("lambda_min_E", "lambda_max_E", "saddle_index_E", "krylov_dim", "n_params"):
        assert h[key] == cli[key], key
    ev = h["eigenvalues_E"]
    assert len(ev) == 6 and h["lambda_min_E"] == ev.min() and h["lambda_max_E"] == ev.max()


def test_several_checkpoints(small_minima, tmp_path):
    """A list of checkpoints: one report each, in order, equal to each
    checkpoint's own spectrum, and the table beside them."""
    opts = dict(k=2, which="both", subset=500, seed=3, threads=THREADS)
    models = list(small_minima[:2])
    many = pathfinder.hessian(models, out=str(tmp_path / "spectra"), **opts)
    assert [r["model"] for r in many] == models
    for model, r in zip(models, many):
        one = pathfinder.hessian(model, **opts)
        np.testing.assert_array_equal(r["eigenvalues_E"], one["eigenvalues_E"])
    table = pathfinder.read_table(str(tmp_path / "spectra" / "spectra.csv"))
    np.testing.assert_array_equal(table["lambda_min_E"], [r["lambda_min_E"] for r in many])
    with pytest.raises(pathfinder.InputError, match="--out"):
        pathfinder.hessian(models, **opts)


# A tiny classifier: 3 features, 4 hidden tanh units, 3 classes (31 parameters).
def tiny_data(rng, n):
    centers = np.array([[1.5, 0, 0], [0, 1.5, 0], [0, 0, 1.5]])
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.normal(0, 1.0, (n, 3))
    return x, y


def loss(theta, x, y, sizes):
    """Mean softmax cross-entropy of an MLP (tanh hidden layer), in float64."""
    i, h = 0, x
    for k in range(len(sizes) - 1):
        n_in, n_out = sizes[k], sizes[k + 1]
        W = theta[i:i + n_in * n_out].reshape(n_out, n_in)
        i += n_in * n_out
        b = theta[i:i + n_out]
        i += n_out
        h = h @ W.T + b
        if k < len(sizes) - 2:
            h = np.tanh(h)
    h = h - h.max(axis=1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def fd_hessian(f, theta, step=1e-4):
    n = len(theta)
    H = np.empty((n, n))
    E = np.eye(n) * step
    for a in range(n):
        for b in range(a, n):
            H[a, b] = H[b, a] = (f(theta + E[a] + E[b]) - f(theta + E[a] - E[b]) - f(theta - E[a] + E[b])
                                 + f(theta - E[a] - E[b])) / (4 * step * step)
    return H


def test_extremes_of_a_dense_hessian(tmp_path):
    rng = np.random.default_rng(7)
    x, y = tiny_data(rng, 300)
    xt, yt = tiny_data(rng, 100)
    for name, (a, b) in {"train.csv": (x, y), "test.csv": (xt, yt)}.items():
        with open(tmp_path / name, "w") as f:
            for row, label in zip(a, b):
                f.write(",".join("%.9g" % v for v in np.float32(row)) + ",%d\n" % label)
    model = str(tmp_path / "tiny.safetensors")
    opts = dict(data=str(tmp_path), normalize="none")
    pathfinder.train(model, arch="3,4,3", act="tanh", max_epochs=40, batch=32, lr=0.01, **opts)
    w = pathfinder.load(model)
    theta = np.concatenate([w[k].astype(np.float64).ravel()
                            for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")])
    assert theta.size == 31
    xf = np.loadtxt(tmp_path / "train.csv", delimiter=",")
    X, Y = xf[:, :3].astype(np.float32).astype(np.float64), xf[:, 3].astype(int)
    H = fd_hessian(lambda t: loss(t, X, Y, (3, 4, 3)), theta)
    dense = np.linalg.eigvalsh(H)
    h = pathfinder.hessian(model, k=3, which="both", tol=1e-6, beta=0.01, vectors=str(tmp_path / "v.npy"),
                           density=str(tmp_path / "density.csv"), **opts)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(np.sort(h["eigenvalues_E"])[:3], dense[:3], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(np.sort(h["eigenvalues_E"])[-3:], dense[-3:], rtol=0, atol=1e-4 * scale)
    # L_beta = E + (beta/2)||theta||^2: the same spectrum shifted by beta
    np.testing.assert_allclose(h["eigenvalues_L"], h["eigenvalues_E"] + 0.01, rtol=0, atol=1e-12)
    # and the loss the library reports is the one written here
    assert h["loss"] == pytest.approx(loss(theta, X, Y, (3, 4, 3)), rel=1e-5)
    # the eigenvectors, one row per eigenvalue in the table's order, are those of the dense Hessian
    V = h["vectors"]
    assert V.shape == (6, 31) and V.dtype == np.float32
    for lam, v in zip(h["eigenvalues_E"], V.astype(np.float64)):
        assert np.linalg.norm(v) == pytest.approx(1, rel=1e-5)
        assert np.linalg.norm(H @ v - lam * v) <= 1e-3 * scale
    # the spectral density integrates to about 1 over its grid
    d = h["density"]
    assert list(d) == ["lambda", "density"] and np.all(d["density"] >= 0)
    assert np.trapz(d["density"], d["lambda"]) == pytest.approx(1, abs=0.05)


def test_saddle_same_as_the_command_line(small_minima, tmp_path):
    """pathfinder.saddle gives the command line's report (or its error), and
    what it reports of the saddle is what `hessian` finds at its checkpoint."""
    model = small_minima[0]
    opts = ["--beta", "0.01", "--train-subset", "500", "--max-iter", "40", "--grad-tol", "1e-5",
            "--threads", str(THREADS)]
    cli_out = tmp_path / "cli.safetensors"
    cli = subprocess.run([CLI, "saddle", model, "--json", "--quiet", "--out", str(cli_out)] + opts,
                         capture_output=True, text=True)
    kw = dict(beta=0.01, train_subset=500, max_iter=40, grad_tol=1e-5, threads=THREADS)
    if cli.returncode != 0:
        with pytest.raises(pathfinder.Error, match=cli.stderr.strip().split(": ", 2)[-1][:40]):
            pathfinder.saddle(model, tmp_path / "py.safetensors", **kw)
        return
    want = json.loads(cli.stdout)
    got = pathfinder.saddle(model, tmp_path / "py.safetensors", **kw)
    for key in ("index", "barrier", "grad_norm"):
        assert got[key] == want[key], key
    assert (tmp_path / "py.safetensors").read_bytes() == cli_out.read_bytes()


def test_saddle_series_same_as_the_command_line(small_minima, tmp_path):
    """A series of betas through pathfinder.saddle: the command line's
    points in the same order, nearest the model's beta first, with the same
    barriers and the same checkpoints."""
    model = small_minima[0]
    opts = ["--train-subset", "500", "--max-iter", "40", "--grad-tol", "1e-5", "--threads", str(THREADS)]
    cli = subprocess.run([CLI, "saddle", model, "--json", "--quiet", "--series", "0.01,0.012",
                          "--beta", "0.012", "--out", str(tmp_path / "cli")] + opts,
                         capture_output=True, text=True)
    kw = dict(beta=0.012, series="0.01,0.012", train_subset=500, max_iter=40, grad_tol=1e-5, threads=THREADS)
    if cli.returncode != 0:
        with pytest.raises(pathfinder.Error, match=cli.stderr.strip().split(": ", 2)[-1][:40]):
            pathfinder.saddle(model, tmp_path / "py", **kw)
        return
    want = json.loads(cli.stdout)
    got = pathfinder.saddle(model, tmp_path / "py", **kw)
    assert [p["beta"] for p in got["points"]] == [0.012, 0.01]
    assert [p["barrier"] for p in got["points"]] == [p["barrier"] for p in want["points"]]
    assert json.loads((tmp_path / "cli" / "saddles.json").read_text())["points"][0]["barrier"] == \
        want["points"][0]["barrier"]
    for k in (1, 2):
        name = "saddle_%03d.safetensors" % k
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
