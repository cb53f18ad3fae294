"""One epoch of the paper's network in PyTorch, timed like ``bnnet train``'s loop.

Same data (``bnnet.data.load_dataset``), batch size 60, shuffled order,
SGD with momentum 0.9 and learning rate 0.1, and per step the same
bookkeeping as ``bnnet.training.fit`` (the loss as a float and the count of
correct predictions). Prints one JSON line: training-loop seconds and test accuracy.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bnnet.data import load_dataset
from bnnet.training.loop import batch_slices

from .networks import LEARNING_RATE, MOMENTUM, SIZES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=60)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_dataset(args.dataset, data_dir=args.data_dir, dtype=np.float32)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [torch.nn.Linear(data.num_features if not layers else fan_in, fan_out, bias=False),
                   torch.nn.BatchNorm1d(fan_out), torch.nn.Sigmoid()]
    layers.append(torch.nn.Linear(SIZES[-2], data.num_classes))
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(data.x_train)))
    started = time.perf_counter()
    model.train()
    loss_sum = correct = 0.0
    for part in batch_slices(len(order), args.batch_size):
        index = order[part]
        xb, yb = x[index], y[index]
        optimizer.zero_grad()
        outputs = model(xb)
        loss = loss_fn(outputs, yb)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss) * len(index)
        correct += float((outputs.argmax(dim=1) == yb).sum())
    seconds = time.perf_counter() - started
    model.eval()
    with torch.inference_mode():
        accuracy = float((model(torch.from_numpy(data.x_test)).argmax(dim=1) == torch.from_numpy(data.y_test))
                         .float().mean())
    print(json.dumps({"seconds": seconds, "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
