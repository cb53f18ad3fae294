"""Compiled batch-norm kernels: the math of :mod:`bnnet.functional.batch_norm`, fused.

Two memory layouts, because the loop that vectorises differs:

- ``(N, C)``: rows are contiguous across channels, so every loop runs along a
  row and keeps one accumulator per channel (no reduction inside the SIMD loop).
- ``(N, C, S)`` (S = product of the spatial sizes): each ``x[n, c]`` is a
  contiguous run of S values, so the statistics keep one accumulator per
  spatial position and add those up at the end.

Each kernel handles a range of channels, so the parallel drivers split the
channels between threads and the result does not depend on the thread count.

Training statistics are one pass over x with float64 accumulators of the
values shifted by the channel's first value, ``d = x - x[0]``::

    mean = x[0] + sum(d) / m,    var = sum(d^2) / m - (sum(d) / m)^2

Shifting by a sample of the data keeps ``sum(d)`` small, so the subtraction
does not cancel catastrophically the way ``E[x^2] - E[x]^2`` does (the reason
the reference makes two passes). Backward recomputes ``x - mean`` from x
rather than reading a cached x_hat: one array fewer to write and read.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .jit import jit, parallel_jit


# -- (N, C): one accumulator per channel ----------------------------------------
@jit
def train_forward_2d(x, gamma, beta, eps, y, mean, var, inv_std, c0, c1):
    """y = (x - mean) * gamma * inv_std + beta for channels c0:c1, batch statistics."""
    n = x.shape[0]
    width = c1 - c0
    first = x[0, c0:c1]
    shift = np.empty(width)
    for j in range(width):
        shift[j] = first[j]
    sums = np.zeros(width)
    squares = np.zeros(width)
    for i in range(n):
        row = x[i, c0:c1]
        for j in range(width):
            d = row[j] - shift[j]
            sums[j] += d
            squares[j] += d * d
    centre = np.empty(width, x.dtype)
    scale = np.empty(width, x.dtype)
    offset = beta[c0:c1]
    g = gamma[c0:c1]
    for j in range(width):
        mu = sums[j] / n
        variance = max(squares[j] / n - mu * mu, 0.0)
        mean[c0 + j] = shift[j] + mu
        var[c0 + j] = variance
        inv_std[c0 + j] = 1.0 / np.sqrt(variance + eps)
        centre[j] = mean[c0 + j]
        scale[j] = g[j] * inv_std[c0 + j]
    for i in range(n):
        row = x[i, c0:c1]
        out = y[i, c0:c1]
        for j in range(width):
            out[j] = (row[j] - centre[j]) * scale[j] + offset[j]


@jit
def train_backward_2d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, c1):
    """dx, dgamma, dbeta for channels c0:c1 (formulas in :mod:`bnnet.functional.batch_norm`)."""
    n = x.shape[0]
    width = c1 - c0
    centre = mean[c0:c1]
    sum_dy = np.zeros(width)
    sum_dy_centred = np.zeros(width)
    for i in range(n):
        grad = dy[i, c0:c1]
        row = x[i, c0:c1]
        for j in range(width):
            g = np.float64(grad[j])
            sum_dy[j] += g
            sum_dy_centred[j] += g * (row[j] - centre[j])
    coeff = np.empty(width, x.dtype)
    mean_dy = np.empty(width, x.dtype)
    slope = np.empty(width, x.dtype)
    for j in range(width):
        istd = np.float64(inv_std[c0 + j])
        dgamma[c0 + j] = sum_dy_centred[j] * istd
        dbeta[c0 + j] = sum_dy[j]
        coeff[j] = gamma[c0 + j] * inv_std[c0 + j]
        mean_dy[j] = sum_dy[j] / n
        slope[j] = sum_dy_centred[j] * istd * istd / n
    for i in range(n):
        grad = dy[i, c0:c1]
        row = x[i, c0:c1]
        out = dx[i, c0:c1]
        for j in range(width):
            out[j] = coeff[j] * (grad[j] - mean_dy[j] - (row[j] - centre[j]) * slope[j])


# -- (N, C, S): one accumulator per spatial position ----------------------------
@jit
def train_forward_3d(x, gamma, beta, eps, y, mean, var, inv_std, c0, c1):
    n, _, s = x.shape
    m = n * s
    sums = np.empty(s)
    squares = np.empty(s)
    for c in range(c0, c1):
        shift = np.float64(x[0, c, 0])
        sums[:] = 0.0
        squares[:] = 0.0
        for i in range(n):
            run = x[i, c]
            for k in range(s):
                d = run[k] - shift
                sums[k] += d
                squares[k] += d * d
        total = 0.0
        total_squares = 0.0
        for k in range(s):
            total += sums[k]
            total_squares += squares[k]
        mu = total / m
        variance = max(total_squares / m - mu * mu, 0.0)
        mean[c] = shift + mu
        var[c] = variance
        inv_std[c] = 1.0 / np.sqrt(variance + eps)
        centre = mean[c]
        scale = gamma[c] * inv_std[c]
        offset = beta[c]
        for i in range(n):
            run = x[i, c]
            out = y[i, c]
            for k in range(s):
                out[k] = (run[k] - centre) * scale + offset


@jit
def train_backward_3d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, c1):
    n, _, s = x.shape
    m = n * s
    sums = np.empty(s)
    sums_centred = np.empty(s)
    for c in range(c0, c1):
        centre = mean[c]
        sums[:] = 0.0
        sums_centred[:] = 0.0
        for i in range(n):
            grad = dy[i, c]
            run = x[i, c]
            for k in range(s):
                g = np.float64(grad[k])
                sums[k] += g
                sums_centred[k] += g * (run[k] - centre)
        sum_dy = 0.0
        sum_dy_centred = 0.0
        for k in range(s):
            sum_dy += sums[k]
            sum_dy_centred += sums_centred[k]
        istd = np.float64(inv_std[c])
        dgamma[c] = sum_dy_centred * istd
        dbeta[c] = sum_dy
        # the per-element arithmetic runs in x's dtype, as in the reference
        constants = np.empty(3, x.dtype)
        constants[0] = gamma[c] * inv_std[c]
        constants[1] = sum_dy / m
        constants[2] = sum_dy_centred * istd * istd / m
        coeff, mean_dy, slope = constants[0], constants[1], constants[2]
        for i in range(n):
            grad = dy[i, c]
            run = x[i, c]
            out = dx[i, c]
            for k in range(s):
                out[k] = coeff * (grad[k] - mean_dy - (run[k] - centre) * slope)


# -- fixed statistics (eval): y is affine in x ----------------------------------
@jit
def fixed_forward_2d(x, centre, scale, offset, y):
    """y = (x - centre) * scale + offset per channel, rows of (N, C)."""
    for i in range(x.shape[0]):
        row = x[i]
        out = y[i]
        for j in range(row.shape[0]):
            out[j] = (row[j] - centre[j]) * scale[j] + offset[j]


@jit
def fixed_forward_3d(x, centre, scale, offset, y):
    n, c_total, s = x.shape
    for i in range(n):
        for c in range(c_total):
            run = x[i, c]
            out = y[i, c]
            a, b, o = centre[c], scale[c], offset[c]
            for k in range(s):
                out[k] = (run[k] - a) * b + o


@jit
def fixed_backward_3d(dy, x, centre, inv_std, scale, dx, dgamma, dbeta):
    """dx = dy * scale; dbeta = sum dy; dgamma = sum dy * (x - centre) * inv_std, over (N, C, S)."""
    n, c_total, s = x.shape
    sum_dy = np.zeros(c_total)
    sum_dy_centred = np.zeros(c_total)
    for i in range(n):
        for c in range(c_total):
            grad = dy[i, c]
            run = x[i, c]
            out = dx[i, c]
            a, b = centre[c], scale[c]
            for k in range(s):
                g = grad[k]
                out[k] = g * b
                sum_dy[c] += g
                sum_dy_centred[c] += np.float64(g) * (run[k] - a)
    for c in range(c_total):
        dbeta[c] = sum_dy[c]
        dgamma[c] = sum_dy_centred[c] * np.float64(inv_std[c])


# -- parallel drivers: channels split between threads ------------------------------
@parallel_jit
def train_forward_2d_parallel(x, gamma, beta, eps, y, mean, var, inv_std, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_forward_2d(x, gamma, beta, eps, y, mean, var, inv_std, c0, min(channels, c0 + chunk))


@parallel_jit
def train_forward_3d_parallel(x, gamma, beta, eps, y, mean, var, inv_std, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_forward_3d(x, gamma, beta, eps, y, mean, var, inv_std, c0, min(channels, c0 + chunk))


@parallel_jit
def train_backward_2d_parallel(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_backward_2d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, min(channels, c0 + chunk))


@parallel_jit
def train_backward_3d_parallel(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_backward_3d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, min(channels, c0 + chunk))
