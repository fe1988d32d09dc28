"""pathfinder.load: checkpoints as numpy arrays, checked against what the
library computes with them, against PyTorch, and on malformed files."""

import json
import struct

import numpy as np
import pytest

import pathfinder

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081   # the paper's normalization, which the library applies to MNIST


def forward(w, x, act):
    """Logits of a pathfinder MLP in numpy (float32, as the library computes)."""
    n = len([k for k in w if k.endswith(".weight")])
    h = x
    for i in range(1, n + 1):
        h = h @ w["fc%d.weight" % i].T + w["fc%d.bias" % i]
        if i < n:
            h = act(h)
    return h


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cross_entropy(logits, y):
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_loaded_weights_give_the_reported_metrics(small_minima, mnist):
    path = small_minima[0]
    w = pathfinder.load(path)
    md = w.pop("metadata")
    assert md["architecture"] == "784,32,10" and md["activations"] == "sigmoid,linear"
    assert w["fc1.weight"].shape == (32, 784) and w["fc1.bias"].shape == (32,)
    assert w["fc2.weight"].shape == (10, 32) and w["fc2.bias"].shape == (10,)
    assert all(a.dtype == np.float32 for a in w.values())
    _, _, Xt, yt = mnist
    x = ((Xt.astype(np.float32) / 255 - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)).astype(np.float32)
    logits = forward(w, x, sigmoid)
    accuracy = 100 * np.mean(logits.argmax(axis=1) == yt)
    report = pathfinder.evaluate(path, train_subset=2000)
    # a near-tie could flip one sample between float orders of summation
    assert abs(accuracy - report["test"]["accuracy"]) <= 0.01 + 1e-9
    assert cross_entropy(logits, yt) == pytest.approx(report["test"]["loss"], rel=1e-5)
    r = np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in w.values()))
    assert r == pytest.approx(report["r"], rel=1e-9)


def test_loads_into_pytorch(small_minima, mnist):
    torch = pytest.importorskip("torch")
    w = pathfinder.load(small_minima[1])
    w.pop("metadata")

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(784, 32)
            self.fc2 = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.fc2(torch.sigmoid(self.fc1(x)))

    m = MLP()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    _, _, Xt, yt = mnist
    x = torch.from_numpy(((Xt.astype(np.float32) / 255 - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)))
    with torch.no_grad():
        acc = 100 * float((m(x).argmax(dim=1).numpy() == yt).mean())
    assert abs(acc - pathfinder.evaluate(small_minima[1], train_subset=2000)["test"]["accuracy"]) <= 0.01 + 1e-9


def write_raw(path, header_bytes, data=b"", length=None):
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes) if length is None else length))
        f.write(header_bytes)
        f.write(data)


def header(d):
    return json.dumps(d).encode()


# A valid checkpoint of a one-layer model (3 inputs, 2 classes) without pathfinder metadata.
GOOD = {"__metadata__": {"format": "pt"},
        "fc1.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "fc1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}}
DATA = (np.arange(8, dtype="<f4") / 4 - 1).tobytes()


@pytest.fixture
def tiny(tmp_path):
    """A data folder with 3 features and 2 classes, read without normalization."""
    rng = np.random.default_rng(1)
    for name, n in (("train.csv", 40), ("test.csv", 20)):
        x = rng.integers(-3, 4, (n, 3))
        y = rng.integers(0, 2, n)
        np.savetxt(tmp_path / name, np.column_stack([x, y]), fmt="%d", delimiter=",")
    return dict(data=str(tmp_path), normalize="none")


def test_a_handwritten_file(tmp_path, tiny):
    p = tmp_path / "ok.safetensors"
    write_raw(p, header(GOOD), DATA)
    w = pathfinder.load(p)
    values = np.arange(8, dtype=np.float32) / 4 - 1
    np.testing.assert_array_equal(w["fc1.weight"], values[:6].reshape(2, 3))
    np.testing.assert_array_equal(w["fc1.bias"], values[6:])
    assert w["metadata"] == {"format": "pt"}
    # the library reads the same file to the same model
    xy = np.loadtxt(tmp_path / "test.csv", delimiter=",")
    logits = forward(w, xy[:, :3].astype(np.float32), None)
    report = pathfinder.evaluate(p, **tiny)
    assert report["test"]["loss"] == pytest.approx(cross_entropy(logits, xy[:, 3].astype(int)), rel=1e-6)


def malformed():
    """(name, writer) pairs of broken files and the words their message must hold."""
    def with_entry(**change):
        h = json.loads(json.dumps(GOOD))
        h["fc1.weight"].update(change)
        return header(h)

    overlap = json.loads(json.dumps(GOOD))
    overlap["fc1.bias"]["data_offsets"] = [20, 28]
    hole = json.loads(json.dumps(GOOD))
    hole["fc1.bias"]["data_offsets"] = [28, 36]
    return [
        ("short", lambda p: p.write_bytes(b"\x01\x02\x03"), "8-byte"),
        ("empty", lambda p: p.write_bytes(b""), "8-byte"),
        ("length past the end", lambda p: write_raw(p, header(GOOD), DATA, length=10 ** 6), "past the end"),
        ("truncated data", lambda p: write_raw(p, header(GOOD), DATA[:20]), "ends at byte"),
        ("extra data", lambda p: write_raw(p, header(GOOD), DATA + b"\0" * 4), "cover 32 bytes"),
        ("not json", lambda p: write_raw(p, b"{this is not json}", DATA), "not valid JSON"),
        ("not utf-8", lambda p: write_raw(p, b'{"\xff": 1}', DATA), "UTF-8"),
        ("not an object", lambda p: write_raw(p, b"[1, 2, 3]", DATA), "not a JSON object"),
        ("duplicate", lambda p: write_raw(p, header(GOOD)[:-1] + b', "fc1.bias": {}}', DATA), "duplicate"),
        ("dtype", lambda p: write_raw(p, with_entry(dtype="Q7"), DATA), "dtype"),
        ("shape", lambda p: write_raw(p, with_entry(shape=[2, -3]), DATA), "shape"),
        ("shape size", lambda p: write_raw(p, with_entry(shape=[2, 2]), DATA), "data_offsets cover"),
        ("offsets", lambda p: write_raw(p, with_entry(data_offsets=[0]), DATA), "data_offsets"),
        ("overlap", lambda p: write_raw(p, header(overlap), DATA), "overlaps"),
        ("hole", lambda p: write_raw(p, header(hole), DATA + b"\0" * 4), "hole"),
        ("metadata", lambda p: write_raw(p, header(dict(GOOD, __metadata__={"x": 1})), DATA), "__metadata__"),
    ]


@pytest.mark.parametrize("name,write,words", malformed(), ids=[m[0] for m in malformed()])
def test_malformed_files_are_refused(tmp_path, tiny, name, write, words):
    p = tmp_path / "bad.safetensors"
    write(p)
    with pytest.raises(pathfinder.InputError) as e:
        pathfinder.load(p)
    msg = str(e.value)
    assert msg.startswith(str(p) + ": ") and "\n" not in msg
    assert words in msg
    assert e.value.code == 2
    # the library refuses it too, through the same exception, naming the file
    with pytest.raises(pathfinder.InputError) as e2:
        pathfinder.evaluate(p, **tiny)
    assert str(e2.value).startswith(str(p)) and e2.value.code == 2


def test_a_truncated_checkpoint(tmp_path, small_minima):
    raw = open(small_minima[0], "rb").read()
    p = tmp_path / "cut.safetensors"
    p.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(pathfinder.InputError, match="cut.safetensors"):
        pathfinder.load(p)
    with pytest.raises(pathfinder.InputError, match="cut.safetensors"):
        pathfinder.evaluate(p)


def test_not_a_file(tmp_path):
    with pytest.raises(pathfinder.InputError, match="cannot open"):
        pathfinder.load(tmp_path / "missing.safetensors")
    with pytest.raises(pathfinder.InputError, match="not a regular file"):
        pathfinder.load(tmp_path)
