"""Batch normalization as pure functions: forward and backward, no state.

Training mode (Ioffe & Szegedy 2015, Algorithm 1), per channel c over the
``m = N * prod(spatial)`` values of a mini-batch::

    mean_c  = (1/m) sum_i x_ic
    var_c   = (1/m) sum_i (x_ic - mean_c)^2        # biased: divides by m
    x_hat   = (x - mean_c) / sqrt(var_c + eps)
    y       = gamma_c * x_hat + beta_c

Backward, with ``g = dL/dy`` and means taken over the same m values::

    dbeta  = sum_i g_i
    dgamma = sum_i g_i * x_hat_i
    dx     = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))

The last line is the three-path chain rule (through x_hat directly, through
the mean and through the variance) collapsed: ``d(var)/d(mean) = 0`` because
the centred values sum to zero, so only the two mean terms survive.

Fixed-statistics mode (eval, or frozen normalisation) treats mean and variance
as constants, so its backward is a per-channel scaling.

Inputs are ``(N, C)`` or ``(N, C, *spatial)``; the channel axis is 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def reduction_axes(ndim: int) -> tuple[int, ...]:
    """Axes that batch norm averages over: the batch axis and every spatial axis."""
    if ndim < 2:
        raise ValueError(
            f"batch norm expected input of shape (N, C) or (N, C, *spatial), got {ndim}-D input"
        )
    return (0, *range(2, ndim))


def per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a (C,) vector so that it broadcasts along axis 1 of an ndim-D input."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def values_per_channel(shape: tuple[int, ...]) -> int:
    """How many values each channel's statistics are computed from: N * prod(spatial)."""
    if len(shape) < 2:
        reduction_axes(len(shape))  # raises the explanatory error
    # Plain int products, not np.prod on a list: this runs every step, and np.prod costs microseconds.
    return shape[0] * math.prod(shape[2:])


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of x, computed in two passes.

    Two passes (mean first, then the mean of squared deviations) rather than
    E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std and can
    even go negative in floating point.
    """
    axes = reduction_axes(x.ndim)
    mean = x.mean(axis=axes)
    centered = x - per_channel(mean, x.ndim)
    var = np.mean(centered * centered, axis=axes)
    return mean, var


@dataclass
class BatchNormCache:
    """Exactly what the backward pass needs, computed once in the forward pass."""

    x_hat: np.ndarray  # normalised input, same shape as x
    inv_std: np.ndarray  # (C,) 1 / sqrt(var + eps)
    gamma: np.ndarray | None  # (C,) or None when affine=False
    mean: np.ndarray  # (C,) batch mean, for the running statistics
    var: np.ndarray  # (C,) biased batch variance, for the running statistics


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float,
) -> tuple[np.ndarray, BatchNormCache]:
    """Normalise x with its own batch statistics, then scale and shift.

    Args:
        x: input, ``(N, C)`` or ``(N, C, *spatial)``.
        gamma: per-channel scale ``(C,)``, or None for no affine transform.
        beta: per-channel shift ``(C,)``, or None for no affine transform.
        eps: added to the variance before the square root.

    Returns:
        ``(y, cache)``: y has x's shape; cache feeds :func:`batch_norm_backward`.
    """
    mean, var = batch_statistics(x)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - per_channel(mean, x.ndim)) * per_channel(inv_std, x.ndim)
    y = affine_transform(x_hat, gamma, beta)
    return y, BatchNormCache(x_hat=x_hat, inv_std=inv_std, gamma=gamma, mean=mean, var=var)


def affine_transform(x_hat: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None) -> np.ndarray:
    """y = gamma * x_hat + beta per channel (identity when gamma and beta are None)."""
    if gamma is None:
        return x_hat
    return x_hat * per_channel(gamma, x_hat.ndim) + per_channel(beta, x_hat.ndim)


def batch_norm_backward(
    dy: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch norm's training forward.

    Returns:
        ``(dx, dgamma, dbeta)``; dgamma and dbeta are computed even when the
        layer has no affine transform (the caller may discard them).
    """
    axes = reduction_axes(dy.ndim)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.x_hat).sum(axis=axes)
    dx = normalized_input_backward(dy, cache.x_hat, cache.inv_std, cache.gamma, dbeta, dgamma)
    return dx, dgamma, dbeta


def normalized_input_backward(
    dy: np.ndarray,
    x_hat: np.ndarray,
    inv_std: np.ndarray,
    scale: np.ndarray | None,
    sum_dy: np.ndarray,
    sum_dy_x_hat: np.ndarray,
) -> np.ndarray:
    """dx for x_hat = (x - mean(x)) * inv_std when dL/dx_hat = scale * dy.

    ``sum_dy`` and ``sum_dy_x_hat`` are the per-channel sums of dy and dy*x_hat,
    which the caller already has (they are dbeta and dgamma), so they are not
    recomputed here.
    """
    ndim = dy.ndim
    m = dy.size // inv_std.size
    coeff = inv_std if scale is None else scale * inv_std
    return per_channel(coeff, ndim) * (
        dy - per_channel(sum_dy / m, ndim) - x_hat * per_channel(sum_dy_x_hat / m, ndim)
    )


@dataclass
class FixedStatisticsCache:
    """What the fixed-statistics backward needs: the output is linear in x."""

    x_hat: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None


def fixed_statistics_forward(
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float,
) -> tuple[np.ndarray, FixedStatisticsCache]:
    """Normalise with given statistics (eval mode: the running estimates).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``; mean and var are
    constants, so each example is transformed independently of the others.
    """
    reduction_axes(x.ndim)  # validates the rank
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - per_channel(mean, x.ndim)) * per_channel(inv_std, x.ndim)
    y = affine_transform(x_hat, gamma, beta)
    return y, FixedStatisticsCache(x_hat=x_hat, inv_std=inv_std, gamma=gamma)


def fixed_statistics_backward(
    dy: np.ndarray, cache: FixedStatisticsCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`fixed_statistics_forward`: dx = dy * gamma * inv_std."""
    axes = reduction_axes(dy.ndim)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.x_hat).sum(axis=axes)
    scale = cache.inv_std if cache.gamma is None else cache.gamma * cache.inv_std
    return dy * per_channel(scale, dy.ndim), dgamma, dbeta
