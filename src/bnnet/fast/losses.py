"""Softmax cross-entropy, value and gradient, compiled.

Per row: ``m = max(z)``, ``s = sum(exp(z - m))``, ``loss_i = log(s) - (z[label] - m)``
and ``grad_i = (exp(z - m) / s - onehot) / N``, the same shifted (overflow-free)
formulas as :mod:`bnnet.functional.losses`. Float64 logits take the library
``exp`` one value at a time. For float32 logits, the ones training uses, the
shifted values of the whole batch are exponentiated in one vectorised float32
loop (the sigmoid's ``exp``, within 2 units in the last place, as NumPy's float32
``exp`` in the reference); sums, logs and the loss stay float64. With ten
classes a row is too short for the per-row loop to vectorise: at batch 1024
the library ``exp`` took 60 of the kernel's 62 microseconds.
"""
from __future__ import annotations

import math

import numpy as np

from .activation_kernels import exp_nonpositive_float32
from .jit import inline_jit, jit

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@inline_jit
def _labels_in_range(labels, classes):
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= classes:
            return False
    return True


@inline_jit
def _row_max(row):
    top = row[0]
    for j in range(1, row.shape[0]):
        top = max(top, row[j])
    return top


@jit
def _softmax_cross_entropy(logits, labels, grad):
    """Sum of the per-row losses (float64), or -1.0 at once if a label is outside 0..K-1."""
    n, classes = logits.shape
    if not _labels_in_range(labels, classes):
        return -1.0
    exps = np.empty(classes)
    total = 0.0
    for i in range(n):
        label = labels[i]
        row = logits[i]
        top = _row_max(row)
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


@jit
def _softmax_cross_entropy_float32(logits, labels, grad):
    """_softmax_cross_entropy for float32 logits, the exponentials in one vectorised pass."""
    n, classes = logits.shape
    if not _labels_in_range(labels, classes):
        return -1.0
    exps = np.empty(n * classes, np.float32)  # the shifted logits, then their exponentials
    total = 0.0
    for i in range(n):
        row = logits[i]
        top = _row_max(row)
        for j in range(classes):
            exps[i * classes + j] = row[j] - top
        total -= np.float64(row[labels[i]]) - np.float64(top)
    for k in range(n * classes):
        exps[k] = exp_nonpositive_float32(exps[k])
    for i in range(n):
        row_exps = exps[i * classes:(i + 1) * classes]
        sum_exp = 0.0
        for j in range(classes):
            sum_exp += row_exps[j]
        total += math.log(sum_exp)
        scale = 1.0 / (sum_exp * n)
        out = grad[i]
        for j in range(classes):
            out[j] = row_exps[j] * scale
        label = labels[i]
        out[label] = (row_exps[label] / sum_exp - 1.0) / n
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
    kernel = _softmax_cross_entropy_float32 if logits.dtype == np.float32 else _softmax_cross_entropy
    total = kernel(logits, np.ascontiguousarray(labels), grad)
    if total < 0.0:  # a label out of range: the reference path explains it
        return None
    return total / logits.shape[0], grad
