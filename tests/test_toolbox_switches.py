"""Freezing switches, bias-corrected averages, the single-value policy and the trainer's batch-norm options."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm
from bnnet.training.config import TrainConfig
from bnnet.training.job import BatchSizeWarning, check_batch_size, freeze_statistics_from, run_training

from gradcheck import batch_norm_with_state as trained_layer, check_module, check_network_with_loss

F64 = np.float64



def buffers(layer) -> dict:
    return {name: value.copy() for name, value in layer.buffers.items()}


def same_buffers(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[name], b[name]) for name in a)


# -- the three switches -------------------------------------------------------
SWITCHES = {"normalize_with": "running", "update_running_stats": False, "train_affine": False}


@pytest.mark.parametrize("name, value", list(SWITCHES.items()))
def test_each_switch_survives_train_and_eval_and_leaves_the_others_alone(rng, name, value):
    layer = trained_layer(rng, **{name: value})
    model = bnnet.Sequential(layer)
    for mode in (model.train, model.eval, model.train, model.eval, model.train):
        mode()
        assert getattr(layer, name) == value
        for other, changed in SWITCHES.items():
            if other != name:
                assert getattr(layer, other) == BatchNorm(3).__dict__[other] != changed


def test_update_running_stats_false_freezes_statistics_but_still_normalises_with_the_batch(rng):
    layer = trained_layer(rng, update_running_stats=False)
    before = buffers(layer)
    y = layer.train().forward(rng.normal(4.0, 2.0, size=(16, 3)))
    assert same_buffers(before, buffers(layer))
    np.testing.assert_allclose((y - layer.params["beta"]).mean(axis=0), 0.0, atol=1e-12)  # batch statistics


def test_normalize_with_running_in_training_equals_eval_and_still_updates(rng):
    layer = trained_layer(rng, normalize_with="running")
    x = rng.normal(4.0, 2.0, size=(16, 3))
    expected = layer.eval().forward(x)
    before = buffers(layer)
    assert np.array_equal(layer.train().forward(x), expected)
    assert not np.array_equal(before["running_mean"], layer.buffers["running_mean"])  # updates on


def test_train_affine_false_gives_no_parameter_gradients_and_the_optimizer_skips_them(rng):
    model = bnnet.Sequential(bnnet.Linear(4, 3, bias=False, rng=rng, dtype=F64), trained_layer(rng, train_affine=False))
    gamma = model[1].params["gamma"].copy()
    optimizer = bnnet.SGD(model.parameters(), lr=0.5)
    model.forward(rng.normal(size=(8, 4)))
    model.backward(rng.standard_normal((8, 3)))
    assert set(model.gradients()) == {"0.weight"}
    optimizer.step(model.gradients())
    assert np.array_equal(model[1].params["gamma"], gamma)
    check_module(model[1], rng.normal(size=(8, 3)), rng)  # dx is still right (gamma still scales it)


@pytest.mark.parametrize("affine", [True, False])
def test_frozen_normalisation_gradients_in_training_mode(rng, affine):
    layer = BatchNorm(3, dtype=F64, affine=affine, normalize_with="running", update_running_stats=False)
    layer.buffers["running_mean"][:] = rng.normal(size=3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, 3)
    grads = check_module(layer, rng.normal(size=(6, 3)), rng)
    # with fixed statistics each example is scaled on its own: dx does not sum to zero
    assert np.all(np.abs(grads["x"].sum(axis=0)) > 1e-6)


def test_frozen_network_gradients_with_a_loss(rng):
    model = bnnet.mlp([5, 6, 6, 3], activation="tanh", dtype=F64, rng=rng,
                      batch_norm_options={"normalize_with": "running", "update_running_stats": False})
    for layer in model.modules():
        if isinstance(layer, BatchNorm):
            layer.buffers["running_mean"][:] = rng.normal(size=6)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, 6)
    check_network_with_loss(model.train(), bnnet.SoftmaxCrossEntropy(), rng.normal(size=(7, 5)),
                            rng.integers(0, 3, 7))


# -- bias-corrected running averages -------------------------------------------
def test_debiased_ema_equals_raw_ema_over_its_bias_at_every_step(rng):
    w = 0.1
    layer = BatchNorm(3, dtype=F64, new_batch_weight=w, running_average="ema_debiased")
    raw_mean, raw_var = np.zeros(3), np.zeros(3)
    for step in range(1, 8):
        x = rng.normal(rng.normal(size=3), rng.uniform(0.5, 3.0, 3), size=(10, 3))
        layer.forward(x)
        raw_mean = (1 - w) * raw_mean + w * x.mean(axis=0)
        raw_var = (1 - w) * raw_var + w * x.var(axis=0, ddof=1)
        bias = 1 - (1 - w) ** step
        np.testing.assert_allclose(layer.buffers["running_mean"], raw_mean / bias, rtol=1e-12)
        np.testing.assert_allclose(layer.buffers["running_var"], raw_var / bias, rtol=1e-12)


def test_debiased_ema_is_right_after_one_step_and_plain_ema_is_not(rng):
    x = rng.normal(5.0, 3.0, size=(20, 3))
    debiased = BatchNorm(3, dtype=F64, running_average="ema_debiased")
    plain = BatchNorm(3, dtype=F64)
    debiased.forward(x)
    plain.forward(x)
    np.testing.assert_allclose(debiased.buffers["running_mean"], x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(debiased.buffers["running_var"], x.var(axis=0, ddof=1), rtol=1e-14)
    np.testing.assert_allclose(plain.buffers["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-14)  # pulled to 0


# -- one value per channel ------------------------------------------------------
def test_single_value_policy_error_is_the_default_and_says_what_to_do(rng):
    layer = BatchNorm(3, dtype=F64)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel in training mode, got input of "
                                         r"shape \(1, 3\).*single_value_policy='running'"):
        layer.forward(rng.normal(size=(1, 3)))


def test_single_value_policy_running_normalises_with_running_statistics_and_updates_nothing(rng):
    layer = trained_layer(rng, single_value_policy="running")
    x = rng.normal(size=(1, 3))
    expected = layer.eval().forward(x)
    before = buffers(layer)
    assert np.array_equal(layer.train().forward(x), expected)
    assert same_buffers(before, buffers(layer))
    check_module(layer, x, rng)  # the fixed-statistics gradient
    assert same_buffers(before, buffers(layer))
    # a single example with several spatial positions has more than one value: batch statistics as usual
    y = BatchNorm(3, dtype=F64, single_value_policy="running").forward(rng.normal(size=(1, 3, 5)))
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0.0, atol=1e-12)


# -- the trainer ----------------------------------------------------------------
def quiet_config(tmp_path, **overrides) -> TrainConfig:
    settings = dict(dataset="digits", limit_train=300, hidden="16,16", epochs=2, lr_schedule="constant",
                    val_fraction=0.0, out=str(tmp_path / "model.npz"))
    return TrainConfig(**{**settings, **overrides})


def running(model) -> list[np.ndarray]:
    return [value.copy() for name, value in model.named_buffers().items() if "running" in name]


def test_freeze_last_epochs_keeps_the_statistics_of_the_end_of_the_unfrozen_epochs(tmp_path):
    frozen = run_training(quiet_config(tmp_path, freeze_bn_last_epochs=1), log=lambda line: None).model
    # Same seeds and a constant learning rate: epoch 1 of the two-epoch run is this run.
    one_epoch = run_training(quiet_config(tmp_path, epochs=1), log=lambda line: None).model
    unfrozen = run_training(quiet_config(tmp_path), log=lambda line: None).model
    assert all(np.array_equal(a, b) for a, b in zip(running(frozen), running(one_epoch)))
    assert not np.array_equal(frozen[0].params["weight"], one_epoch[0].params["weight"])  # epoch 2 trained
    assert not all(np.array_equal(a, b) for a, b in zip(running(frozen), running(unfrozen)))
    switches = {(layer.normalize_with, layer.update_running_stats) for layer in frozen.modules()
                if isinstance(layer, BatchNorm)}
    assert switches == {("auto", True)}  # the saved model has the default switches back


def test_freeze_hook_switches_every_batch_norm_from_the_given_epoch(rng):
    model = bnnet.mlp([4, 5, 5, 2], dtype=F64, rng=rng)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    seen = []

    def record(step: int, model) -> None:
        seen.append((step, running(model)[0].copy(), model[1].normalize_with))

    bnnet.fit(model, bnnet.SoftmaxCrossEntropy(), bnnet.SGD(model.parameters(), lr=0.1), x, y, epochs=3,
              batch_size=20, rng=rng, on_step=record, on_epoch_start=freeze_statistics_from(1), log=None)
    assert [mode for _, _, mode in seen] == ["auto"] * 2 + ["running"] * 4
    assert not np.array_equal(seen[0][1], seen[1][1])
    assert all(np.array_equal(seen[1][1], later) for _, later, _ in seen[2:])


@pytest.mark.parametrize("overrides, match", [
    ({"batch_size": 8}, r"batch norm will normalise over batches of 8 examples \(batch_size=8 on 300 training "
                        r"examples\), fewer than 16.*Remedies: --batch-size 32 or more"),
    ({"ghost_batch_size": 4}, r"batches of 4 examples \(ghost_batch_size=4\).*a larger --ghost-batch-size"),
    ({"limit_train": 10}, r"batches of 10 examples \(batch_size=60 on 10 training examples\)"),
])
def test_small_batches_warn_with_the_reason_and_the_remedy(tmp_path, overrides, match):
    config = quiet_config(tmp_path, **overrides)
    with pytest.warns(BatchSizeWarning, match=match):
        check_batch_size(config, min(300, config.limit_train))


@pytest.mark.parametrize("overrides", [{}, {"batch_size": 16}, {"batch_size": 8, "renorm": True},
                                       {"batch_size": 8, "batch_norm": False}, {"batch_size": 8, "optimizer": "gd"},
                                       {"ghost_batch_size": 100}])
def test_no_batch_size_warning_for_the_defaults_or_when_it_does_not_apply(tmp_path, overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_batch_size(quiet_config(tmp_path, **overrides), 300)


def test_the_trainer_warns_for_a_small_batch_and_not_for_the_default(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_training(quiet_config(tmp_path, epochs=1), log=lambda line: None)  # batch 60
    with pytest.warns(BatchSizeWarning):
        run_training(quiet_config(tmp_path, epochs=1, batch_size=4), log=lambda line: None)
