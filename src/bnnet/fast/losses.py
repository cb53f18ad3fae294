"""Softmax cross-entropy, value and gradient, in one compiled pass over the logits.

Per row, in float64: ``m = max(z)``, ``s = sum(exp(z - m))``,
``loss_i = log(s) - (z[label] - m)`` and ``grad_i = (exp(z - m) / s - onehot) / N``,
the same shifted (overflow-free) formulas as :mod:`bnnet.functional.losses`.
"""
from __future__ import annotations

import math

import numpy as np

from .jit import jit

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@jit
def _softmax_cross_entropy(logits, labels, grad):
    """Sum of the per-row losses (float64), or -1.0 at once if a label is outside 0..K-1."""
    n, classes = logits.shape
    exps = np.empty(classes)
    total = 0.0
    for i in range(n):
        label = labels[i]
        if label < 0 or label >= classes:
            return -1.0
        row = logits[i]
        top = np.float64(row[0])
        for j in range(1, classes):
            top = max(top, np.float64(row[j]))
        sum_exp = 0.0
        for j in range(classes):
            exps[j] = math.exp(row[j] - top)
            sum_exp += exps[j]
        total += math.log(sum_exp) - (row[label] - top)
        out = grad[i]
        for j in range(classes):
            out[j] = exps[j] / sum_exp / n
        out[label] = (exps[label] / sum_exp - 1.0) / n
    return total


def softmax_cross_entropy(logits: np.ndarray, labels) -> tuple[float, np.ndarray] | None:
    """``(mean loss, d loss / d logits)`` as :func:`bnnet.functional.losses.softmax_cross_entropy`,
    or None when the inputs are not ones the kernel covers, *or are invalid*: the caller
    then runs the reference path, whose checks raise the explanatory error.
    """
    if (not isinstance(logits, np.ndarray) or logits.dtype not in FLOATS or logits.ndim != 2
            or not isinstance(labels, np.ndarray) or labels.shape != (logits.shape[0],)
            or labels.dtype.kind not in "iu" or logits.shape[0] == 0):
        return None
    logits = np.ascontiguousarray(logits)
    grad = np.empty_like(logits)
    total = _softmax_cross_entropy(logits, np.ascontiguousarray(labels), grad)
    if total < 0.0:  # a label out of range: the reference path explains it
        return None
    return total / logits.shape[0], grad
