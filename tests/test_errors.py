"""Every user-facing error of the core says what was expected and what was received."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm, Linear


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: BatchNorm(0), "num_features >= 1, got 0"),
        (lambda: BatchNorm(3, eps=0), "eps > 0, got 0"),
        (lambda: BatchNorm(3, new_batch_weight=1.5), "0 < new_batch_weight <= 1.*new_batch_weight=0.01"),
        (lambda: BatchNorm(3, running_average="median"), "running_average in .*'median'"),
        (lambda: BatchNorm(3, normalize_with="both"), "normalize_with in .*'both'"),
        (lambda: BatchNorm(3, single_value_policy="skip"), "single_value_policy in .*'skip'"),
        (lambda: BatchNorm(3, ghost_batch_size=1), "ghost_batch_size >= 2 or None, got 1"),
        (lambda: BatchNorm(3, renorm=True, ghost_batch_size=4), "cannot be combined"),
        (lambda: BatchNorm(3, renorm=True, renorm_rmax=0.5), "renorm_rmax >= 1"),
        (lambda: Linear(0, 3), "positive sizes, got in_features=0"),
        (lambda: Linear(3, 2, init="orthogonal"), "unknown init 'orthogonal'"),
        (lambda: Linear(3, 2, init="small_gaussian"), "needs a positive init_std"),
        (lambda: Linear(3, 2, init="he", init_std=0.1), "only used with init='small_gaussian'"),
        (lambda: bnnet.mlp([4]), "at least two positive sizes"),
        (lambda: bnnet.mlp([4, 2], activation="gelu"), "activation in .*'gelu'"),
        (lambda: bnnet.Sequential(bnnet.Linear(2, 2), "relu"), "expected Module layers, got str at position 1"),
    ],
)
def test_construction_errors(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_shape_errors():
    with pytest.raises(ValueError, match=r"Linear expected input of shape \(N, 3\), got \(2, 4\)"):
        Linear(3, 2).forward(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm expected input of shape \(N, 3\) or \(N, 3, \*spatial\), got \(4, 2\)"):
        BatchNorm(3).forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm expected input of shape .* got \(4,\)"):
        BatchNorm(3).forward(np.zeros(4))


def test_loss_errors():
    loss = bnnet.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"labels in 0..2 \(the model has 3 outputs\), got labels from 0 to 3"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"integer class labels of shape \(2,\), got dtype float64"):
        loss.forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"logits of shape \(N, classes\), got \(3,\)"):
        loss.forward(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match=r"MeanSquaredError expected a target of shape \(2, 3\), got \(2, 2\)"):
        bnnet.MeanSquaredError().forward(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        bnnet.SoftmaxCrossEntropy().backward()


def test_backward_before_forward():
    for layer in (Linear(2, 2), BatchNorm(2), bnnet.Sigmoid()):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.zeros((2, 2)))


def test_losses_are_stable_for_huge_logits():
    loss = bnnet.SoftmaxCrossEntropy()
    value = loss.forward(np.array([[1000.0, 0.0, -1000.0]]), np.array([0]))
    assert value == 0.0 and np.all(np.isfinite(loss.backward()))
    assert loss.forward(np.array([[-1000.0, 1000.0]]), np.array([0])) == pytest.approx(2000.0)
