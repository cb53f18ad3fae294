"""Activations on the compiled kernels, with the signatures of :mod:`bnnet.functional.activations`.

Anything the kernels do not cover (other dtypes, mixed dtypes, shapes that
only broadcast) goes to the reference functions.
"""
from __future__ import annotations

import numpy as np

from ..functional import activations as reference
from . import activation_kernels as kernels
from . import buffers

_SIGMOID = {np.dtype(np.float32): kernels.sigmoid_float32, np.dtype(np.float64): kernels.sigmoid_float64}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Same as :func:`bnnet.functional.activations.sigmoid`, in one pass."""
    kernel = _SIGMOID.get(x.dtype) if isinstance(x, np.ndarray) else None
    if kernel is None:
        return reference.sigmoid(x)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    y = buffers.empty_like(x)
    kernel(x, y)
    return y


def _backward(kernel, reference_fn, dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    if (not isinstance(dy, np.ndarray) or dy.dtype != y.dtype or dy.shape != y.shape
            or y.dtype not in _SIGMOID):
        return reference_fn(dy, y)
    if not dy.flags.c_contiguous:
        dy = np.ascontiguousarray(dy)
    if not y.flags.c_contiguous:
        y = np.ascontiguousarray(y)
    dx = buffers.empty_like(dy)
    kernel(dy, y, dx)
    return dx


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Same as :func:`bnnet.functional.activations.sigmoid_backward`: dy * y * (1 - y)."""
    return _backward(kernels.sigmoid_backward, reference.sigmoid_backward, dy, y)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Same as :func:`bnnet.functional.activations.tanh_backward`: dy * (1 - y^2)."""
    return _backward(kernels.tanh_backward, reference.tanh_backward, dy, y)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Same as :func:`bnnet.functional.activations.relu_backward`: dy * (y > 0)."""
    return _backward(kernels.relu_backward, reference.relu_backward, dy, y)
