"""Activation layers; the math is in :mod:`bnnet.functional.activations`.

On the fast engine (:mod:`bnnet.fast`) the same functions run as compiled
kernels, looked up by name; each layer names its pair once.
"""
from __future__ import annotations

import numpy as np

from .. import fast
from ..functional import activations as F
from .module import Module


class _Activation(Module):
    _forward = staticmethod(F.relu)
    _backward = staticmethod(F.relu_backward)
    # names of the compiled versions in bnnet.fast.compiled (None: the reference always runs)
    _fast_forward: str | None = None
    _fast_backward: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._output: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        kernels = fast.ops() if self._fast_forward else None
        self._output = self._forward(x) if kernels is None else getattr(kernels, self._fast_forward)(x)
        return self._output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._output is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        kernels = fast.ops() if self._fast_backward else None
        if kernels is None:
            return self._backward(grad_output, self._output)
        return getattr(kernels, self._fast_backward)(grad_output, self._output)


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

    _forward = staticmethod(F.sigmoid)
    _backward = staticmethod(F.sigmoid_backward)
    _fast_forward = "sigmoid"
    _fast_backward = "sigmoid_backward"


class Tanh(_Activation):
    """y = tanh(x); dy/dx = 1 - y^2."""

    _forward = staticmethod(F.tanh)
    _backward = staticmethod(F.tanh_backward)
    _fast_backward = "tanh_backward"


class ReLU(_Activation):
    """y = max(x, 0); dy/dx = 1 where y > 0, else 0."""

    _forward = staticmethod(F.relu)
    _backward = staticmethod(F.relu_backward)
    _fast_backward = "relu_backward"


ACTIVATIONS: dict[str, type[_Activation]] = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
