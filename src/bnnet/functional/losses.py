"""Loss functions as pure functions: value and gradient with respect to the prediction."""
from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax along the last axis, shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels under softmax(logits), and d loss / d logits.

    ``loss = -(1/N) sum_i log softmax(logits_i)[labels_i]``;
    ``d loss / d logits = (softmax(logits) - onehot(labels)) / N``.
    """
    n = logits.shape[0]
    log_probs = log_softmax(logits)
    rows = np.arange(n)
    loss = -float(log_probs[rows, labels].mean())
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    grad /= n
    return loss, grad


def mean_squared_error(prediction: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over all elements of (prediction - target)^2, and its gradient 2 (p - t) / size."""
    diff = prediction - target
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff
