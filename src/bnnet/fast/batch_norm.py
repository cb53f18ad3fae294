"""Batch norm on the compiled kernels, with the signatures of :mod:`bnnet.functional.batch_norm`.

The forward caches the input itself (not a copy) with the per-channel mean and
1/std; backward recomputes ``x - mean`` from it. So, as with PyTorch's saved
tensors, the input must not be modified in place between forward and backward.

Inputs the kernels do not cover (integer or mixed dtypes, empty arrays) go to
the reference functions, and their caches to the reference backward.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functional import batch_norm as reference
from . import batch_norm_kernels as kernels
from . import buffers
from . import fixed_statistics_kernels as fixed_kernels
from .jit import use_threads
from .streaming import STREAM_MIN_BYTES

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(slots=True)  # slots: made every training step, and cheaper to build
class FastBatchNormCache:
    """What the fast backward needs: the input and per-channel statistics."""

    x: np.ndarray  # the input as (N, C) or (N, C, S)
    shape: tuple[int, ...]  # the input's original shape
    mean: np.ndarray  # (C,) batch mean (also for the running statistics)
    var: np.ndarray  # (C,) biased batch variance (for the running statistics)
    inv_std: np.ndarray  # (C,)
    gamma: np.ndarray | None


@dataclass(slots=True)
class FastFixedStatisticsCache:
    x: np.ndarray
    shape: tuple[int, ...]
    mean: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None


def _supported(x, *per_channel) -> bool:
    """Float32 or float64 throughout, at least (N, C), not empty."""
    if type(x) is not np.ndarray or x.dtype not in FLOATS or x.ndim < 2 or x.size == 0:
        return False
    dtype = x.dtype
    for value in per_channel:
        if value is not None and (type(value) is not np.ndarray or value.dtype != dtype):
            return False
    return True


def _as_kernel_layout(x: np.ndarray) -> np.ndarray:
    """(N, C) stays; (N, C, *spatial) becomes (N, C, S); C-contiguous either way."""
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    if x.ndim == 2:
        return x
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return flat.reshape(x.shape[0], x.shape[1]) if flat.shape[2] == 1 else flat


def _per_channel(gamma, beta, channels: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous gamma and beta, or 1 and 0 when the layer has no affine transform."""
    if gamma is None:
        return np.ones(channels, dtype), np.zeros(channels, dtype)
    if gamma.flags.c_contiguous and beta.flags.c_contiguous:  # a layer's own parameters always are
        return gamma, beta
    return np.ascontiguousarray(gamma), np.ascontiguousarray(beta)


def _chunk(channels: int) -> int:
    """Channels per thread, rounded up to 16 so threads never write the same cache line."""
    import numba

    per_thread = -(-channels // numba.get_num_threads())
    return max(16, -(-per_thread // 16) * 16)


def _output_page_offset(x: np.ndarray, threaded: bool) -> int:
    """Where a streamed output goes (buffers.output_page_offset): in x's place within a cache line
    when one thread streams an (N, C) pass whole; on a line boundary for the row-by-row streaming
    of the threaded and (N, C, S) passes. Smaller outputs (ordinary stores, likely in cache) start
    a page: reading x's address costs a microsecond, 1% of a (256, 1024) forward."""
    if x.nbytes < STREAM_MIN_BYTES:
        return 0
    return buffers.output_page_offset(x, same_line_offset=x.ndim == 2 and not threaded)


def batch_norm_forward(x, gamma, beta, eps):
    """Same as :func:`bnnet.functional.batch_norm.batch_norm_forward`, one fused kernel."""
    if not _supported(x, gamma, beta):
        return reference.batch_norm_forward(x, gamma, beta, eps)
    flat = _as_kernel_layout(x)
    channels = flat.shape[1]
    scale, offset = _per_channel(gamma, beta, channels, x.dtype)
    threaded = use_threads(flat.size)
    y = buffers.empty_like(flat, _output_page_offset(flat, threaded))
    # Three arrays, not the rows of one (3, C) array: unpacking rows costs a microsecond.
    mean, var, inv_std = np.empty(channels, x.dtype), np.empty(channels, x.dtype), np.empty(channels, x.dtype)
    if threaded:
        driver = kernels.train_forward_2d_parallel if flat.ndim == 2 else kernels.train_forward_3d_parallel
        driver(flat, scale, offset, float(eps), y, mean, var, inv_std, _chunk(channels))
    elif flat.ndim == 2:
        kernels.train_forward_2d(flat, scale, offset, float(eps), y, mean, var, inv_std, 0, channels)
    else:
        kernels.train_forward_3d(flat, scale, offset, float(eps), y, mean, var, inv_std, 0, channels)
    cache = FastBatchNormCache(x=flat, shape=x.shape, mean=mean, var=var, inv_std=inv_std, gamma=gamma)
    return (y if flat.ndim == x.ndim else y.reshape(x.shape)), cache


def batch_norm_backward(dy, cache):
    """Same as :func:`bnnet.functional.batch_norm.batch_norm_backward`, one fused kernel."""
    if not isinstance(cache, FastBatchNormCache) or dy.dtype != cache.x.dtype or dy.shape != cache.shape:
        if isinstance(cache, FastBatchNormCache):
            raise ValueError(
                f"batch_norm_backward expected dy of shape {cache.shape} and dtype {cache.x.dtype} "
                f"(the forward's output), got shape {dy.shape} and dtype {dy.dtype}"
            )
        return reference.batch_norm_backward(dy, cache)
    x = cache.x
    grad = np.ascontiguousarray(dy).reshape(x.shape)
    channels = x.shape[1]
    gamma = np.ones(channels, x.dtype) if cache.gamma is None else np.ascontiguousarray(cache.gamma)
    threaded = use_threads(x.size)
    dx = buffers.empty_like(x, _output_page_offset(x, threaded))
    dgamma, dbeta = np.empty(channels, x.dtype), np.empty(channels, x.dtype)
    args = (grad, x, cache.mean, cache.inv_std, gamma, dx, dgamma, dbeta)
    if threaded:
        driver = kernels.train_backward_2d_parallel if x.ndim == 2 else kernels.train_backward_3d_parallel
        driver(*args, _chunk(channels))
    elif x.ndim == 2:
        kernels.train_backward_2d(*args, 0, channels)
    else:
        kernels.train_backward_3d(*args, 0, channels)
    return (dx if dx.ndim == len(cache.shape) else dx.reshape(cache.shape)), dgamma, dbeta


def fixed_statistics_forward(x, mean, var, gamma, beta, eps):
    """Same as :func:`bnnet.functional.batch_norm.fixed_statistics_forward`, one kernel."""
    if not _supported(x, mean, var, gamma, beta):
        return reference.fixed_statistics_forward(x, mean, var, gamma, beta, eps)
    flat = _as_kernel_layout(x)
    inv_std = 1.0 / np.sqrt(var + eps)
    scale, offset = _per_channel(gamma, beta, flat.shape[1], x.dtype)
    y = buffers.empty_like(flat)
    fixed = fixed_kernels.fixed_forward_2d if flat.ndim == 2 else fixed_kernels.fixed_forward_3d
    fixed(flat, np.ascontiguousarray(mean), inv_std * scale, offset, y)
    cache = FastFixedStatisticsCache(x=flat, shape=x.shape, mean=mean, inv_std=inv_std, gamma=gamma)
    return y.reshape(x.shape), cache


def fixed_statistics_backward(dy, cache):
    """Same as :func:`bnnet.functional.batch_norm.fixed_statistics_backward`, one kernel."""
    if not isinstance(cache, FastFixedStatisticsCache):
        return reference.fixed_statistics_backward(dy, cache)
    x = cache.x
    if dy.dtype != x.dtype or dy.shape != cache.shape:
        raise ValueError(
            f"fixed_statistics_backward expected dy of shape {cache.shape} and dtype {x.dtype} "
            f"(the forward's output), got shape {dy.shape} and dtype {dy.dtype}"
        )
    grad = np.ascontiguousarray(dy).reshape(x.shape)
    scale = cache.inv_std if cache.gamma is None else cache.gamma * cache.inv_std
    dx = buffers.empty_like(x)
    dgamma = np.empty(x.shape[1], x.dtype)
    dbeta = np.empty(x.shape[1], x.dtype)
    backward = fixed_kernels.fixed_backward_2d if x.ndim == 2 else fixed_kernels.fixed_backward_3d
    backward(grad, x, np.ascontiguousarray(cache.mean), cache.inv_std, scale, dx, dgamma, dbeta)
    return dx.reshape(cache.shape), dgamma, dbeta
