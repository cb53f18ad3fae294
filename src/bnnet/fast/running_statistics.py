"""The running-statistics update of :mod:`bnnet.nn.running_stats` in one compiled call.

Every training forward of a batch-norm layer folds the batch's mean and
variance into the running estimates. In NumPy that is five small array
operations and a counter increment, about 4.5 microseconds, as long as the
layer's own kernel at batch 60; here it is one call. The arithmetic keeps the
reference's order and rounds the two weights to the arrays' dtype first, as
NumPy does with a Python float, so the results are the same bit for bit.
"""
from __future__ import annotations

import numpy as np

from .jit import jit

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@jit
def _fold(running_mean, running_var, tracked, mean, var, variance_factor, weight):
    tracked[()] += 1
    h = np.empty(2, running_mean.dtype)
    h[0] = variance_factor
    h[1] = weight
    for c in range(running_mean.shape[0]):
        batch_var = var[c] * h[0]
        running_mean[c] += h[1] * (mean[c] - running_mean[c])
        running_var[c] += h[1] * (batch_var - running_var[c])


def fold_running_statistics(running_mean, running_var, tracked, mean, var, count: int, weight: float,
                            unbiased: bool) -> bool:
    """Add 1 to ``tracked`` and do :func:`bnnet.nn.running_stats.update_running_statistics`, in place;
    False (nothing done) when the arrays are not ones the kernel covers."""
    dtype = running_mean.dtype
    if (dtype not in FLOATS or running_var.dtype != dtype or mean.dtype != dtype or var.dtype != dtype
            or tracked.dtype != np.int64 or tracked.shape != () or running_mean.ndim != 1
            or not (running_mean.shape == running_var.shape == mean.shape == var.shape)):
        return False
    # The reference multiplies by count / (count - 1) only when unbiased; times 1.0 is exact.
    factor = count / (count - 1) if unbiased and count > 1 else 1.0
    _fold(running_mean, running_var, tracked, mean, var, factor, weight)
    return True
