#!/usr/bin/python3
"""One epoch of the paper protocol in PyTorch, as the paper's scripts run it:
MLP 784-128-128-10 (sigmoid), Adam(lr=0.0015, weight_decay=beta), batch 64,
DataLoader-style reshuffling, MNIST normalized with 0.1307/0.3081.

Usage: torch_epoch.py MNIST_DIR THREADS [EPOCHS]
Prints one JSON line: seconds per epoch (best of EPOCHS) and test accuracy.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.sigmoid(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        return self.fc3(x)


def main():
    mnist, threads = sys.argv[1], int(sys.argv[2])
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    norm = lambda a: (torch.from_numpy(a.reshape(len(a), -1).astype(np.float32)) / 255 - 0.1307) / 0.3081
    xtr = norm(idx(f"{mnist}/train-images-idx3-ubyte"))
    ytr = torch.from_numpy(idx(f"{mnist}/train-labels-idx1-ubyte").astype(np.int64))
    xte = norm(idx(f"{mnist}/t10k-images-idx3-ubyte"))
    yte = torch.from_numpy(idx(f"{mnist}/t10k-labels-idx1-ubyte").astype(np.int64))
    ds = torch.utils.data.TensorDataset(xtr, ytr)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.0015, weight_decay=0.0)
    crit = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item() * 100
    print(json.dumps({"threads": threads, "seconds_per_epoch": min(times),
                      "epochs": epochs, "test_accuracy": acc}))


if __name__ == "__main__":
    main()
