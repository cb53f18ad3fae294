"""Ghost batch norm (Hoffer, Hubara & Soudry 2017) as pure functions.

A large training batch is split along the batch axis into "ghost" sub-batches
of a given size, and each is normalised with its own statistics, as if it were
a small batch of its own. This brings back the regularising noise of small
batches while the gradient step still uses the whole large batch.

When the batch does not divide evenly, the remainder forms a smaller last
sub-batch, except that a remainder of one example is merged into the
sub-batch before it: one example alone has no variance across the batch.
"""
from __future__ import annotations

import numpy as np

from .batch_norm import BatchNormCache, batch_norm_backward, batch_norm_forward


def ghost_batch_slices(batch_size: int, ghost_batch_size: int) -> list[slice]:
    """The sub-batches, as slices of the batch axis; none holds a single example.

    >>> ghost_batch_slices(10, 4)
    [slice(0, 4, None), slice(4, 8, None), slice(8, 10, None)]
    >>> ghost_batch_slices(9, 4)
    [slice(0, 4, None), slice(4, 9, None)]
    """
    if ghost_batch_size < 2:
        raise ValueError(f"ghost_batch_size must be at least 2, got {ghost_batch_size}")
    slices = [slice(s, min(s + ghost_batch_size, batch_size)) for s in range(0, batch_size, ghost_batch_size)]
    if len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices[-2:] = [slice(slices[-2].start, batch_size)]
    return slices


def ghost_batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float,
    ghost_batch_size: int,
) -> tuple[np.ndarray, list[tuple[slice, BatchNormCache]]]:
    """Batch-normalise each ghost sub-batch of x on its own.

    Returns:
        ``(y, caches)``: one ``(slice, cache)`` per sub-batch, in order; each
        cache carries that sub-batch's mean and biased variance.
    """
    y = np.empty_like(x)
    caches = []
    for part in ghost_batch_slices(x.shape[0], ghost_batch_size):
        y[part], cache = batch_norm_forward(x[part], gamma, beta, eps)
        caches.append((part, cache))
    return y, caches


def ghost_batch_norm_backward(
    dy: np.ndarray, caches: list[tuple[slice, BatchNormCache]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)``: per sub-batch dx; gamma/beta gradients summed."""
    dx = np.empty_like(dy)
    dgamma = dbeta = 0.0
    for part, cache in caches:
        dx[part], dgamma_part, dbeta_part = batch_norm_backward(dy[part], cache)
        dgamma = dgamma + dgamma_part
        dbeta = dbeta + dbeta_part
    return dx, dgamma, dbeta
