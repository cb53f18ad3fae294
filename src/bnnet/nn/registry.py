"""Rebuild a model's architecture from its JSON description (no code is executed)."""
from __future__ import annotations

from typing import Any

from .activation import ReLU, Sigmoid, Tanh
from .batch_norm import BatchNorm
from .linear import Linear
from .module import Module
from .sequential import Sequential

LAYER_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls for cls in (Linear, BatchNorm, Sigmoid, Tanh, ReLU, Sequential)
}


def register_layer(cls: type[Module]) -> type[Module]:
    """Make a layer class loadable from model files (use as a decorator)."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def build_layer(spec: dict[str, Any]) -> Module:
    """Construct a layer from ``{"type": name, **constructor arguments}``.

    Weights are zero-initialised; a loader overwrites them from the file.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"layer description must be a dict with a 'type', got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {name!r} in model file; known: {', '.join(sorted(LAYER_TYPES))}")
    if name == "Sequential":
        return Sequential(*(build_layer(layer) for layer in kwargs["layers"]))
    if name == "Linear":
        kwargs["init"] = "zeros"
    return LAYER_TYPES[name](**kwargs)
