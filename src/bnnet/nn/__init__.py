"""Layers with hand-written forward and backward passes."""
from .activation import ReLU, Sigmoid, Tanh
from .batch_norm import BatchNorm
from .builder import mlp
from .linear import Linear
from .module import Module
from .registry import build_layer, register_layer
from .sequential import BiasBeforeBatchNormWarning, Sequential

__all__ = [
    "BatchNorm", "BiasBeforeBatchNormWarning", "Linear", "Module", "ReLU", "Sequential",
    "Sigmoid", "Tanh", "build_layer", "mlp", "register_layer",
]
