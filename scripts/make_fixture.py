#!/usr/bin/python3
"""Write the PyTorch reference fixture the C tests compare against.

For a few small MLPs (every activation, both losses, with and without
biases) it records: parameters in state_dict order, a batch, the outputs, the
loss, the gradient, and the parameters after a few optimizer steps on that
batch (Adam with weight_decay = L2 in the gradient, Adam with a shifted L2
anchor added to the gradient by hand, SGD with momentum and weight decay).

For the convolution and pooling kernels it records, per case, an input,
weights, an upstream gradient g, the output and the gradients of <g, out>
(conv2d with and without bias, stride and padding; max pooling on inputs
with ties, average pooling).

For a few small convolutional models (cross-entropy; the spec conventions
of scripts/torch_interop.py) it records the parameters, a batch, the
logits, the loss, the gradient, a direction v with the Hessian-vector
product H v of the loss by double backward in float64, and the parameters
after Adam steps with weight decay. Their batches are random normals, and
no max-pooling window holds a near tie (checked), so that every gradient's
route is clear.

Usage: make_fixture.py OUTDIR   -> OUTDIR/torch_fixture.json
Runs with Debian's python3-torch (CPU, single thread; float32, but float64
for the Hessian-vector products).
"""
import copy
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_interop import CNN  # noqa: E402  (the convolutional spec's nn.Module)

ACTS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "linear": lambda z: z}


class MLP(nn.Module):
    def __init__(self, sizes, acts, bias):
        super().__init__()
        self.acts = acts
        for i in range(len(sizes) - 1):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1], bias=bias))

    def forward(self, x):
        for i, act in enumerate(self.acts):
            x = ACTS[act](getattr(self, f"fc{i + 1}")(x))
        return x


def flat(tensors):
    return [float(v) for t in tensors for v in t.detach().reshape(-1).tolist()]


def loss_fn(kind, out, y):
    if kind == "ce":
        return nn.functional.cross_entropy(out, y)
    # 1/2 * mean over samples of the sum over outputs
    return 0.5 * ((out - y) ** 2).sum(dim=1).mean()


def run_steps(model, params0, x, y, kind, make_opt, steps, anchor=None, beta=0.0):
    with torch.no_grad():
        for p, v in zip(model.parameters(), params0):
            p.copy_(v)
    opt = make_opt(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(kind, model(x), y)
        loss.backward()
        if anchor is not None:
            with torch.no_grad():
                for p, a in zip(model.parameters(), anchor):
                    p.grad.add_(p - a, alpha=beta)
        opt.step()
    return flat(model.parameters())


def make_case(name, sizes, acts, bias, kind, seed, batch=7):
    torch.manual_seed(seed)
    model = MLP(sizes, acts, bias)
    params0 = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(batch, sizes[0])
    if kind == "ce":
        y = torch.randint(0, sizes[-1], (batch,))
    else:
        y = torch.randn(batch, sizes[-1])
    out = model(x)
    loss = loss_fn(kind, out, y)
    model.zero_grad()
    loss.backward()
    grad = flat(p.grad for p in model.parameters())
    anchor = [torch.randn_like(p) * 0.1 for p in params0]
    beta, steps = 0.05, 5
    case = {
        "name": name, "sizes": sizes, "acts": acts, "bias": bias, "loss": kind,
        "batch": batch, "theta": flat(params0), "x": flat([x]),
        "labels": y.tolist() if kind == "ce" else None,
        "targets": flat([y]) if kind != "ce" else None,
        "output": flat([out]), "loss_value": float(loss), "grad": grad,
        "steps": steps, "beta": beta, "anchor": flat(anchor),
        "adam_lr": 0.0015,
        "adam_wd": run_steps(model, params0, x, y, kind,
                             lambda p: torch.optim.Adam(p, lr=0.0015, weight_decay=beta), steps),
        "adam_shifted": run_steps(model, params0, x, y, kind,
                                  lambda p: torch.optim.Adam(p, lr=0.0015), steps,
                                  anchor=anchor, beta=beta),
        "sgd_lr": 0.05, "sgd_momentum": 0.9,
        "sgd_wd": run_steps(model, params0, x, y, kind,
                            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                                      weight_decay=beta), steps),
    }
    return case


def conv_case(name, in_c, h, w, out_c, k, stride, pad, bias, seed, batch=2):
    torch.manual_seed(seed)
    x = torch.randn(batch, in_c, h, w, requires_grad=True)
    conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=pad, bias=bias)
    out = conv(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {"name": name, "in_c": in_c, "h": h, "w": w, "out_c": out_c, "k": k, "stride": stride,
            "pad": pad, "bias": bias, "batch": batch, "x": flat([x]), "weight": flat([conv.weight]),
            "g": flat([g]), "out": flat([out]), "dx": flat([x.grad]), "dweight": flat([conv.weight.grad])}
    if bias:
        case["b"] = flat([conv.bias])
        case["dbias"] = flat([conv.bias.grad])
    return case


def pool_case(name, kind, c, h, w, k, seed, batch=2):
    torch.manual_seed(seed)
    # max pooling: small integers, so that windows hold ties
    x = torch.randint(0, 3, (batch, c, h, w)).float() if kind == "max" else torch.randn(batch, c, h, w)
    x.requires_grad_(True)
    out = nn.functional.max_pool2d(x, k) if kind == "max" else nn.functional.avg_pool2d(x, k)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    return {"name": name, "kind": kind, "c": c, "h": h, "w": w, "k": k, "batch": batch,
            "x": flat([x]), "g": flat([g]), "out": flat([out]), "dx": flat([x.grad])}


def check_no_ties(model, x, gap=1e-4):
    """Raise if a max-pooling window of this batch has two nearly equal
    largest entries (other than the zeros of ReLU): the routing of its
    gradient would then depend on rounding."""
    def hook(module, inputs, _output):
        t = inputs[0].detach()
        k = module.kernel_size
        b, c, h, w = t.shape
        windows = t[:, :, :h // k * k, :w // k * k].reshape(b, c, h // k, k, w // k, k)
        windows = windows.permute(0, 1, 2, 4, 3, 5).reshape(-1, k * k)
        top = windows.topk(2, dim=1).values
        near = (top[:, 0] - top[:, 1] < gap) & (top[:, 0] != 0)
        if bool(near.any()):
            raise RuntimeError(f"max pooling window with a near tie ({int(near.sum())} of them)")

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.MaxPool2d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def cnn_case(name, spec, acts, bias, seed, batch=5, adam_steps=3, adam_lr=0.01, adam_wd=0.01):
    torch.manual_seed(seed)
    model = CNN(spec, acts, bias)
    params0 = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(batch, model.n_inputs)
    n_out = getattr(model, model.stages[-1][0]).out_features  # the output fc
    y = torch.randint(0, n_out, (batch,))
    v = torch.randn(sum(p.numel() for p in params0))
    check_no_ties(model, x)

    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    model.zero_grad()
    loss.backward()
    grad = flat(p.grad for p in model.parameters())

    # H v of the same loss at the same (float32) parameters, in float64:
    # autograd.grad with create_graph, then the gradient of <grad, v>.
    model64 = copy.deepcopy(model).double()
    params64 = list(model64.parameters())
    loss64 = nn.functional.cross_entropy(model64(x.double()), y)
    grads64 = torch.autograd.grad(loss64, params64, create_graph=True)
    v64 = torch.split(v.double(), [p.numel() for p in params64])
    dot = sum((g * vi.reshape(g.shape)).sum() for g, vi in zip(grads64, v64))
    hv = torch.autograd.grad(dot, params64)

    adam = run_steps(model, params0, x, y, "ce",
                     lambda p: torch.optim.Adam(p, lr=adam_lr, weight_decay=adam_wd), adam_steps)
    return {"name": name, "spec": spec, "acts": ",".join(model.acts), "bias": bias,
            "batch": batch, "n_params": len(grad), "params": flat(params0), "x": flat([x]),
            "labels": y.tolist(), "logits": flat([logits]), "loss": float(loss), "grad": grad,
            "v": flat([v]), "hv": flat(hv), "hv_dtype": "float64",
            "adam_lr": adam_lr, "adam_weight_decay": adam_wd, "adam_steps": adam_steps,
            "adam": adam}


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    torch.set_num_threads(1)
    cases = [
        make_case("sigmoid_ce_bias", [12, 9, 7, 5], ["sigmoid", "sigmoid", "linear"], True, "ce", 0),
        make_case("tanh_ce_nobias", [10, 8, 4], ["tanh", "linear"], False, "ce", 1),
        make_case("relu_mse_bias", [6, 11, 5, 3], ["relu", "relu", "linear"], True, "mse", 2),
        make_case("sigmoid_mse_sigmoid_out", [5, 6, 2], ["sigmoid", "sigmoid"], True, "mse", 3),
        make_case("linear_ce_bias", [8, 4], ["linear"], True, "ce", 4),
    ]
    conv_cases = [
        conv_case("conv_plain", 1, 6, 6, 3, 3, 1, 0, True, 10),
        conv_case("conv_stride_pad_nobias", 2, 7, 5, 4, 3, 2, 1, False, 11),
        conv_case("conv_5x5_pad2", 3, 8, 8, 2, 5, 1, 2, True, 12),
    ]
    pool_cases = [
        pool_case("maxpool2_ties", "max", 3, 6, 4, 2, 13),
        pool_case("maxpool3_ties", "max", 2, 9, 9, 3, 14),
        pool_case("avgpool2", "avg", 3, 6, 4, 2, 15),
    ]
    cnn_cases = [
        cnn_case("cnn_sigmoid_maxpool_bias", "1x6x6,conv3:3,maxpool2,fc4", "sigmoid", True, 20),
        cnn_case("cnn_tanh_stride_pad_avgpool_nobias", "2x7x7,conv4:3:2:1,avgpool2,fc5,fc3",
                 "tanh", False, 21),
        cnn_case("cnn_relu_two_convs_bias", "1x8x8,conv3:3:1:1,maxpool2,conv4:3,fc3", "relu",
                 True, 22),
    ]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "torch_fixture.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases, "conv_cases": conv_cases,
                   "pool_cases": pool_cases, "cnn_cases": cnn_cases}, f)
    os.replace(tmp, path)
    print(f"fixture: {path} ({len(cases)} models, {len(conv_cases)} convolutions, "
          f"{len(pool_cases)} poolings, {len(cnn_cases)} convolutional models, "
          f"torch {torch.__version__})")


if __name__ == "__main__":
    main()
