#!/usr/bin/python3
"""The peer of `pathfinder sweep` for bench/sweep-speed.sh: the paper
protocol's origin sweep in PyTorch, as the paper's scripts run it.

MNIST normalized with 0.1307/0.3081; MLP 784-128-128-10 (sigmoid hidden
layers, nn.Linear's default initialization); for every beta a new
torch.optim.Adam(lr=0.0015, weight_decay=beta) (L2 in the gradient), batch
64 reshuffled every epoch (DataLoader(shuffle=True)), at most 50 epochs,
stop when the epoch's mean minibatch loss has not improved for 5 epochs,
keep the final state and warm-start the next beta from it; after every beta
the train cross-entropy, test accuracy and r = ||theta|| are measured.

Usage: torch_sweep.py MNIST_DIR THREADS N_BETAS [STEP] [SEED]
Prints one JSON line per beta: beta, epochs, train seconds (the epochs) and
measure seconds (the evaluation after them), train CE, test accuracy, r.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_interop as ti  # noqa: E402  (MLP, MNIST loader, evaluation)


def main():
    mnist, threads, n_betas = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    step = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0002
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr, ytr = ti.load_mnist(mnist, "train")
    xte, yte = ti.load_mnist(mnist, "test")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr), batch_size=64,
                                         shuffle=True)
    model = ti.MLP([784, 128, 128, 10], ["sigmoid", "sigmoid", "linear"])
    for i in range(n_betas):
        beta = i * step
        opt = torch.optim.Adam(model.parameters(), lr=0.0015, weight_decay=beta)
        best, wait, epochs = float("inf"), 0, 0
        t0 = time.perf_counter()
        model.train()
        for epoch in range(50):
            total, batches = 0.0, 0
            for x, y in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                total += loss.item()
                batches += 1
            epochs = epoch + 1
            mean = total / batches
            if mean < best:
                best, wait = mean, 0
            else:
                wait += 1
                if wait >= 5:
                    break
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        _, train_ce = ti.evaluate(model, xtr, ytr)
        test_acc, _ = ti.evaluate(model, xte, yte)
        with torch.no_grad():
            r = float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))
        measure_s = time.perf_counter() - t1
        print(json.dumps({"beta": beta, "epochs": epochs, "train_seconds": train_s,
                          "measure_seconds": measure_s, "train_ce": train_ce,
                          "test_accuracy": test_acc, "r": r}), flush=True)


if __name__ == "__main__":
    main()
