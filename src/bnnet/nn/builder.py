"""Build the common network: (Linear -> BatchNorm -> activation) x depth, then a Linear."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .activation import ACTIVATIONS
from .batch_norm import BatchNorm
from .linear import Linear
from .module import Module
from .sequential import Sequential

DEFAULT_INIT = {"relu": "he", "tanh": "xavier", "sigmoid": "xavier"}


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    batch_norm: bool = True,
    init: str | None = None,
    init_std: float | None = None,
    rng: np.random.Generator | int | None = 0,
    dtype: Any = np.float32,
    batch_norm_options: dict[str, Any] | None = None,
) -> Sequential:
    """A feed-forward classifier or regressor.

    ``mlp([784, 100, 100, 100, 10], activation="sigmoid")`` gives
    Linear(784, 100, bias=False) -> BatchNorm(100) -> Sigmoid, three times,
    then Linear(100, 10) with a bias, producing logits. Every Linear that feeds
    a BatchNorm has no bias: the batch mean subtraction would cancel it.

    Args:
        sizes: input size, hidden sizes..., output size (at least two entries).
        activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
        batch_norm: insert a BatchNorm before each hidden activation.
        init: weight scheme (default: He for ReLU, Xavier for sigmoid and tanh).
        init_std: the std for ``init="small_gaussian"``.
        rng: a Generator or a seed for the weights.
        dtype: float32 (default) or float64.
        batch_norm_options: keyword arguments for every BatchNorm
            (e.g. ``{"new_batch_weight": 0.01}``).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp expected at least two positive sizes (input, ..., output), got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp expected activation in {tuple(ACTIVATIONS)}, got {activation!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    init = init or DEFAULT_INIT[activation]
    layers: list[Module] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(Linear(fan_in, fan_out, bias=not batch_norm, init=init, init_std=init_std, rng=rng, dtype=dtype))
        if batch_norm:
            layers.append(BatchNorm(fan_out, dtype=dtype, **(batch_norm_options or {})))
        layers.append(ACTIVATIONS[activation]())
    layers.append(Linear(sizes[-2], sizes[-1], bias=True, init=init, init_std=init_std, rng=rng, dtype=dtype))
    return Sequential(*layers)
