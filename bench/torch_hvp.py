#!/usr/bin/python3
"""The peer of `pathfinder hessian --time-hvp`: one Hessian-vector product of
the mean training loss over all of MNIST in PyTorch by double backward
(autograd.grad with create_graph=True, then grad of <grad, v>), the way the
paper's scripts feed scipy's eigsh.

Usage: torch_hvp.py MODEL.safetensors [--mnist DIR] [--batches 1000,10000,60000]
                    [--threads 1,2] [--reps 3] [--n N]

The vector is v = theta / ||theta|| (the flat parameters in PyTorch order),
which pathfinder's --time-hvp uses too, so v.Hv and ||Hv|| can be compared.
For every (batch, threads) pair it reports the best of --reps timed products
(after one warm-up), wall clock and process CPU time, and finally the
fastest configuration. Batches are
summed as sum_b (loss_b summed over the batch / N), i.e. the mean over N.
Prints one JSON line per configuration and one summary line.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_interop as ti  # noqa: E402  (safetensors reader, MLP, MNIST loader)


def load_model(path):
    tensors, metadata = ti.st_load(path)
    model = ti.mlp_from_checkpoint(tensors, metadata)
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    loss = (metadata or {}).get("loss", "ce")
    return model, loss


def hvp(model, params, x, y, v, batch, loss_kind):
    """H v of the mean loss over the n rows of x, batch rows at a time."""
    n = x.shape[0]
    out = [torch.zeros_like(p) for p in params]
    for i in range(0, n, batch):
        logits = model(x[i:i + batch])
        if loss_kind == "ce":
            loss = F.cross_entropy(logits, y[i:i + batch], reduction="sum") / n
        else:
            loss = 0.5 * ((logits - y[i:i + batch]) ** 2).sum() / n
        grads = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * vi).sum() for g, vi in zip(grads, v))
        hv = torch.autograd.grad(dot, params)
        for o, h in zip(out, hv):
            o += h
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--mnist", default=ti.default_mnist_dir())
    p.add_argument("--batches", default="1000,10000,60000")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--n", type=int, default=0, help="first N training samples (0 = all)")
    args = p.parse_args()

    model, loss_kind = load_model(args.model)
    if loss_kind != "ce":
        sys.exit("torch_hvp.py: the benchmark expects a cross-entropy MNIST model")
    x, y = ti.load_mnist(args.mnist, "train")
    if args.n > 0:
        x, y = x[:args.n], y[:args.n]
    params = list(model.parameters())
    flat = torch.cat([q.detach().reshape(-1).double() for q in params])
    v = [q.detach() / flat.norm().float() for q in params]

    best = None
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for batch in [int(b) for b in args.batches.split(",")]:
            hvp(model, params, x, y, v, batch, loss_kind)  # warm-up
            times, cpu = [], []
            for _ in range(args.reps):
                t0, c0 = time.perf_counter(), time.process_time()
                hv = hvp(model, params, x, y, v, batch, loss_kind)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            hv_flat = torch.cat([h.reshape(-1).double() for h in hv])
            v_flat = torch.cat([vi.reshape(-1).double() for vi in v])
            rec = {"peer": "pytorch", "torch": torch.__version__, "threads": threads,
                   "batch": batch, "n": int(x.shape[0]), "seconds": min(times),
                   "cpu_seconds": min(cpu),
                   "vHv": float(v_flat @ hv_flat), "hv_norm": float(hv_flat.norm())}
            print(json.dumps(rec), flush=True)
            if best is None or rec["seconds"] < best["seconds"]:
                best = rec
    print(json.dumps({"best": best}), flush=True)


if __name__ == "__main__":
    main()
