"""Hand-written backward passes against float64 central differences, in train and eval mode."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm, Linear, ReLU, Sigmoid, Tanh

from gradcheck import check_module, check_network_with_loss

F64 = np.float64


def trained_batch_norm(num_features: int, rng, shape, **options) -> BatchNorm:
    """A BatchNorm with non-trivial gamma, beta and running statistics."""
    layer = BatchNorm(num_features, dtype=F64, **options)
    if layer.affine:
        layer.params["gamma"][:] = rng.uniform(0.5, 2.0, num_features)
        layer.params["beta"][:] = rng.normal(size=num_features)
    for _ in range(3):
        layer.forward(rng.normal(1.0, 2.0, size=shape))
    return layer


@pytest.mark.parametrize("bias", [True, False])
def test_linear(rng, bias):
    layer = Linear(5, 4, bias=bias, rng=rng, dtype=F64)
    if bias:
        layer.params["bias"][:] = rng.normal(size=4)
    check_module(layer, rng.normal(size=(6, 5)), rng)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 3), (3, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training(rng, shape, affine):
    layer = trained_batch_norm(3, rng, shape, affine=affine)
    grads = check_module(layer, rng.normal(2.0, 3.0, size=shape), rng)
    # dx of training-mode batch norm sums to zero per channel: the mean subtraction
    # makes the output invariant to adding a constant to a channel.
    axes = (0, *range(2, len(shape)))
    np.testing.assert_allclose(grads["x"].sum(axis=axes), 0.0, atol=1e-10)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 3)])
def test_batch_norm_eval(rng, shape):
    layer = trained_batch_norm(3, rng, shape).eval()
    check_module(layer, rng.normal(size=shape), rng)


def test_batch_norm_batch_statistics_in_eval(rng):
    layer = trained_batch_norm(3, rng, (6, 3), normalize_with="batch").eval()
    check_module(layer, rng.normal(size=(6, 3)), rng)


def test_batch_norm_running_statistics_in_training(rng):
    layer = trained_batch_norm(3, rng, (6, 3), normalize_with="running", update_running_stats=False)
    check_module(layer, rng.normal(size=(6, 3)), rng)


@pytest.mark.parametrize("activation", [Sigmoid, Tanh, ReLU])
def test_activations(rng, activation):
    x = rng.normal(size=(5, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink out of the difference quotient
    check_module(activation(), x, rng)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_whole_network_with_cross_entropy(rng, activation, batch_norm):
    model = bnnet.mlp([6, 5, 4, 3], activation=activation, batch_norm=batch_norm, rng=rng, dtype=F64)
    x = rng.normal(size=(7, 6))
    check_network_with_loss(model, bnnet.SoftmaxCrossEntropy(), x, rng.integers(0, 3, size=7))


def test_whole_network_with_mse_in_eval_mode(rng):
    model = bnnet.mlp([4, 5, 2], activation="tanh", rng=rng, dtype=F64)
    model.forward(rng.normal(size=(10, 4)))  # move the running statistics off 0 and 1
    model.eval()
    check_network_with_loss(model, bnnet.MeanSquaredError(), rng.normal(size=(6, 4)), rng.normal(size=(6, 2)))
