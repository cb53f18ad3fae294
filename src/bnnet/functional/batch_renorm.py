"""Batch Renormalization (Ioffe 2017) as pure functions.

Batch norm's training output depends on the mini-batch, its eval output on the
running estimates; Batch Renorm ties them together with a per-channel affine
correction that is treated as a constant (no gradient flows through it)::

    sigma_B = sqrt(var_B + eps)              sigma = sqrt(running_var + eps)
    r = clip(sigma_B / sigma, 1/rmax, rmax)  d = clip((mean_B - running_mean) / sigma, -dmax, dmax)
    y = gamma * (x_hat * r + d) + beta       with x_hat the batch-normalised input

With ``rmax = 1`` and ``dmax = 0``, r = 1 and d = 0 exactly, and the output and
every gradient equal batch norm's bit for bit.

Backward, with g = dL/dy: dbeta = sum g, dgamma = sum g * (x_hat r + d), and
dx is batch norm's dx with the upstream gradient scaled by gamma * r.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch_norm import (
    affine_transform,
    batch_statistics,
    normalized_input_backward,
    per_channel,
    reduction_axes,
)


@dataclass
class BatchRenormCache:
    x_hat: np.ndarray  # batch-normalised input
    x_renorm: np.ndarray  # x_hat * r + d, what gamma multiplies
    inv_std: np.ndarray  # (C,) 1 / sigma_B
    gamma: np.ndarray | None
    r: np.ndarray  # (C,) the clipped scale correction
    d: np.ndarray  # (C,) the clipped shift correction
    mean: np.ndarray  # (C,) batch mean
    var: np.ndarray  # (C,) biased batch variance


def batch_renorm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    rmax: float,
    dmax: float,
) -> tuple[np.ndarray, BatchRenormCache]:
    """Batch-renormalise x; returns ``(y, cache)`` for :func:`batch_renorm_backward`."""
    if rmax < 1.0 or dmax < 0.0:
        raise ValueError(f"batch renorm expected rmax >= 1 and dmax >= 0, got rmax={rmax}, dmax={dmax}")
    mean, var = batch_statistics(x)
    sigma_batch = np.sqrt(var + eps)
    sigma_running = np.sqrt(running_var + eps)
    r = np.clip(sigma_batch / sigma_running, 1.0 / rmax, rmax).astype(x.dtype)
    d = np.clip((mean - running_mean) / sigma_running, -dmax, dmax).astype(x.dtype)
    inv_std = 1.0 / sigma_batch
    x_hat = (x - per_channel(mean, x.ndim)) * per_channel(inv_std, x.ndim)
    x_renorm = x_hat * per_channel(r, x.ndim) + per_channel(d, x.ndim)
    y = affine_transform(x_renorm, gamma, beta)
    cache = BatchRenormCache(x_hat, x_renorm, inv_std, gamma, r, d, mean, var)
    return y, cache


def batch_renorm_backward(
    dy: np.ndarray, cache: BatchRenormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)``; r and d are constants (stop-gradient)."""
    axes = reduction_axes(dy.ndim)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.x_renorm).sum(axis=axes)
    sum_dy_x_hat = (dy * cache.x_hat).sum(axis=axes)
    scale = cache.r if cache.gamma is None else cache.gamma * cache.r
    dx = normalized_input_backward(dy, cache.x_hat, cache.inv_std, scale, dbeta, sum_dy_x_hat)
    return dx, dgamma, dbeta
