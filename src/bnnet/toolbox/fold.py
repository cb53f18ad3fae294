"""Fold eval-mode batch norm into the Linear before it, for deployment (Algorithm 2, step 11).

In eval mode a BatchNorm is a fixed per-feature affine map, so a Linear
followed by one is a single Linear. With ``s = gamma / sqrt(running_var + eps)``::

    BN(W x + b) = s * (W x + b - running_mean) + beta
                = (s[:, None] * W) x + (s * (b - running_mean) + beta)
                =  W' x + b'

(gamma = 1, beta = 0 without an affine transform; b = 0 for a Linear without
bias). W' and b' are computed in float64 and stored in the layer's dtype. The
folded model has no BatchNorm left: it skips one pass over the activations
per layer and has no mode, and it saves and loads like any other model.
"""
from __future__ import annotations

import numpy as np

from ..nn.batch_norm import BatchNorm
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.registry import build_layer
from ..nn.sequential import Sequential
from .walk import flat_layers


def fold_batch_norm(model: Module) -> Sequential:
    """A new model in which every BatchNorm is folded into the Linear in front of it.

    The original model is not changed. The result's outputs equal the
    original's eval-mode outputs up to rounding (float64: about 1e-15 relative).

    Args:
        model: a Sequential (nested ones are flattened) in eval mode.

    Returns:
        A flat Sequential of Linear layers (each with a bias) and the
        original's other layers (copied), in eval mode.

    Raises:
        ValueError: a BatchNorm in training mode, one that normalises with batch
            statistics in eval (``normalize_with="batch"``), or one without a
            Linear directly before it.

    Example:
        >>> import bnnet
        >>> model = bnnet.mlp([4, 8, 3], dtype=np.float64).eval()
        >>> folded = fold_batch_norm(model)
        >>> [type(layer).__name__ for layer in folded]
        ['Linear', 'ReLU', 'Linear']
        >>> x = np.random.default_rng(0).normal(size=(5, 4))
        >>> bool(np.allclose(folded.forward(x), model.forward(x), rtol=1e-12))
        True
    """
    layers = flat_layers(model)
    for position, (name, layer) in enumerate(layers):
        if isinstance(layer, BatchNorm):
            _check_foldable(layers, position, name, layer)
    folded: list[Module] = []
    position = 0
    while position < len(layers):
        layer = layers[position][1]
        following = layers[position + 1][1] if position + 1 < len(layers) else None
        if isinstance(layer, Linear) and isinstance(following, BatchNorm):
            folded.append(fold_pair(layer, following))
            position += 2
        else:
            folded.append(_copy(layer))
            position += 1
    return Sequential(*folded).eval()


def fold_pair(linear: Linear, batch_norm: BatchNorm) -> Linear:
    """The single Linear equal to ``batch_norm(linear(x))`` with the running statistics.

    Raises:
        ValueError: the sizes do not match, or the BatchNorm is not foldable (see above).
    """
    if linear.out_features != batch_norm.num_features:
        raise ValueError(
            f"fold expected the BatchNorm to have the Linear's {linear.out_features} output features, "
            f"got num_features={batch_norm.num_features}"
        )
    weight = linear.params["weight"].astype(np.float64)
    bias = linear.params["bias"].astype(np.float64) if linear.has_bias else np.zeros(linear.out_features)
    mean = batch_norm.buffers["running_mean"].astype(np.float64)
    inv_std = 1.0 / np.sqrt(batch_norm.buffers["running_var"].astype(np.float64) + batch_norm.eps)
    gamma = batch_norm.params["gamma"].astype(np.float64) if batch_norm.affine else np.ones_like(mean)
    beta = batch_norm.params["beta"].astype(np.float64) if batch_norm.affine else np.zeros_like(mean)
    scale = gamma * inv_std
    result = Linear(linear.in_features, linear.out_features, bias=True, init="zeros", dtype=linear.dtype)
    result.params["weight"][...] = scale[:, None] * weight
    result.params["bias"][...] = scale * (bias - mean) + beta
    return result.eval()


def _check_foldable(layers: list[tuple[str, Module]], position: int, name: str, layer: BatchNorm) -> None:
    if layer.training:
        raise ValueError(
            f"fold expected every BatchNorm in eval mode, got layer {name} in training mode: in training "
            f"it normalises each batch with that batch's own statistics, which no fixed weight can "
            f"reproduce. Call model.eval() before folding (the running statistics are then used)."
        )
    if layer.uses_batch_statistics():
        raise ValueError(
            f"fold expected BatchNorm layer {name} to normalise with its running statistics in eval mode, "
            f"got normalize_with={layer.normalize_with!r}, which uses each batch's own statistics. Set "
            f"layer.normalize_with = 'auto' (or 'running') before folding."
        )
    before = layers[position - 1] if position > 0 else None
    if before is None or not isinstance(before[1], Linear):
        what = "nothing (it is the first layer)" if before is None else \
            f"layer {before[0]} ({type(before[1]).__name__})"
        raise ValueError(
            f"fold expected a Linear directly before BatchNorm layer {name}, got {what}: only "
            f"Linear -> BatchNorm pairs can be folded into one Linear. Keep this model unfolded, or "
            f"rebuild it with each BatchNorm right after a Linear (as bnnet.mlp does)."
        )


def _copy(layer: Module) -> Module:
    """An independent copy of a layer (architecture from its config, then its arrays)."""
    copy = build_layer({"type": type(layer).__name__, **layer.config()})
    for name, value in layer.params.items():
        copy.params[name][...] = value
    for name, value in layer.buffers.items():
        copy.buffers[name][...] = value
    return copy
