"""A chain of layers: forward in order, backward in reverse."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import fast
from .batch_norm import BatchNorm
from .linear import Linear
from .module import Module


class BiasBeforeBatchNormWarning(UserWarning):
    """A Linear with a bias feeds a BatchNorm, which cancels the bias."""


class Sequential(Module):
    """Layers applied one after another.

    Parameters, gradients and buffers are named ``"<index>.<name>"``, for
    example ``"0.weight"`` and ``"1.running_mean"``.

    Warns:
        BiasBeforeBatchNormWarning: a Linear with a bias directly feeds a
            BatchNorm. Batch norm subtracts the per-feature batch mean, which
            removes any constant added before it, so the bias never changes the
            output and its gradient is zero: build that Linear with bias=False.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential expected Module layers, got {type(layer).__name__} at position {index}")
        self.layers = list(layers)
        for index in range(len(self.layers) - 1):
            first, second = self.layers[index], self.layers[index + 1]
            if isinstance(first, Linear) and first.has_bias and isinstance(second, BatchNorm):
                warnings.warn(
                    f"layer {index} (Linear) has a bias but feeds layer {index + 1} (BatchNorm): "
                    f"batch norm subtracts the batch mean, which cancels the bias, so it never "
                    f"changes the output and gets a zero gradient. Build the Linear with bias=False.",
                    BiasBeforeBatchNormWarning,
                    stacklevel=2,
                )

    def children(self) -> list[Module]:
        return self.layers

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def input_features(self) -> int | None:
        """Size of one input example if the first layer is a Linear, else None."""
        first = self.layers[0] if self.layers else None
        return first.in_features if isinstance(first, Linear) else None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs in eval mode (running statistics), restoring the previous mode.

        A single example may be given without a batch axis (a 1-D input for a
        model whose first layer is a Linear); its output then has no batch axis
        either, and equals that example's row of any eval batch it is part of.
        """
        kernels = fast.ops()  # the fast engine runs a covered chain in a few calls (bnnet.fast.inference)
        y = None if kernels is None else kernels.predict(self, x)
        if y is not None:
            return y
        x = np.asarray(x)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        was_training = self.training
        self.eval()
        try:
            y = self.forward(x.astype(self.dtype(), copy=False))
        finally:
            self.train(was_training)
        return y[0] if single else y

    def dtype(self) -> np.dtype:
        """The floating type of the parameters (float32 unless built otherwise)."""
        for value in self.parameters().values():
            return value.dtype
        return np.dtype(np.float64)

    def config(self) -> dict[str, Any]:
        return {"layers": [{"type": type(layer).__name__, **layer.config()} for layer in self.layers]}

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
