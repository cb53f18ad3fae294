"""Compiled batch norm with fixed statistics (eval mode, or frozen normalisation).

With mean and variance constants, ``y = (x - mean) * gamma * inv_std + beta``
is affine in x, so forward is one pass and backward one pass that also sums
dgamma and dbeta. Layouts as in :mod:`bnnet.fast.batch_norm_kernels`.
"""
from __future__ import annotations

import numpy as np

from .jit import jit


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
    n, channels, s = x.shape
    for i in range(n):
        for c in range(channels):
            run = x[i, c]
            out = y[i, c]
            a, b, o = centre[c], scale[c], offset[c]
            for k in range(s):
                out[k] = (run[k] - a) * b + o


@jit
def fixed_backward_2d(dy, x, centre, inv_std, scale, dx, dgamma, dbeta):
    """dx = dy * scale; dbeta = sum dy; dgamma = sum dy * (x - centre) * inv_std, over rows of (N, C)."""
    channels = x.shape[1]
    sum_dy = np.zeros(channels)
    sum_dy_centred = np.zeros(channels)
    for i in range(x.shape[0]):
        grad = dy[i]
        row = x[i]
        out = dx[i]
        for j in range(channels):
            g = grad[j]
            out[j] = g * scale[j]
            sum_dy[j] += g
            sum_dy_centred[j] += g * (row[j] - centre[j])
    for j in range(channels):
        dbeta[j] = sum_dy[j]
        dgamma[j] = sum_dy_centred[j] * np.float64(inv_std[j])


@jit
def fixed_backward_3d(dy, x, centre, inv_std, scale, dx, dgamma, dbeta):
    """dx = dy * scale; dbeta = sum dy; dgamma = sum dy * (x - centre) * inv_std, over (N, C, S)."""
    n, channels, s = x.shape
    sum_dy = np.zeros(channels)
    sum_dy_centred = np.zeros(channels)
    for i in range(n):
        for c in range(channels):
            grad = dy[i, c]
            run = x[i, c]
            out = dx[i, c]
            a, b = centre[c], scale[c]
            for k in range(s):
                g = grad[k]
                out[k] = g * b
                sum_dy[c] += g
                sum_dy_centred[c] += np.float64(g) * (run[k] - a)
    for c in range(channels):
        dbeta[c] = sum_dy[c]
        dgamma[c] = sum_dy_centred[c] * np.float64(inv_std[c])
