"""Element-wise activations and their derivatives, as pure functions.

Each backward takes the forward's output (not its input) where that is all the
derivative needs, so the layer caches one array.
"""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), evaluated without overflow for any x.

    exp is only ever taken of -|x| <= 0, so it cannot overflow; for x < 0 the
    equivalent form exp(x) / (1 + exp(x)) keeps full relative precision for
    tiny outputs, which 1 / (1 + exp(-x)) would also give but only by
    overflowing first.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d sigmoid / dx = y (1 - y)."""
    return dy * y * (1.0 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d tanh / dx = 1 - y^2."""
    return dy * (1.0 - y * y)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 where the output is positive, else 0 (PyTorch's choice of 0 at x = 0)."""
    return dy * (y > 0)
