#!/usr/bin/python3
"""The PyTorch peer of bench/cnn_epoch.sh and bench/cnn_hvp.sh: the
convolutional model of a spec (the conventions of scripts/torch_interop.py;
default 1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10,
sigmoid) on MNIST normalized with 0.1307/0.3081, as the paper's scripts
would run it.

  torch_cnn.py epoch [--mnist DIR] [--arch SPEC] [--act NAMES] [--threads 1,2]
                     [--epochs 2] [--seed 0]
      Adam(lr=0.0015), batch 64, DataLoader-style reshuffling; per thread
      count, a fresh model (same seed) trained for --epochs epochs; reports
      the best seconds per epoch and the test accuracy after them.
  torch_cnn.py hvp [MODEL.safetensors] [--mnist DIR] [--arch SPEC] [--act NAMES]
                   [--direction random|theta] [--batches 1000,10000]
                   [--threads 1,2] [--reps 3] [--n N] [--seed 0]
      One Hessian-vector product of the mean training loss over all of
      MNIST by double backward, summed over blocks of --batches rows, as
      bench/torch_hvp.py does for the MLP. The model is the checkpoint's, or
      a fresh one of --arch (torch's default init at --seed). The direction
      is a random unit vector (--seed), or theta / ||theta||, the one
      `pathfinder hessian --time-hvp` uses, so that v.Hv and ||Hv|| can be
      compared with it. Per (batch, threads): the best of --reps timed
      products after one warm-up, wall clock and process CPU time.

Both print one JSON line per configuration and a last line {"best": ...},
the fastest of them.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_interop as ti  # noqa: E402  (CNN, checkpoint reader, MNIST loader)
from torch_hvp import hvp  # noqa: E402  (H v over blocks, the MLP benchmark's own)

DEFAULT_ARCH = "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10"


def int_list(text):
    return [int(t) for t in text.split(",")]


def run_epoch(args, xtr, ytr, xte, yte):
    best = None
    for threads in int_list(args.threads):
        torch.set_num_threads(threads)
        torch.manual_seed(args.seed)
        model = ti.CNN(args.arch, args.act)
        ds = torch.utils.data.TensorDataset(xtr, ytr)
        loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
        opt = torch.optim.Adam(model.parameters(), lr=0.0015, weight_decay=0.0)
        crit = nn.CrossEntropyLoss()
        times = []
        for _ in range(args.epochs):
            model.train()
            t0 = time.perf_counter()
            for x, y in loader:
                opt.zero_grad()
                loss = crit(model(x), y)
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        acc, _ = ti.evaluate(model, xte, yte)
        rec = {"peer": "pytorch", "torch": torch.__version__, "mode": "epoch",
               "arch": args.arch, "activations": ",".join(model.acts),
               "n_params": model.n_params(), "threads": threads,
               "seconds_per_epoch": min(times), "epoch_seconds": times,
               "epochs": args.epochs, "test_accuracy": acc}
        print(json.dumps(rec), flush=True)
        if best is None or rec["seconds_per_epoch"] < best["seconds_per_epoch"]:
            best = rec
    return best


def run_hvp(args, x, y):
    if args.model:
        tensors, metadata = ti.st_load(args.model)
        model = ti.model_from_checkpoint(tensors, metadata)
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
        if (metadata or {}).get("loss", "ce") != "ce":
            raise ValueError(f"{args.model}: the benchmark expects a cross-entropy MNIST model")
    else:
        torch.manual_seed(args.seed)
        model = ti.CNN(args.arch, args.act)
    if model.n_inputs != x.shape[1]:
        raise ValueError(f"the model takes {model.n_inputs} inputs, MNIST has {x.shape[1]}")
    params = list(model.parameters())
    if args.direction == "theta":
        flat = torch.cat([q.detach().reshape(-1).double() for q in params])
    else:
        gen = torch.Generator().manual_seed(args.seed)
        flat = torch.randn(sum(q.numel() for q in params), generator=gen, dtype=torch.float64)
    flat = flat / flat.norm()
    v = [vi.reshape(q.shape).float()
         for vi, q in zip(torch.split(flat, [q.numel() for q in params]), params)]

    best = None
    for threads in int_list(args.threads):
        torch.set_num_threads(threads)
        for batch in int_list(args.batches):
            hvp(model, params, x, y, v, batch, "ce")  # warm-up
            times, cpu = [], []
            for _ in range(args.reps):
                t0, c0 = time.perf_counter(), time.process_time()
                hv = hvp(model, params, x, y, v, batch, "ce")
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            hv_flat = torch.cat([h.reshape(-1).double() for h in hv])
            v_flat = torch.cat([vi.reshape(-1).double() for vi in v])
            rec = {"peer": "pytorch", "torch": torch.__version__, "mode": "hvp",
                   "arch": model.architecture, "activations": ",".join(model.acts),
                   "n_params": model.n_params(), "direction": args.direction,
                   "threads": threads, "batch": batch, "n": int(x.shape[0]),
                   "seconds": min(times), "cpu_seconds": min(cpu),
                   "vHv": float(v_flat @ hv_flat), "hv_norm": float(hv_flat.norm())}
            print(json.dumps(rec), flush=True)
            if best is None or rec["seconds"] < best["seconds"]:
                best = rec
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("epoch", "hvp"):
        q = sub.add_parser(mode)
        if mode == "hvp":
            q.add_argument("model", nargs="?", default=None,
                           help="checkpoint (default: a fresh model of --arch)")
        q.add_argument("--mnist", default=ti.default_mnist_dir())
        q.add_argument("--arch", default=None, help=f"model spec (default {DEFAULT_ARCH})")
        q.add_argument("--act", default="sigmoid")
        q.add_argument("--threads", default="1,2")
        q.add_argument("--seed", type=int, default=0)
        if mode == "epoch":
            q.add_argument("--epochs", type=int, default=2)
        else:
            q.add_argument("--direction", choices=("random", "theta"), default="random")
            q.add_argument("--batches", default="1000,10000")
            q.add_argument("--reps", type=int, default=3)
            q.add_argument("--n", type=int, default=0, help="first N training samples (0 = all)")
    args = p.parse_args()
    if getattr(args, "model", None) and args.arch is not None:
        p.error("give a checkpoint or --arch, not both")
    if args.arch is None:
        args.arch = DEFAULT_ARCH

    try:
        x, y = ti.load_mnist(args.mnist, "train")
        if args.mode == "epoch":
            xte, yte = ti.load_mnist(args.mnist, "test")
            best = run_epoch(args, x, y, xte, yte)
        else:
            if args.n > 0:
                x, y = x[:args.n], y[:args.n]
            best = run_hvp(args, x, y)
    except (ti.FormatError, ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
        print(f"torch_cnn.py: {str(e).strip()}", file=sys.stderr)
        return 2
    print(json.dumps({"best": best}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
