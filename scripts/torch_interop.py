#!/usr/bin/python3
"""PyTorch side of pathfinder's checkpoint interop.

  eval FILE.safetensors [--mnist DIR]
      Load a checkpoint (ours or any PyTorch user's) into a torch MLP or CNN
      with load_state_dict(strict=True) and evaluate it on the MNIST test set.
  write FILE.safetensors --arch SPEC --act sigmoid --seed S
        [--train-steps K] [--mnist DIR] [--no-bias]
      Build a model with torch's default init (optionally train it with
      Adam), save its state_dict as a plain PyTorch user would, and report
      its test accuracy and loss. SPEC is an MLP's layer sizes (784,32,10:
      metadata only {"format": "pt"}) or a convolutional spec
      (1x28x28,conv8:3,maxpool2,fc32,fc10, whose architecture, activations,
      bias and loss go into the metadata, as the tensors cannot tell them).

Convolutional specs: the input CxHxW, then convN:K[:S[:P]] (nn.Conv2d with
N channels, kernel K, stride S = 1, padding P = 0), maxpoolK and avgpoolK
(nn.MaxPool2d(K), nn.AvgPool2d(K)), an optional flatten, and fcN
(nn.Linear; the last is the output). Activations are listed over the
convolutions, then the linear layers.

Each prints one JSON line. Runs on Debian's python3-torch and python3-numpy
(/usr/bin/python3); Debian has no safetensors package, so the format is
implemented here, laid out byte for byte as the reference library writes it.
Exit codes follow the C tool: 0 ok, 1 runtime failure, 2 bad input.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------ safetensors

# The reference library's Dtype enum, in declaration (= ascending alignment)
# order; files list tensors by descending position here, then by name.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
               "I32", "U32", "F32", "F64", "I64", "U64"]
TORCH_DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
    "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32,
    "F32": torch.float32, "F64": torch.float64, "I64": torch.int64,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}
# Little-endian numpy views of the raw bytes (BF16 travels as its bit pattern).
NUMPY_DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"), "F16": np.dtype("<f2"), "BF16": np.dtype("<i2"),
    "I32": np.dtype("<i4"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
}
MAX_HEADER = 100_000_000


class FormatError(ValueError):
    """A file that is not a valid safetensors file (or not a model of ours)."""


def st_serialize(tensors, metadata=None):
    """Bytes of a safetensors file holding `tensors` (name -> torch.Tensor)."""
    items = []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in DTYPE_NAMES:
            raise FormatError(f"tensor {name}: dtype {t.dtype} has no safetensors name")
        dtype = DTYPE_NAMES[t.dtype]
        raw = t.view(torch.int16) if dtype == "BF16" else t
        data = raw.numpy().astype(NUMPY_DTYPES[dtype], copy=False).tobytes()
        items.append((name, dtype, list(t.shape), data))
    items.sort(key=lambda it: (-DTYPE_ORDER.index(it[1]), it[0]))

    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape, data in items:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return b"".join([struct.pack("<Q", len(text)), text] + [it[3] for it in items])


def st_save(tensors, path, metadata=None):
    """Write atomically: a temporary file renamed over path."""
    blob = st_serialize(tensors, metadata)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def st_parse(blob, name="file"):
    """(tensors, metadata) from the bytes of a safetensors file, with the
    reference library's checks: header bounds, offsets that tile the data
    buffer, byte lengths matching shapes."""
    if len(blob) < 8:
        raise FormatError(f"{name}: {len(blob)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER:
        raise FormatError(f"{name}: header length {n} is absurd")
    if 8 + n > len(blob):
        raise FormatError(f"{name}: header length {n} runs past the end of the file")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"{name}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{name}: header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (not isinstance(metadata, dict) or
                                 not all(isinstance(v, str) for v in metadata.values())):
        raise FormatError(f"{name}: __metadata__ must map names to strings")
    data = memoryview(blob)[8 + n:]

    def is_uint(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    entries = []
    for tname, info in header.items():
        if not isinstance(info, dict):
            raise FormatError(f"{name}: tensor {tname} is not described by an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in TORCH_DTYPES:
            raise FormatError(f"{name}: tensor {tname} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(is_uint(d) for d in shape):
            raise FormatError(f"{name}: tensor {tname} has a bad shape")
        if not (isinstance(offs, list) and len(offs) == 2 and all(is_uint(o) for o in offs)):
            raise FormatError(f"{name}: tensor {tname} has bad data_offsets")
        entries.append((tuple(offs), tname, dtype, shape))
    entries.sort()
    pos = 0
    tensors = {}
    for (begin, end), tname, dtype, shape in entries:
        if end < begin or end > len(data):
            raise FormatError(f"{name}: tensor {tname}: offsets out of range: data_offsets "
                              f"[{begin}, {end}] but the data buffer holds {len(data)} bytes")
        if begin != pos:
            raise FormatError(f"{name}: tensor {tname} starts at byte {begin} of the data "
                              f"buffer, expected {pos} (overlap or hole)")
        nbytes = math.prod(shape) * NUMPY_DTYPES[dtype].itemsize
        if end - begin != nbytes:
            raise FormatError(f"{name}: tensor {tname}: shape {shape} needs {nbytes} bytes, "
                              f"offsets span {end - begin}")
        arr = np.frombuffer(data[begin:end], dtype=NUMPY_DTYPES[dtype]).reshape(shape)
        t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
        tensors[tname] = t.view(torch.bfloat16) if dtype == "BF16" else t
        pos = end
    if pos != len(data):
        raise FormatError(f"{name}: bytes [{pos}, {len(data)}) of the data buffer belong "
                          f"to no tensor")
    return tensors, metadata


def st_load(path):
    with open(path, "rb") as f:
        blob = f.read()
    return st_parse(blob, path)


# -------------------------------------------------------------------- MLP

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda x: x,
}
ACT_ALIASES = {"identity": "linear", "none": "linear"}


def parse_sizes(spec):
    try:
        sizes = [int(s) for s in spec.split(",")]
    except ValueError:
        raise ValueError(f"bad architecture {spec!r}: expected sizes like 784,128,128,10") from None
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"bad architecture {spec!r}: expected sizes like 784,128,128,10")
    return sizes


def parse_acts(spec, n_layers):
    """As pf_arch_parse_acts: one name (hidden layers; output linear), one per
    hidden layer (output linear), or one per layer."""
    names = [ACT_ALIASES.get(s, s) for s in spec.split(",")]
    for s in names:
        if s not in ACTIVATIONS:
            raise ValueError(f"bad activation {s!r}: use sigmoid, tanh, relu or linear")
    if len(names) == 1:
        return [names[0]] * (n_layers - 1) + ["linear"]
    if len(names) == n_layers - 1:
        return names + ["linear"]
    if len(names) == n_layers:
        return names
    raise ValueError(f"bad activations {spec!r}: give 1, {n_layers - 1} (hidden) or "
                     f"{n_layers} (all layers) names")


class MLP(nn.Module):
    """fc1..fcN = nn.Linear(sizes[i], sizes[i+1]) with an activation after
    each; the state_dict names match pathfinder's checkpoints."""

    def __init__(self, sizes, acts, bias=True):
        super().__init__()
        if isinstance(sizes, str):
            sizes = parse_sizes(sizes)
        if isinstance(acts, str):
            acts = parse_acts(acts, len(sizes) - 1)
        if len(acts) != len(sizes) - 1:
            raise ValueError("need one activation per layer")
        self.sizes = list(sizes)
        self.acts = list(acts)
        self.bias = bool(bias)
        for i in range(len(sizes) - 1):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1], bias=bias))

    def forward(self, x):
        for i, act in enumerate(self.acts):
            x = ACTIVATIONS[act](getattr(self, f"fc{i + 1}")(x))
        return x

    @property
    def architecture(self):
        return ",".join(map(str, self.sizes))

    @property
    def n_inputs(self):
        return self.sizes[0]

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


def mlp_from_checkpoint(tensors, metadata):
    """The MLP a checkpoint describes: architecture, activations and bias from
    metadata when present, else from tensor shapes and the defaults (sigmoid
    hidden layers, linear output)."""
    metadata = metadata or {}
    n_layers = 0
    while f"fc{n_layers + 1}.weight" in tensors:
        n_layers += 1
    if n_layers == 0:
        raise FormatError("no fc1.weight tensor")
    shapes = [tensors["fc1.weight"].shape[1]] + \
        [tensors[f"fc{k}.weight"].shape[0] for k in range(1, n_layers + 1)]
    sizes = parse_sizes(metadata["architecture"]) if "architecture" in metadata else shapes
    if sizes != shapes:
        raise FormatError(f"architecture metadata {metadata['architecture']} contradicts "
                          f"the tensor shapes {','.join(map(str, shapes))}")
    acts = parse_acts(metadata.get("activations", "sigmoid"), n_layers)
    if "bias" in metadata:
        bias = metadata["bias"] == "true"
    else:
        bias = "fc1.bias" in tensors
    return MLP(sizes, acts, bias)


# -------------------------------------------------------------------- CNN

def is_shaped_spec(spec):
    """True for a convolutional spec ("1x28x28,conv8:3,..."): its first
    token is an input shape CxHxW rather than a layer size."""
    return "x" in spec.split(",")[0]


def _numbers(text, least, most):
    """The colon-separated decimal integers of text (least..most of them), or None."""
    parts = text.split(":")
    if not least <= len(parts) <= most or not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def parse_cnn_spec(spec):
    """((C, H, W), layers) of a spec like 1x28x28,conv8:3,maxpool2,fc32,fc10.
    A layer is a dict: kind ("conv", "maxpool", "avgpool" or "fc"), out
    (channels or features; a pooling keeps its input's channels), k, stride
    and pad (convolutions; k for poolings), and in_shape, out_shape, the
    (C, H, W) of one sample before and after it ((N, 1, 1) after fcN). A
    written "flatten" adds none, as flatten(1) comes before the first fc
    anyway. Sizes follow PyTorch: a convolution gives
    floor((H + 2P - K) / S) + 1, a pooling floor(H / K)."""
    def bad(why):
        return ValueError(f"bad architecture {spec!r}: {why}")

    tokens = spec.split(",")
    dims = tokens[0].split("x")
    if len(dims) != 3 or not all(d.isdigit() and int(d) > 0 for d in dims):
        raise bad(f"the input {tokens[0]!r} is not CxHxW (channels x height x width)")
    shape = tuple(int(d) for d in dims)
    c, h, w = shape
    layers, flat = [], False
    for tok in tokens[1:]:
        in_shape = (c, h, w)
        if tok == "flatten":
            flat = True
            continue
        if tok.startswith("fc"):
            nums = _numbers(tok[2:], 1, 1)
            if not nums or nums[0] < 1:
                raise bad(f"{tok!r} is not fcN with N positive")
            c, h, w = nums[0], 1, 1
            layers.append({"kind": "fc", "out": c})
            flat = True
        elif tok.startswith(("conv", "maxpool", "avgpool")) and flat:
            raise bad(f"{tok!r} comes after the flatten; convolutions and pools come "
                      "before the first fc")
        elif tok.startswith("conv"):
            nums = _numbers(tok[4:], 2, 4)
            if not nums or min(nums[:3]) < 1:
                raise bad(f"{tok!r} is not convN:K[:S[:P]] with N, K, S positive")
            n, k = nums[0], nums[1]
            stride = nums[2] if len(nums) > 2 else 1
            pad = nums[3] if len(nums) > 3 else 0
            if h + 2 * pad < k or w + 2 * pad < k:
                raise bad(f"{tok}: kernel {k} is larger than its input {c}x{h}x{w} "
                          f"with padding {pad}")
            c, h, w = n, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
            layers.append({"kind": "conv", "out": n, "k": k, "stride": stride, "pad": pad})
        elif tok.startswith(("maxpool", "avgpool")):
            nums = _numbers(tok[7:], 1, 1)
            if not nums or nums[0] < 1:
                raise bad(f"{tok!r} is not {tok[:7]}K with K positive")
            k = nums[0]
            if h < k or w < k:
                raise bad(f"{tok}: window {k} is larger than its input {c}x{h}x{w}")
            h, w = h // k, w // k
            layers.append({"kind": tok[:7], "out": c, "k": k})
        else:
            raise bad(f"unknown layer {tok!r} (use convN:K[:S[:P]], maxpoolK, avgpoolK, "
                      "flatten or fcN)")
        layers[-1].update(in_shape=in_shape, out_shape=(c, h, w))
    if not layers or layers[-1]["kind"] != "fc":
        raise bad("it ends without an fc layer (the output layer is fcN)")
    return shape, layers


class CNN(nn.Module):
    """The model of a convolutional spec: conv1..convM = nn.Conv2d, each
    followed by its activation, poolings (pool1, pool2, ...: MaxPool2d or
    AvgPool2d, which hold no parameters) where the spec puts them, then
    flatten(1) and fc1..fcN = nn.Linear, the last one the output. Inputs are
    flat rows of C*H*W values (NCHW order) or (B, C, H, W) tensors. The
    state_dict is conv1.weight [out, in, k, k], conv1.bias, ..., fc1.weight,
    fc1.bias, ..., as in pathfinder's checkpoints."""

    def __init__(self, spec, acts, bias=True):
        super().__init__()
        self.spec = spec
        self.input_shape, layers = parse_cnn_spec(spec)
        n_weighted = sum(1 for layer in layers if layer["kind"] in ("conv", "fc"))
        if isinstance(acts, str):
            acts = parse_acts(acts, n_weighted)
        if len(acts) != n_weighted:
            raise ValueError("need one activation per convolution and linear layer")
        self.acts = list(acts)
        self.bias = bool(bias)
        # Convolutions come before every fc in a spec, so registering in spec
        # order gives the state_dict order conv1.weight, ..., fc1.weight, ...
        self.stages = []  # (module name, activation or None), in forward order
        counts = {"conv": 0, "pool": 0, "fc": 0}
        acts_left = iter(self.acts)
        for layer in layers:
            kind, act = layer["kind"], None
            if kind == "conv":
                act = next(acts_left)
                module = nn.Conv2d(layer["in_shape"][0], layer["out"], layer["k"],
                                   stride=layer["stride"], padding=layer["pad"], bias=bias)
            elif kind == "fc":
                act = next(acts_left)
                module = nn.Linear(math.prod(layer["in_shape"]), layer["out"], bias=bias)
            else:
                module = nn.MaxPool2d(layer["k"]) if kind == "maxpool" else nn.AvgPool2d(layer["k"])
                kind = "pool"
            counts[kind] += 1
            name = f"{kind}{counts[kind]}"
            setattr(self, name, module)
            self.stages.append((name, act))
        self.n_inputs = math.prod(self.input_shape)

    def forward(self, x):
        x = x.reshape(x.shape[0], *self.input_shape)
        for name, act in self.stages:
            if name.startswith("fc") and x.dim() > 2:
                x = x.flatten(1)
            x = getattr(self, name)(x)
            if act is not None:
                x = ACTIVATIONS[act](x)
        return x

    @property
    def architecture(self):
        return self.spec

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


def build_model(arch, acts, bias=True):
    """An MLP for layer sizes ("784,128,10"), a CNN for a shaped spec."""
    return CNN(arch, acts, bias) if is_shaped_spec(arch) else MLP(arch, acts, bias)


def model_from_checkpoint(tensors, metadata):
    """The model a checkpoint describes. An MLP as mlp_from_checkpoint; a
    convolutional model needs its spec in the architecture metadata (pooling,
    stride and padding leave no trace in the tensors), whose shapes must then
    match the file's tensors; activations and bias as for an MLP."""
    metadata = metadata or {}
    arch = metadata.get("architecture")
    if arch is None or not is_shaped_spec(arch):
        if "conv1.weight" in tensors:
            raise FormatError("conv1.weight without a convolutional architecture in the "
                              "metadata (such as 1x28x28,conv8:3,maxpool2,fc10)")
        return mlp_from_checkpoint(tensors, metadata)
    _, layers = parse_cnn_spec(arch)
    n_weighted = sum(1 for layer in layers if layer["kind"] in ("conv", "fc"))
    acts = parse_acts(metadata.get("activations", "sigmoid"), n_weighted)
    if "bias" in metadata:
        bias = metadata["bias"] == "true"
    else:
        bias = "conv1.bias" in tensors or "fc1.bias" in tensors
    model = CNN(arch, acts, bias)
    for name, t in model.state_dict().items():
        if name in tensors and list(tensors[name].shape) != list(t.shape):
            raise FormatError(f"architecture metadata {arch} contradicts the tensor shapes: "
                              f"{name} is {list(tensors[name].shape)}, the architecture "
                              f"gives {list(t.shape)}")
    return model


# ------------------------------------------------------------------ MNIST

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


def default_mnist_dir():
    root = os.environ.get("PATHFINDER_DATA")
    if not root:
        root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
    return os.path.join(root, "mnist")


def read_idx(path):
    """A ubyte IDX array (raw or gzip, told apart by content)."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise FormatError(f"{path}: not an unsigned-byte IDX file")
    rank = blob[3]
    if len(blob) < 4 + 4 * rank:
        raise FormatError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{rank}I", blob[4:4 + 4 * rank])
    count = math.prod(dims)
    if len(blob) != 4 + 4 * rank + count:
        raise FormatError(f"{path}: IDX header declares {count} values, file holds "
                          f"{len(blob) - 4 - 4 * rank}")
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def find_mnist_file(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def mnist_available(directory):
    return all(find_mnist_file(directory, s) for s in MNIST_FILES.values())


def load_mnist(directory, split):
    """(x, y) for split "train" or "test": x float32 (n, 784) normalized as in
    the paper, (x/255 - 0.1307)/0.3081; y int64 labels."""
    paths = {}
    for key in (f"{split}_x", f"{split}_y"):
        paths[key] = find_mnist_file(directory, MNIST_FILES[key])
        if paths[key] is None:
            raise FileNotFoundError(f"{directory}: no {MNIST_FILES[key]}[.gz]")
    images = read_idx(paths[f"{split}_x"])
    labels = read_idx(paths[f"{split}_y"])
    if images.ndim < 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise FormatError(f"{directory}: {split} images {images.shape} and labels "
                          f"{labels.shape} do not match")
    x = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    """(accuracy in percent, mean cross-entropy), summed in double."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch])
        loss_sum += F.cross_entropy(logits.double(), y[i:i + batch], reduction="sum").item()
        correct += int((logits.argmax(dim=1) == y[i:i + batch]).sum())
    n = x.shape[0]
    return 100.0 * correct / n, loss_sum / n


def train_adam(model, x, y, steps, lr=0.0015, batch=64):
    """`steps` Adam steps on shuffled minibatches (reshuffled each epoch)."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order, pos = torch.randperm(x.shape[0]), 0
    for _ in range(steps):
        if pos + batch > x.shape[0]:
            order, pos = torch.randperm(x.shape[0]), 0
        idx = order[pos:pos + batch]
        pos += batch
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


# -------------------------------------------------------------- commands

def cmd_eval(args):
    tensors, metadata = st_load(args.file)
    model = model_from_checkpoint(tensors, metadata)
    model.load_state_dict(tensors, strict=True)
    x, y = load_mnist(args.mnist, "test")
    if x.shape[1] != model.n_inputs:
        raise FormatError(f"{args.file}: model takes {model.n_inputs} inputs, MNIST has "
                          f"{x.shape[1]}")
    acc, loss = evaluate(model, x, y)
    print(json.dumps({"test_accuracy": acc, "test_loss": loss, "n_params": model.n_params(),
                      "architecture": model.architecture,
                      "activations": ",".join(model.acts), "bias": model.bias}))


def cmd_write(args):
    torch.manual_seed(args.seed)
    model = build_model(args.arch, args.act, bias=not args.no_bias)
    have_data = mnist_available(args.mnist)
    if (args.train_steps > 0 or args.mnist_given) and not have_data:
        raise FileNotFoundError(f"{args.mnist}: MNIST IDX files not found")
    fits = have_data and model.n_inputs == 784
    if args.train_steps > 0:
        if not fits:
            raise ValueError(f"--train-steps needs a model with 784 inputs, got {args.arch}")
        x, y = load_mnist(args.mnist, "train")
        train_adam(model, x, y, args.train_steps)
    metadata = {"format": "pt"}
    if isinstance(model, CNN):
        # An MLP's layers can be read off its tensors; a CNN's pooling,
        # stride and padding cannot, so its file names them.
        metadata.update({"architecture": model.architecture,
                         "activations": ",".join(model.acts),
                         "bias": "true" if model.bias else "false", "loss": "ce"})
    st_save(model.state_dict(), args.file, metadata)
    out = {"file": args.file, "n_params": model.n_params(), "train_steps": args.train_steps,
           "test_accuracy": None, "test_loss": None}
    if fits:
        x, y = load_mnist(args.mnist, "test")
        out["test_accuracy"], out["test_loss"] = evaluate(model, x, y)
    else:
        print("note: no MNIST test set for this model; accuracy not computed",
              file=sys.stderr)
    print(json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("eval", help="evaluate a checkpoint with PyTorch on MNIST test")
    p.add_argument("file")
    p.add_argument("--mnist", metavar="DIR", default=None)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("write", help="save a torch-initialized (or trained) MLP or CNN")
    p.add_argument("file")
    p.add_argument("--arch", required=True, metavar="SPEC",
                   help="layer sizes, e.g. 784,32,10, or a convolutional spec, e.g. "
                        "1x28x28,conv8:3,maxpool2,fc10")
    p.add_argument("--act", default="sigmoid", help="activations (default sigmoid)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-bias", action="store_true")
    p.add_argument("--train-steps", type=int, default=0)
    p.add_argument("--mnist", metavar="DIR", default=None)
    p.set_defaults(func=cmd_write)
    args = parser.parse_args(argv)
    args.mnist_given = args.mnist is not None
    if args.mnist is None:
        args.mnist = default_mnist_dir()
    try:
        args.func(args)
    except (FormatError, ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
        # load_state_dict(strict=True) raises RuntimeError on a mismatch.
        msg = str(e).strip().replace("\n", " ")
        print(f"torch_interop: {msg}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"torch_interop: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
