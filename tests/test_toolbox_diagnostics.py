"""Diagnostics: each problem is found, measured in the documented units, and comes with its remedy."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm
from bnnet.toolbox import diagnose, format_report, precise_bn

F64 = np.float64


@pytest.fixture
def healthy(rng):
    """A float64 MLP with exact statistics for its data."""
    model = bnnet.mlp([8, 10, 10, 3], dtype=F64, rng=rng)
    x = rng.normal(0.5, 2.0, size=(600, 8))
    precise_bn(model, x)
    return model.eval(), x


def test_a_healthy_model_has_no_findings(healthy):
    model, x = healthy
    report = diagnose(model, x, batch_size=60)
    assert [d.name for d in report] == ["1", "4"]
    for d in report:
        assert d.mean_offset < 1e-10 and d.scale_error < 1e-10 and d.advice == []
        # the gap left is sampling noise, of the documented size sqrt(1.5 / m)
        assert d.expected_gap == pytest.approx(np.sqrt(1.5 / 60))
        assert 0.5 * d.expected_gap < d.train_eval_gap < 2 * d.expected_gap
    assert "no problems found" in format_report(report)


def test_stale_statistics_are_measured_in_standard_deviations_and_flagged(healthy):
    model, x = healthy
    layer = model[1]
    std = np.sqrt(layer.buffers["running_var"] * 599 / 600 + layer.eps)  # biased population std
    layer.buffers["running_mean"] += 0.4 * std  # every channel is off: the (RMS) gap shows it too
    layer.buffers["running_mean"][3] += 0.1 * std[3]
    layer.buffers["running_var"][5] *= 1.44  # the std is 20 % too large
    before = {name: value.copy() for name, value in model.named_buffers().items()}
    first = diagnose(model, x, batch_size=60)[0]
    assert first.mean_offset == pytest.approx(0.5, rel=1e-9) and first.mean_offset_channel == 3
    assert first.scale_error == pytest.approx(0.2, rel=1e-4) and first.scale_error_channel == 5
    assert first.train_eval_gap > 2 * first.expected_gap
    stale = "stale running statistics (mean off by 0.5 std in channel 3, scale off by 20% in channel 5)"
    assert stale in first.advice[0]
    assert "bnnet precise-bn MODEL" in first.advice[0]
    assert "train/eval gap" in first.advice[1] and "--freeze-bn-last-epochs" in first.advice[1]
    assert all(np.array_equal(before[name], value) for name, value in model.named_buffers().items())


def test_the_train_eval_gap_is_the_rms_difference_of_the_normalised_values(healthy, rng):
    model, x = healthy
    model[1].buffers["running_mean"][:] += rng.normal(size=10)
    d = diagnose(model, x, batch_size=20)[0]
    z = x[:20] @ model[0].params["weight"].T
    trained = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-5)
    evaluated = (z - model[1].buffers["running_mean"]) / np.sqrt(model[1].buffers["running_var"] + 1e-5)
    assert d.train_eval_gap == pytest.approx(np.sqrt(np.mean((trained - evaluated) ** 2)), rel=1e-12)
    assert d.batch_size == 20


def test_collapsed_channels_and_gammas_near_zero(healthy):
    model, x = healthy
    model[0].params["weight"][[2, 7]] = 0.0  # these channels no longer vary
    model[1].buffers["running_mean"][[2, 7]] = 0.0
    model[1].params["gamma"][4] = 0.003
    precise_bn(model, x)
    d = diagnose(model, x)[0]
    assert d.collapsed_channels == [2, 7] and d.small_gamma_channels == [4]
    text = format_report(diagnose(model, x))
    assert "layer 1: 2 channel(s) with collapsed variance (< eps): 2, 7." in text
    assert "layer 1: 1 channel(s) with |gamma| < 0.01: 4. They output beta whatever the input" in text


def test_diagnose_errors(healthy):
    model, x = healthy
    with pytest.raises(ValueError, match=r"diagnose expected batch_size >= 2 \(a batch of one has no variance\), "
                                         r"got 1"):
        diagnose(model, x, batch_size=1)
    with pytest.raises(ValueError, match=r"input_statistics expected a model with at least one BatchNorm layer"):
        diagnose(bnnet.mlp([8, 3], batch_norm=False), x)
