"""The paper's network (784-100-100-100-10, sigmoid, batch norm) in bnnet and its PyTorch twin.

The twin copies bnnet's weights, so both start from the same parameters and a
step of each can be compared value for value before either is timed.
"""
from __future__ import annotations

import numpy as np

import bnnet

SIZES = (784, 100, 100, 100, 10)
LEARNING_RATE = 0.1
MOMENTUM = 0.9


def bnnet_network(seed: int = 0) -> bnnet.Sequential:
    """``mlp(SIZES, activation="sigmoid")``: Linear(no bias) -> BatchNorm -> Sigmoid, x3, -> Linear."""
    return bnnet.mlp(list(SIZES), activation="sigmoid", rng=seed, dtype=np.float32)


def torch_twin(model: bnnet.Sequential, torch):
    """An ``nn.Sequential`` with the same layers and a copy of the bnnet model's parameters and buffers."""
    nn = torch.nn
    layers = []
    for layer in model.layers:
        if isinstance(layer, bnnet.Linear):
            twin = nn.Linear(layer.in_features, layer.out_features, bias=layer.has_bias)
            twin.weight.data = torch.tensor(layer.params["weight"])
            if layer.has_bias:
                twin.bias.data = torch.tensor(layer.params["bias"])
        elif isinstance(layer, bnnet.BatchNorm):
            twin = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.new_batch_weight)
            twin.weight.data = torch.tensor(layer.params["gamma"])
            twin.bias.data = torch.tensor(layer.params["beta"])
            twin.running_mean.data = torch.tensor(layer.buffers["running_mean"])
            twin.running_var.data = torch.tensor(layer.buffers["running_var"])
        elif isinstance(layer, bnnet.Sigmoid):
            twin = nn.Sigmoid()
        else:
            raise TypeError(f"torch_twin expected Linear, BatchNorm or Sigmoid layers, got {type(layer).__name__}")
        layers.append(twin)
    return nn.Sequential(*layers)


def bnnet_parameters(model: bnnet.Sequential) -> list[np.ndarray]:
    """The parameters in torch_twin's ``parameters()`` order: weight [bias] / gamma beta per layer."""
    ordered = []
    for layer in model.layers:
        for name in ("weight", "bias", "gamma", "beta"):
            if name in layer.params:
                ordered.append(layer.params[name])
    return ordered


def assert_close(ours, theirs, what: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Raise AssertionError naming ``what`` unless the two arrays agree to float32 rounding."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    scale = max(float(np.max(np.abs(theirs))), 1.0) if theirs.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale, err_msg=what)
