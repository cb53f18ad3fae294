"""The training loop, schedules and the train job's configuration."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.schedules import LRSchedule
from bnnet.training import batch_slices, fit
from bnnet.training.config import TrainConfig


def blobs(rng, n=120, classes=3, features=4):
    centers = rng.normal(0, 3, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return (centers[y] + rng.normal(size=(n, features))).astype(np.float32), y


@pytest.mark.parametrize("n, size", [(10, 3), (7, 3), (9, 4), (5, 5), (5, 8), (61, 60)])
def test_batches_cover_everything_and_never_hold_one_example(n, size):
    slices = batch_slices(n, size)
    covered = np.concatenate([np.arange(n)[s] for s in slices])
    np.testing.assert_array_equal(covered, np.arange(n))
    assert all(s.stop - s.start >= 2 for s in slices)


def test_fit_learns_and_records_history(rng):
    x, y = blobs(rng)
    model = bnnet.mlp([4, 16, 3], rng=rng)
    history = fit(model, bnnet.SoftmaxCrossEntropy(), bnnet.Adam(model.parameters(), lr=0.01), x, y, epochs=5,
                  batch_size=16, rng=rng, validation=(x[:30], y[:30]), log=None)
    assert len(history.epochs) == 5 and history.steps == 5 * 8 and history.stopped is None
    assert history.epochs[-1].val_accuracy > 0.9
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert model.training


def test_fit_stops_on_a_non_finite_loss_with_a_clear_message(rng):
    x, y = blobs(rng)
    model = bnnet.mlp([4, 16, 3], batch_norm=False, rng=rng)
    messages = []
    history = fit(model, bnnet.SoftmaxCrossEntropy(), bnnet.SGD(model.parameters(), lr=1e12), x * 1e3, y,
                  epochs=3, batch_size=16, rng=rng, log=messages.append)
    assert history.stopped and "lower the learning rate" in history.stopped
    assert messages[-1] == history.stopped


def test_max_steps_and_step_callback(rng):
    x, y = blobs(rng)
    model = bnnet.mlp([4, 8, 3], rng=rng)
    seen = []
    history = fit(model, bnnet.SoftmaxCrossEntropy(), bnnet.SGD(model.parameters(), lr=0.1), x, y, epochs=10,
                  batch_size=20, rng=rng, max_steps=13, on_step=lambda step, m: seen.append(step), log=None)
    assert history.steps == 13 and seen == list(range(1, 14))


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (LRSchedule("constant"), [1.0, 1.0, 1.0]),
        (LRSchedule("step", step_epochs=2, gamma=0.5), [1.0, 0.5, 0.25]),  # epochs 0, 2, 4
        (LRSchedule("cosine"), [1.0, 0.5, 0.0]),
    ],
)
def test_schedules(schedule, expected):
    steps_per_epoch, total = 10, 40
    factors = [schedule.factor(step, steps_per_epoch, total) for step in (0, 20, 40)]
    np.testing.assert_allclose(factors, expected, atol=1e-12)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown config keys \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="activation expected one of sigmoid, tanh, relu, got 'gelu'"):
        TrainConfig(activation="gelu").validate()
    with pytest.raises(ValueError, match="--hidden expected comma-separated integers"):
        TrainConfig(hidden="100,abc").validate()
    with pytest.raises(ValueError, match="epochs expected >= 1, got 0"):
        TrainConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="unknown lr schedule 'linear'"):
        LRSchedule("linear")
