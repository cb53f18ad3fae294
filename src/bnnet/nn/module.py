"""The layer base class: parameters, gradients and buffers kept apart, one mode switch.

Three kinds of layer data, never mixed:

- **parameters**: what an optimizer updates (a Linear's weight and bias,
  batch norm's gamma and beta);
- **gradients**: d loss / d parameter, written by ``backward``; only the
  parameters that are trainable right now have one, so the optimizer leaves
  frozen ones alone;
- **buffers**: state that is not learned by gradient descent (running mean,
  running variance, counters). The optimizer never sees them.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Module:
    """A layer with a hand-written forward and backward.

    Subclasses fill ``self.params`` and ``self.buffers`` in ``__init__``, cache
    what backward needs in ``forward`` and write ``self.grads`` in ``backward``.
    """

    def __init__(self) -> None:
        self.training = True
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    # -- computation -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Given d loss / d output of the last forward, store parameter gradients, return d loss / d input."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- mode --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Switch this layer and its children to training (True) or eval (False) mode."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- structure ---------------------------------------------------------
    def children(self) -> list["Module"]:
        return []

    def trainable(self, name: str) -> bool:
        """Whether the optimizer should update parameter ``name`` now (all are, unless frozen)."""
        return True

    def parameters(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Every parameter, trainable or frozen, by dotted name (the arrays themselves)."""
        return self._collect("params", prefix)

    def gradients(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Gradients of the trainable parameters from the last backward, by dotted name."""
        return self._collect("grads", prefix)

    def named_buffers(self, prefix: str = "") -> dict[str, np.ndarray]:
        return self._collect("buffers", prefix)

    def _collect(self, kind: str, prefix: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        self._collect_into(out, kind, prefix)
        return out

    def _collect_into(self, out: dict[str, np.ndarray], kind: str, prefix: str) -> None:
        # One dict filled in place: training asks for the gradients every step, and a
        # dict per layer merged upwards cost as much as a small layer's arithmetic.
        for name, value in getattr(self, kind).items():
            out[prefix + name] = value
        for index, child in enumerate(self.children()):
            child._collect_into(out, kind, f"{prefix}{index}.")

    def modules(self) -> list["Module"]:
        """This module and every descendant, depth first."""
        found = [self]
        for child in self.children():
            found.extend(child.modules())
        return found

    # -- serialisation -----------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-compatible) that rebuild this layer's architecture."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
