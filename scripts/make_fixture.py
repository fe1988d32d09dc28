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

Usage: make_fixture.py OUTDIR   -> OUTDIR/torch_fixture.json
Runs with Debian's python3-torch (CPU, float32, single thread).
"""
import json
import os
import sys

import torch
import torch.nn as nn

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
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "torch_fixture.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases, "conv_cases": conv_cases,
                   "pool_cases": pool_cases}, f)
    os.replace(tmp, path)
    print(f"fixture: {path} ({len(cases)} models, {len(conv_cases)} convolutions, "
          f"{len(pool_cases)} poolings, torch {torch.__version__})")


if __name__ == "__main__":
    main()
