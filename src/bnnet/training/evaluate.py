"""Loss and accuracy in eval mode."""
from __future__ import annotations

import numpy as np

from ..nn.module import Module


def evaluate(model: Module, loss_fn, x: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> tuple[float, float]:
    """Mean loss and accuracy over (x, y) in eval mode; the model's mode is restored after.

    Eval mode normalises with the running statistics, so the batch size here
    does not change the result (beyond float rounding of the sums).
    """
    was_training = model.training
    model.eval()
    try:
        loss_sum = 0.0
        correct = 0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            outputs = model.forward(xb)
            loss_sum += loss_fn.forward(outputs, yb) * len(xb)
            correct += int(np.sum(outputs.argmax(axis=1) == yb))
    finally:
        model.train(was_training)
    return loss_sum / len(x), correct / len(x)
