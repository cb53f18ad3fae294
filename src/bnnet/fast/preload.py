"""Load the kernels a training step uses before timing starts.

The first call of each compiled kernel in a process loads it from numba's
cache (compiling it, the first time after installation), and the very first
also starts LLVM: together about half a second, which would otherwise land in
the first training step. :func:`bnnet.training.fit` calls :func:`warm_up`
before it starts its clock; the cost shows in the job's total time instead.
"""
from __future__ import annotations

import numpy as np

from . import activations, batch_norm, losses, running_statistics


def warm_up(dtype, layer_names=("BatchNorm", "Sigmoid", "Tanh", "ReLU")) -> None:
    """Run once, on tiny arrays of ``dtype``, the kernels that layers of the named types,
    the softmax cross-entropy and SGD use (only those: each costs compile time on a first run)."""
    dtype = np.dtype(dtype)
    if dtype not in batch_norm.FLOATS:
        return
    x = np.linspace(-1.0, 1.0, 8, dtype=dtype).reshape(4, 2)
    ones = np.ones(2, dtype)
    if "BatchNorm" in layer_names:
        y, cache = batch_norm.batch_norm_forward(x, ones, ones, 1e-5)
        batch_norm.batch_norm_backward(x, cache)
        running_statistics.fold_running_statistics(ones.copy(), ones.copy(), np.zeros((), np.int64),
                                                    cache.mean, cache.var, 4, 0.1, True)
        y, cache = batch_norm.fixed_statistics_forward(x, ones, ones, ones, ones, 1e-5)  # evaluation
        batch_norm.fixed_statistics_backward(x, cache)
    backwards = {"Sigmoid": activations.sigmoid_backward, "Tanh": activations.tanh_backward,
                 "ReLU": activations.relu_backward}
    for name, backward in backwards.items():
        if name in layer_names:
            backward(x, activations.sigmoid(x) if name == "Sigmoid" else x)
    losses.softmax_cross_entropy(x, np.zeros(4, dtype=np.int64))
    # SGD itself: its first step makes the velocities one parameter at a time (a 2-D weight and a
    # 1-D vector compile separately), the second runs the grouped kernel.
    from ..optim import SGD

    optimizer = SGD({"weight": x.copy(), "bias": ones.copy()}, lr=0.1, momentum=0.9)
    for _ in range(2):
        optimizer.step({"weight": x, "bias": ones})
