"""Folding eval-mode batch norm into the Linear before it: equal outputs, refusals, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm, BiasBeforeBatchNormWarning
from bnnet.toolbox import fold_batch_norm

F64 = np.float64


def randomize(model, rng):
    """Non-trivial gamma, beta and running statistics everywhere (variances far from 1)."""
    for layer in model.modules():
        if isinstance(layer, BatchNorm):
            c = layer.num_features
            if layer.affine:
                layer.params["gamma"][:] = rng.uniform(-2.0, 2.0, c)
                layer.params["beta"][:] = rng.normal(size=c)
            layer.buffers["running_mean"][:] = rng.normal(0.0, 3.0, c)
            layer.buffers["running_var"][:] = rng.uniform(0.01, 50.0, c)
    return model.eval()


def relative_difference(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("affine", [True, False])
def test_folded_outputs_equal_the_eval_outputs_within_1e_10_relative(rng, activation, affine):
    model = randomize(bnnet.mlp([10, 16, 12, 8, 4], activation=activation, dtype=F64, rng=rng,
                                batch_norm_options={"affine": affine, "eps": 1e-3}), rng)
    folded = fold_batch_norm(model)
    names = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    assert [type(layer).__name__ for layer in folded] == ["Linear", names[activation]] * 3 + ["Linear"]
    x = rng.normal(0.0, 2.0, size=(64, 10))
    assert relative_difference(model.forward(x), folded.forward(x)) < 1e-10
    assert np.allclose(model.predict(x[3]), folded.predict(x[3]), rtol=1e-10, atol=1e-12)  # one example


def test_a_linear_with_a_bias_before_batch_norm_folds_its_bias_in_too(rng):
    with pytest.warns(BiasBeforeBatchNormWarning):
        model = bnnet.Sequential(bnnet.Linear(5, 4, rng=rng, dtype=F64), BatchNorm(4, dtype=F64), bnnet.ReLU(),
                                 bnnet.Linear(4, 2, rng=rng, dtype=F64))
    model[0].params["bias"][:] = rng.normal(size=4)
    randomize(model, rng)
    x = rng.normal(size=(20, 5))
    assert relative_difference(model.forward(x), fold_batch_norm(model).forward(x)) < 1e-10


def test_the_fold_by_hand(rng):
    linear = bnnet.Linear(2, 2, bias=False, dtype=F64, rng=rng)
    linear.params["weight"][:] = [[1.0, 2.0], [3.0, -1.0]]
    bn = BatchNorm(2, dtype=F64, eps=1e-300)  # eps negligible: the numbers below are exact
    bn.params["gamma"][:], bn.params["beta"][:] = [2.0, -1.0], [0.5, 0.0]
    bn.buffers["running_mean"][:], bn.buffers["running_var"][:] = [1.0, -2.0], [4.0, 0.25]
    folded = fold_batch_norm(bnnet.Sequential(linear, bn).eval())[0]
    # s = gamma / sqrt(var) = [1, -2]; W' = s W; b' = -s mean + beta
    np.testing.assert_allclose(folded.params["weight"], [[1.0, 2.0], [-6.0, 2.0]])
    np.testing.assert_allclose(folded.params["bias"], [-0.5, -4.0])


def test_float32_folding_is_accurate_to_float32_rounding(rng):
    model = randomize(bnnet.mlp([10, 16, 16, 4], rng=rng), rng)
    x = rng.normal(size=(50, 10)).astype(np.float32)
    folded = fold_batch_norm(model)
    assert folded[0].params["weight"].dtype == np.float32
    assert relative_difference(model.forward(x).astype(F64), folded.forward(x)) < 1e-5


def test_the_original_is_unchanged_and_the_folded_model_is_independent(rng):
    model = randomize(bnnet.mlp([6, 5, 3], dtype=F64, rng=rng), rng)
    before = {name: value.copy() for name, value in {**model.parameters(), **model.named_buffers()}.items()}
    folded = fold_batch_norm(model)
    folded[0].params["weight"][:] = 0.0
    assert all(np.array_equal(before[name], value)
               for name, value in {**model.parameters(), **model.named_buffers()}.items())
    assert not any(isinstance(layer, BatchNorm) for layer in folded.modules()) and not folded.training


def test_nested_sequentials_are_flattened(rng):
    model = bnnet.Sequential(randomize(bnnet.mlp([6, 5, 4], dtype=F64, rng=rng), rng), bnnet.Tanh())
    x = rng.normal(size=(9, 6))
    folded = fold_batch_norm(model.eval())
    assert len(folded) == 4
    assert relative_difference(model.forward(x), folded.forward(x)) < 1e-10


def test_a_folded_model_saves_and_loads(rng, tmp_path):
    model = randomize(bnnet.mlp([6, 5, 5, 3], dtype=F64, rng=rng), rng)
    folded = fold_batch_norm(model)
    bnnet.save(tmp_path / "folded.npz", folded)
    loaded = bnnet.load(tmp_path / "folded.npz").model
    x = rng.normal(size=(7, 6))
    assert np.array_equal(loaded.forward(x), folded.forward(x))


def test_training_mode_is_refused(rng):
    model = randomize(bnnet.mlp([6, 5, 3], dtype=F64, rng=rng), rng).train()
    with pytest.raises(ValueError, match=r"fold expected every BatchNorm in eval mode, got layer 1 in training "
                                         r"mode.*Call model.eval\(\) before folding"):
        fold_batch_norm(model)


def test_batch_statistics_in_eval_are_refused(rng):
    model = randomize(bnnet.mlp([6, 5, 3], dtype=F64, rng=rng, batch_norm_options={"normalize_with": "batch"}), rng)
    with pytest.raises(ValueError, match=r"expected BatchNorm layer 1 to normalise with its running statistics in "
                                         r"eval mode, got normalize_with='batch'"):
        fold_batch_norm(model)


@pytest.mark.parametrize("layers, match", [
    (lambda: [BatchNorm(4, dtype=F64), bnnet.Linear(4, 2, dtype=F64)],
     r"fold expected a Linear directly before BatchNorm layer 0, got nothing \(it is the first layer\)"),
    (lambda: [bnnet.Linear(3, 4, bias=False, dtype=F64), bnnet.ReLU(), BatchNorm(4, dtype=F64)],
     r"fold expected a Linear directly before BatchNorm layer 2, got layer 1 \(ReLU\): only Linear -> BatchNorm "
     r"pairs can be folded"),
    (lambda: [bnnet.Linear(3, 4, bias=False, dtype=F64), BatchNorm(4, dtype=F64), BatchNorm(4, dtype=F64)],
     r"got layer 1 \(BatchNorm\)"),
])
def test_a_batch_norm_without_a_linear_before_it_is_refused(layers, match):
    model = bnnet.Sequential(*layers()).eval()
    with pytest.raises(ValueError, match=match):
        fold_batch_norm(model)
