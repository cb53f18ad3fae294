"""Batch norm's conventions, pinned: closed-form references, invariants, a hand-computed EMA."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm

F64 = np.float64


def reference_batch_norm(x, gamma, beta, eps):
    """Closed form, written independently: move channels first, flatten the rest."""
    channels_first = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    mean = channels_first.sum(axis=1) / channels_first.shape[1]
    var = ((channels_first - mean[:, None]) ** 2).sum(axis=1) / channels_first.shape[1]
    normalized = (channels_first - mean[:, None]) / np.sqrt(var[:, None] + eps)
    out = gamma[:, None] * normalized + beta[:, None]
    moved_shape = (x.shape[1], x.shape[0], *x.shape[2:])
    return np.moveaxis(out.reshape(moved_shape), 0, 1), mean, var


@pytest.mark.parametrize("shape", [(16, 4), (5, 4, 3, 2), (6, 4, 7)])
def test_training_forward_matches_closed_form(rng, shape):
    layer = BatchNorm(4, eps=1e-3, dtype=F64)
    layer.params["gamma"][:] = rng.uniform(0.5, 2, 4)
    layer.params["beta"][:] = rng.normal(size=4)
    x = rng.normal(3.0, 2.0, size=shape)
    expected, _, _ = reference_batch_norm(x, layer.params["gamma"], layer.params["beta"], 1e-3)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_eval_forward_matches_closed_form(rng):
    layer = BatchNorm(3, dtype=F64)
    layer.buffers["running_mean"][:] = [1.0, -2.0, 0.5]
    layer.buffers["running_var"][:] = [4.0, 0.25, 1.0]
    layer.params["gamma"][:] = [2.0, 1.0, -1.0]
    layer.params["beta"][:] = [0.0, 1.0, 3.0]
    x = rng.normal(size=(5, 3))
    expected = layer.params["gamma"] * (x - layer.buffers["running_mean"]) / np.sqrt(
        layer.buffers["running_var"] + 1e-5) + layer.params["beta"]
    np.testing.assert_allclose(layer.eval().forward(x), expected, rtol=1e-14)


def test_training_output_has_zero_mean_unit_std_per_feature(rng):
    layer = BatchNorm(5, dtype=F64)
    y = layer.forward(rng.normal(7.0, 3.0, size=(64, 5)) * np.arange(1, 6))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    # The biased std is sqrt(var / (var + eps)), a hair below 1.
    np.testing.assert_allclose(y.std(axis=0), 1.0, rtol=1e-5)


def test_per_channel_statistics_for_images(rng):
    layer = BatchNorm(3, dtype=F64)
    y = layer.forward(rng.normal(2.0, 5.0, size=(4, 3, 6, 6)))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-4)


def two_batches():
    return np.array([[1.0], [3.0]]), np.array([[0.0], [4.0], [8.0]])


@pytest.mark.parametrize(
    "options, mean, var",
    [
        # batch 1: mean 2, biased var 1, unbiased 2; batch 2: mean 4, biased var 32/3, unbiased 16.
        ({}, 0.9 * 0.2 + 0.1 * 4, 0.9 * (0.9 * 1 + 0.1 * 2) + 0.1 * 16),  # 0.58, 2.59
        ({"unbiased_running_var": False}, 0.58, 0.9 * (0.9 + 0.1 * 1) + 0.1 * 32 / 3),
        ({"new_batch_weight": 0.5}, 0.5 * 1.0 + 0.5 * 4, 0.5 * 1.5 + 0.5 * 16),
        ({"running_average": "cumulative"}, (2 + 4) / 2, (2 + 16) / 2),
        # debiased: the plain EMA started from zero, divided by 1 - 0.9^2 = 0.19
        ({"running_average": "ema_debiased"}, 0.58 / 0.19, (0.9 * 0.2 + 0.1 * 16) / 0.19),
    ],
)
def test_two_step_running_statistics_by_hand(options, mean, var):
    layer = BatchNorm(1, dtype=F64, **options)
    for batch in two_batches():
        layer.forward(batch)
    assert layer.buffers["running_mean"][0] == pytest.approx(mean, rel=1e-14)
    assert layer.buffers["running_var"][0] == pytest.approx(var, rel=1e-14)
    assert int(layer.buffers["num_batches_tracked"]) == 2


def test_defaults_match_pytorch_conventions():
    layer = BatchNorm(2)
    assert (layer.eps, layer.new_batch_weight, layer.unbiased_running_var) == (1e-5, 0.1, True)
    np.testing.assert_array_equal(layer.buffers["running_mean"], 0.0)
    np.testing.assert_array_equal(layer.buffers["running_var"], 1.0)


def test_eval_mode_changes_nothing(rng):
    model = bnnet.mlp([4, 6, 6, 3], activation="sigmoid", rng=rng, dtype=F64)
    model.forward(rng.normal(size=(8, 4)))
    state_before = {k: v.copy() for k, v in {**model.named_buffers(), **model.parameters()}.items()}
    model.eval()
    for _ in range(5):
        model.forward(rng.normal(size=(8, 4)))
        model.predict(rng.normal(size=4))
    for name, value in {**model.named_buffers(), **model.parameters()}.items():
        np.testing.assert_array_equal(value, state_before[name], err_msg=name)  # bit for bit


def test_training_moves_running_statistics(rng):
    layer = BatchNorm(3, dtype=F64)
    layer.forward(rng.normal(5.0, 2.0, size=(10, 3)))
    assert np.all(layer.buffers["running_mean"] > 0.1)
    assert np.all(layer.buffers["running_var"] != 1.0)


def test_eval_equals_train_when_running_statistics_equal_the_last_batch(rng):
    """With weight 1 on the new batch the running stats become the last batch's; the stored
    variance is the unbiased m/(m-1) one, so eval matches train only after undoing that factor."""
    x = rng.normal(1.0, 2.0, size=(9, 4))
    biased = BatchNorm(4, new_batch_weight=1.0, unbiased_running_var=False, dtype=F64)
    train_out = biased.train().forward(x)
    np.testing.assert_allclose(biased.eval().forward(x), train_out, rtol=1e-12, atol=1e-12)

    unbiased = BatchNorm(4, new_batch_weight=1.0, dtype=F64)
    train_out = unbiased.forward(x)
    np.testing.assert_allclose(unbiased.buffers["running_var"], x.var(axis=0) * 9 / 8, rtol=1e-12)
    assert not np.allclose(unbiased.eval().forward(x), train_out, rtol=1e-6)
    unbiased.buffers["running_var"] *= 8 / 9
    np.testing.assert_allclose(unbiased.forward(x), train_out, rtol=1e-12, atol=1e-12)


def test_batch_statistics_in_eval_mode_move_nothing(rng):
    layer = BatchNorm(3, normalize_with="batch", dtype=F64)
    layer.forward(rng.normal(size=(6, 3)))
    before = layer.buffers["running_mean"].copy()
    x = rng.normal(4.0, 1.0, size=(6, 3))
    y = layer.eval().forward(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)  # normalised with the batch's own mean
    np.testing.assert_array_equal(layer.buffers["running_mean"], before)


def test_single_value_per_channel_is_refused_in_training_only(rng):
    layer = BatchNorm(3, dtype=F64)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\).*model\.eval\(\)"):
        layer.forward(rng.normal(size=(1, 3)))
    layer.eval().forward(rng.normal(size=(1, 3)))  # fine in eval mode
    layer.train().forward(rng.normal(size=(1, 3, 2, 2)))  # one image still has 4 values per channel


def test_single_example_prediction_equals_its_row_in_any_eval_batch(rng):
    model = bnnet.mlp([5, 8, 8, 3], activation="sigmoid", rng=rng, dtype=F64)
    for _ in range(3):
        model.forward(rng.normal(size=(16, 5)))
    example = rng.normal(size=5)
    alone = model.predict(example)
    assert alone.shape == (3,)
    for size in (2, 7, 33):
        batch = rng.normal(size=(size, 5))
        position = int(rng.integers(size))
        batch[position] = example
        np.testing.assert_allclose(model.predict(batch)[position], alone, rtol=1e-13, atol=1e-15)
    assert model.training  # predict restores the mode


def test_mlp_leaves_out_the_bias_before_batch_norm():
    model = bnnet.mlp([4, 3, 3, 2])
    names = sorted(model.parameters())
    assert "0.bias" not in names and "3.bias" not in names and "6.bias" in names
    assert not any(name.endswith("bias") for name in bnnet.mlp([4, 3, 2], batch_norm=True).parameters()
                   if name.startswith("0."))
    plain = bnnet.mlp([4, 3, 2], batch_norm=False)
    assert "0.bias" in plain.parameters()


def test_biased_linear_before_batch_norm_warns_and_its_gradient_is_zero(rng):
    with pytest.warns(bnnet.BiasBeforeBatchNormWarning, match="cancels the bias.*bias=False"):
        model = bnnet.Sequential(bnnet.Linear(3, 4, bias=True, rng=rng, dtype=F64), BatchNorm(4, dtype=F64))
    model.forward(rng.normal(size=(5, 3)))
    model.backward(rng.normal(size=(5, 4)))
    np.testing.assert_allclose(model.gradients()["0.bias"], 0.0, atol=1e-12)


def test_running_statistics_are_never_optimized(rng):
    model = bnnet.mlp([4, 5, 2], rng=rng, dtype=F64)
    assert set(model.parameters()) == {"0.weight", "1.gamma", "1.beta", "3.weight", "3.bias"}
    assert set(model.named_buffers()) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    model.forward(rng.normal(size=(6, 4)))
    model.backward(rng.normal(size=(6, 2)))
    assert set(model.gradients()) == set(model.parameters())
