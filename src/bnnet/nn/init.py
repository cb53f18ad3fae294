"""Weight initialisation schemes for a Linear weight of shape (out_features, in_features).

- ``he`` (Kaiming normal, He et al. 2015): N(0, 2 / fan_in); keeps the
  activation variance through ReLU layers.
- ``xavier`` (Glorot normal, Glorot & Bengio 2010): N(0, 2 / (fan_in + fan_out));
  for tanh and sigmoid.
- ``lecun``: N(0, 1 / fan_in).
- ``small_gaussian``: N(0, std^2) with a std the caller gives; the original
  batch-norm paper's MNIST experiment uses "small random Gaussian values".
- ``uniform``: PyTorch's nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
- ``zeros``: for rebuilding a layer whose values are loaded from a file.
"""
from __future__ import annotations

import numpy as np

INIT_SCHEMES = ("he", "xavier", "lecun", "small_gaussian", "uniform", "zeros")


def init_weight(
    scheme: str,
    out_features: int,
    in_features: int,
    rng: np.random.Generator,
    dtype: np.dtype,
    std: float | None = None,
) -> np.ndarray:
    """Draw a weight matrix of shape (out_features, in_features) with the named scheme."""
    shape = (out_features, in_features)
    if scheme == "small_gaussian":
        if std is None or std <= 0:
            raise ValueError(f"init='small_gaussian' needs a positive init_std, got {std!r}")
        return (rng.standard_normal(shape) * std).astype(dtype)
    if std is not None:
        raise ValueError(f"init_std is only used with init='small_gaussian', got init={scheme!r}")
    if scheme == "he":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / in_features)).astype(dtype)
    if scheme == "xavier":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / (in_features + out_features))).astype(dtype)
    if scheme == "lecun":
        return (rng.standard_normal(shape) * np.sqrt(1.0 / in_features)).astype(dtype)
    if scheme == "uniform":
        bound = 1.0 / np.sqrt(in_features)
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if scheme == "zeros":
        return np.zeros(shape, dtype=dtype)
    raise ValueError(f"unknown init {scheme!r}; expected one of {', '.join(INIT_SCHEMES)}")
