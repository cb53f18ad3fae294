"""Walk a model as the flat chain of layers its forward pass runs, by dotted name.

The toolbox needs to stop a forward pass at a given BatchNorm, read a layer's
input, or find the Linear in front of a BatchNorm. A :class:`~bnnet.nn.Sequential`
(nested or not) is exactly a chain of its leaf layers, so every tool works on
that chain. Names are the prefixes of :meth:`Module.named_buffers`: layer 1 of
a Sequential is ``"1"`` (its buffers are ``"1.running_mean"``...), layer 0 of a
nested Sequential at position 2 is ``"2.0"``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from ..nn.batch_norm import BatchNorm
from ..nn.module import Module
from ..nn.sequential import Sequential


def flat_layers(model: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """The leaf layers of ``model`` in forward order, as ``(dotted name, layer)``.

    Raises:
        TypeError: a container other than Sequential, whose forward order is unknown.
    """
    if isinstance(model, Sequential):
        found: list[tuple[str, Module]] = []
        for index, layer in enumerate(model.layers):
            found.extend(flat_layers(layer, f"{prefix}{index}."))
        return found
    if model.children():
        raise TypeError(
            f"expected a Sequential of layers or a single layer, got {type(model).__name__} with "
            f"{len(model.children())} children: the toolbox only knows the forward order of a Sequential"
        )
    return [(prefix.rstrip("."), model)]


def batch_norm_layers(model: Module) -> list[tuple[int, str, BatchNorm]]:
    """Every BatchNorm as ``(position in the flat chain, dotted name, layer)``, in forward order."""
    return [(position, name, layer) for position, (name, layer) in enumerate(flat_layers(model))
            if isinstance(layer, BatchNorm)]


def require_batch_norm(model: Module, what: str) -> list[tuple[int, str, BatchNorm]]:
    """:func:`batch_norm_layers`, raising when there are none (``what`` names the tool)."""
    found = batch_norm_layers(model)
    if not found:
        raise ValueError(
            f"{what} expected a model with at least one BatchNorm layer, got one with none "
            f"({len(flat_layers(model))} layers): there are no statistics to compute"
        )
    return found


def model_dtype(model: Module) -> np.dtype:
    """The floating type of the model's parameters (of its buffers if it has none)."""
    for value in model.parameters().values():
        return value.dtype
    for value in model.named_buffers().values():
        if np.issubdtype(value.dtype, np.floating):
            return value.dtype
    return np.dtype(np.float64)


def run_chain(layers: list[tuple[str, Module]], x: np.ndarray) -> np.ndarray:
    """Apply the layers in order (their own modes decide train or eval behaviour)."""
    for _, layer in layers:
        x = layer.forward(x)
    return x


def batches(num_examples: int, batch_size: int, max_batches: int | None) -> list[slice]:
    """Consecutive slices of at most ``batch_size`` examples, the first ``max_batches`` of them.

    Raises:
        ValueError: no examples, ``batch_size < 1`` or ``max_batches < 1``.
    """
    if num_examples < 1:
        raise ValueError("expected at least one example to compute statistics from, got an empty array")
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"expected max_batches >= 1 or None (all batches), got {max_batches}")
    slices = [slice(start, min(start + batch_size, num_examples)) for start in range(0, num_examples, batch_size)]
    return slices if max_batches is None else slices[:max_batches]


@contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """Put every module in eval mode; afterwards restore each one's own mode.

    Restoring module by module (not ``model.train(was)``) keeps a mix of modes,
    for example one layer left in eval inside a model that is training.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def statistics_restored(model: Module) -> Iterator[None]:
    """Every BatchNorm's buffers (running statistics, counter) are put back as they were on exit."""
    saved = [(layer, {name: value.copy() for name, value in layer.buffers.items()})
             for _, _, layer in batch_norm_layers(model)]
    try:
        yield
    finally:
        for layer, values in saved:
            for name, value in values.items():
                layer.buffers[name][...] = value
