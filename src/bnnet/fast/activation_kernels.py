"""Compiled activations: sigmoid in one pass, and the backward products.

numba calls the C library's ``exp`` one value at a time, which does not
vectorise. For float32 the sigmoid therefore evaluates ``exp`` itself in
float64 arithmetic, where the simple method below is far more accurate than
float32 needs (the result is the float32 sigmoid correctly rounded, or one
unit in the last place off), and every step vectorises::

    exp(t) = 2^k * exp(r),   k = round(t / ln 2),   r = t - k ln 2,  |r| <= ln(2) / 2
    exp(r) ~ sum_{i <= 8} r^i / i!           (truncation error < 4e-10 relative)

Rounding uses the 1.5 * 2^52 trick (adding it leaves round(v) in the low bits
of the sum), and 2^k is assembled from its bits. For float64 the library
``exp`` is used, which is exact to an ulp.
"""
from __future__ import annotations

import math

import numpy as np

from .jit import jit

LOG2_E = 1.4426950408889634
LN_2 = 0.6931471805599453
ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2^52: v + ROUND_MAGIC keeps round(v) in its low bits
MAGIC_BITS = 0x4338000000000000  # the bit pattern of ROUND_MAGIC
LOWEST = -110.0  # exp(-110) < 2^-149: float32 sigmoid(-110) is already exactly 0
BLOCK = 512  # values per block: the scratch arrays stay in L1


@jit
def _exp_nonpositive(t, values, scale_bits, count):
    """values[:count] * 2^(...) pieces of exp(t[:count]) for t <= 0 (see module docstring).

    On return ``values[i] * scale_bits.view(float64)[i] == exp(t[i])``.
    """
    for i in range(count):
        v = t[i]
        v = LOWEST if v < LOWEST else v  # a NaN fails the test and stays NaN
        shifted = v * LOG2_E + ROUND_MAGIC
        k = shifted - ROUND_MAGIC
        r = v - k * LN_2
        values[i] = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (
            1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320))))))))
        scale_bits[i] = shifted
    bits = scale_bits.view(np.int64)
    for i in range(count):
        # low bits of shifted hold k; (k + 1023) << 52 is the float64 2^k
        bits[i] = (bits[i] - MAGIC_BITS + 1023) << 52


@jit
def sigmoid_float32(x, y):
    """y = sigmoid(x) for float32 arrays of the same (contiguous) shape."""
    source = x.reshape(-1)
    target = y.reshape(-1)
    size = source.shape[0]
    t = np.empty(BLOCK)
    values = np.empty(BLOCK)
    scales = np.empty(BLOCK)
    for start in range(0, size, BLOCK):
        count = min(BLOCK, size - start)
        block = source[start:start + count]
        out = target[start:start + count]
        for i in range(count):
            t[i] = -abs(np.float64(block[i]))
        _exp_nonpositive(t, values, scales, count)
        for i in range(count):
            e = values[i] * scales[i]  # exp(-|x|) <= 1
            out[i] = (1.0 if block[i] >= 0 else e) / (1.0 + e)


@jit
def sigmoid_float64(x, y):
    """y = sigmoid(x), as the reference computes it, with the library exp."""
    source = x.reshape(-1)
    target = y.reshape(-1)
    for i in range(source.shape[0]):
        v = source[i]
        e = math.exp(-abs(v))
        target[i] = (1.0 if v >= 0 else e) / (1.0 + e)


@jit
def sigmoid_backward(dy, y, dx):
    """dx = dy * y * (1 - y), in y's dtype and the reference's order."""
    grad, out, result = dy.reshape(-1), y.reshape(-1), dx.reshape(-1)
    one = np.ones(1, out.dtype)[0]  # a 1 of y's dtype: a float literal would promote to float64
    for i in range(grad.shape[0]):
        result[i] = grad[i] * out[i] * (one - out[i])


@jit
def tanh_backward(dy, y, dx):
    """dx = dy * (1 - y^2)."""
    grad, out, result = dy.reshape(-1), y.reshape(-1), dx.reshape(-1)
    one = np.ones(1, out.dtype)[0]
    for i in range(grad.shape[0]):
        result[i] = grad[i] * (one - out[i] * out[i])


@jit
def relu_backward(dy, y, dx):
    """dx = dy * (y > 0), a product as in the reference (so -0.0 and NaN carry through alike)."""
    grad, out, result = dy.reshape(-1), y.reshape(-1), dx.reshape(-1)
    one = np.ones(1, out.dtype)[0]
    zero = one - one
    for i in range(grad.shape[0]):
        result[i] = grad[i] * (one if out[i] > 0 else zero)
