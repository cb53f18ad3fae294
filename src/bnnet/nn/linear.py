"""Fully connected layer: y = x W^T + b."""
from __future__ import annotations

from typing import Any

import numpy as np

from .init import init_weight
from .module import Module


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch.

    Backward: ``dW = dy^T x``, ``db = sum_i dy_i``, ``dx = dy W``.

    Args:
        in_features: size of each input example.
        out_features: size of each output example.
        bias: whether to learn b. Leave it off when a BatchNorm follows: the
            batch mean subtraction removes any constant, so b would never
            change the output (:func:`bnnet.mlp` does this).
        init: weight scheme, see :mod:`bnnet.nn.init`.
        init_std: standard deviation for ``init="small_gaussian"``.
        rng: the random generator for the weights (default: ``default_rng(0)``).
        dtype: float32 or float64.

    Shape:
        input ``(N, in_features)``, output ``(N, out_features)``.

    Attributes:
        needs_input_grad: True (default): ``backward`` returns ``dx = dy W``.
            Set it to False on a network's first layer when only the parameter
            gradients are wanted, as in training: backward then skips that
            product, the largest one in a typical step, and returns None.
            (PyTorch skips it the same way, because data tensors do not
            require grad.) :func:`bnnet.training.fit` does this while it runs.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "he",
        init_std: float | None = None,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear expected positive sizes, got in_features={in_features}, out_features={out_features}"
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.init_std = init_std
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(0) if rng is None else rng
        # Stored column-major: then W.T is a row-major (in, out) block and x @ W.T a plain
        # product, which BLAS packs faster than a transposed operand (about 20% of the
        # 784x100 layer's time at batch 60). The values and shape are the same either way.
        self.params["weight"] = np.asfortranarray(
            init_weight(init, out_features, in_features, rng, self.dtype, init_std))
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype=self.dtype)
        self._input: np.ndarray | None = None
        self.needs_input_grad = True

    @property
    def has_bias(self) -> bool:
        return "bias" in self.params

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear expected input of shape (N, {self.in_features}), got {x.shape}"
            )
        self._input = x
        y = x @ self.params["weight"].T
        if self.has_bias:
            y += self.params["bias"]
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        if self._input is None:
            raise RuntimeError("Linear.backward called before forward")
        self.grads["weight"] = (self._input.T @ grad_output).T  # dy^T x, in the weight's column-major layout
        if self.has_bias:
            self.grads["bias"] = grad_output.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return grad_output @ self.params["weight"]

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.has_bias,
            "dtype": self.dtype.name,
        }
