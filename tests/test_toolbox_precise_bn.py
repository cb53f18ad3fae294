"""Precise batch norm: exact pooled statistics, whatever the batching; the model is left as it was."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm
from bnnet.toolbox import PooledMoments, input_statistics, population_statistics, precise_bn

F64 = np.float64


def trained_mlp(rng, sizes=(6, 8, 7, 5, 3), **bn_options):
    """A float64 MLP with three BatchNorms whose running statistics are deliberately off."""
    model = bnnet.mlp(list(sizes), activation="tanh", dtype=F64, rng=rng, batch_norm_options=bn_options)
    for layer in model.modules():
        if isinstance(layer, BatchNorm):
            layer.params["gamma"][:] = rng.uniform(0.5, 2.0, layer.num_features)
            layer.params["beta"][:] = rng.normal(size=layer.num_features)
            layer.buffers["running_mean"][:] = rng.normal(size=layer.num_features)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, layer.num_features)
    return model


def reference_statistics(model, x):
    """Layer by layer on all the data at once, with plain NumPy: install each, then go deeper."""
    result = {}
    h = x
    for index, layer in enumerate(model.layers):
        if isinstance(layer, BatchNorm):
            mean, var = h.mean(axis=0), h.var(axis=0)
            result[str(index)] = (mean, var)
            h = layer.params["gamma"] * (h - mean) / np.sqrt(var * len(h) / (len(h) - 1) + layer.eps) \
                + layer.params["beta"]
        elif isinstance(layer, bnnet.Linear):
            h = h @ layer.params["weight"].T + layer.params.get("bias", 0.0)
        else:
            h = np.tanh(h)
    return result


# -- pooling -------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[1] * 12, [5, 7], [3, 1, 8], [12]])
def test_pooled_moments_equal_the_statistics_of_all_the_data_at_once(rng, sizes):
    data = rng.normal(2.0, 3.0, size=(12, 4, 3))  # (N, C, spatial): pools N x spatial values
    pooled = PooledMoments(4)
    start = 0
    for size in sizes:
        pooled.add(data[start:start + size])
        start += size
    assert pooled.count == 36
    np.testing.assert_allclose(pooled.mean, data.mean(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_allclose(pooled.variance(), data.var(axis=(0, 2)), rtol=1e-12)


def test_pooled_moments_are_numerically_stable_for_a_huge_mean(rng):
    # sum(x^2)/n - mean^2 loses every digit here (1e16 - 1e16): Chan's merge does not.
    data = 1e8 + rng.normal(size=(10_000, 2))
    pooled = PooledMoments(2)
    for start in range(0, 10_000, 37):
        pooled.add(data[start:start + 37])
    exact = data.var(axis=0)
    naive = (data ** 2).mean(axis=0) - data.mean(axis=0) ** 2
    np.testing.assert_allclose(pooled.variance(), exact, rtol=1e-7)
    assert np.max(np.abs(naive - exact) / exact) > 1e-2  # the naive formula is far off


def test_pooled_moments_keep_float64_sums_for_float32_batches(rng):
    data = rng.normal(1000.0, 1.0, size=(4000, 3)).astype(np.float32)
    pooled = PooledMoments(3)
    for start in range(0, 4000, 100):
        pooled.add(data[start:start + 100])
    np.testing.assert_allclose(pooled.variance(), data.astype(F64).var(axis=0), rtol=1e-9)


# -- population statistics -------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 7, 50, 1000])
def test_population_statistics_match_the_all_at_once_reference_for_every_layer(rng, batch_size):
    model = trained_mlp(rng)
    x = rng.normal(0.5, 2.0, size=(50, 6))
    stats = population_statistics(model, x, batch_size=batch_size)
    reference = reference_statistics(model, x)
    assert list(stats) == ["1", "4", "7"]
    for name, (mean, var) in reference.items():
        assert stats[name].count == 50
        np.testing.assert_allclose(stats[name].mean, mean, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(stats[name].var, var, rtol=1e-12)


def test_population_statistics_leave_the_model_exactly_as_it_was(rng):
    model = trained_mlp(rng)
    model.train()
    model[4].eval()  # a mix of modes must survive too
    before = {name: value.copy() for name, value in model.named_buffers().items()}
    population_statistics(model, rng.normal(size=(30, 6)), batch_size=8)
    input_statistics(model, rng.normal(size=(30, 6)), batch_size=8)
    assert all(np.array_equal(before[name], value) for name, value in model.named_buffers().items())
    assert [m.training for m in model.modules()] == [m is not model[4] for m in model.modules()]


def test_input_statistics_use_the_model_as_it_is(rng):
    model = trained_mlp(rng)
    x = rng.normal(size=(40, 6))
    now = input_statistics(model, x, batch_size=9)
    precise = population_statistics(model, x)
    np.testing.assert_allclose(now["1"].var, precise["1"].var, rtol=1e-12)  # first layer: the same
    assert not np.allclose(now["4"].mean, precise["4"].mean)  # deeper: stale statistics upstream differ
    h = model[2].forward(model[1].eval().forward(model[0].forward(x)))  # eval mode, current running stats
    h = model[3].forward(h)
    np.testing.assert_allclose(now["4"].mean, h.mean(axis=0), rtol=1e-12, atol=1e-14)


def test_max_batches_uses_only_the_first_batches(rng):
    model = trained_mlp(rng)
    x = rng.normal(size=(100, 6))
    limited = population_statistics(model, x, batch_size=16, max_batches=2)
    assert limited["1"].count == 32
    np.testing.assert_allclose(limited["7"].var, population_statistics(model, x[:32])["7"].var, rtol=1e-12)


# -- precise BN ------------------------------------------------------------------
@pytest.mark.parametrize("unbiased", [True, False])
def test_precise_bn_installs_statistics_that_eval_mode_reproduces(rng, unbiased):
    model = trained_mlp(rng, unbiased_running_var=unbiased)
    x = rng.normal(1.0, 2.0, size=(64, 6))
    counter = model[1].buffers["num_batches_tracked"].copy()
    precise_bn(model, x, batch_size=10)
    # In eval mode every BatchNorm's input now has exactly the stored mean and variance.
    h = x
    model.eval()
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            np.testing.assert_allclose(layer.buffers["running_mean"], h.mean(axis=0), rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(layer.buffers["running_var"], h.var(axis=0, ddof=1 if unbiased else 0),
                                       rtol=1e-12)
        h = layer.forward(h)
    assert np.array_equal(model[1].buffers["num_batches_tracked"], counter)
    assert not model[0].training  # precise_bn does not change modes


def test_precise_bn_in_float32_is_close_to_the_float64_result(rng):
    model64 = trained_mlp(rng)
    model32 = bnnet.mlp([6, 8, 7, 5, 3], activation="tanh", dtype=np.float32)
    for name, value in model64.parameters().items():
        model32.parameters()[name][...] = value
    x = rng.normal(size=(200, 6))
    precise_bn(model64, x, batch_size=64)
    precise_bn(model32, x, batch_size=64)
    assert model32[7].buffers["running_var"].dtype == np.float32
    np.testing.assert_allclose(model32[7].buffers["running_var"], model64[7].buffers["running_var"], rtol=1e-5)


def test_precise_bn_works_on_a_nested_sequential_and_on_one_layer(rng):
    inner = trained_mlp(rng, sizes=(6, 8, 3))
    model = bnnet.Sequential(inner, bnnet.Tanh())
    x = rng.normal(size=(20, 6))
    stats = precise_bn(model, x, batch_size=6)
    assert list(stats) == ["0.1"]
    layer = BatchNorm(4, dtype=F64)
    z = rng.normal(3.0, 2.0, size=(25, 4))
    stats = precise_bn(layer, z, batch_size=4)
    np.testing.assert_allclose(layer.buffers["running_mean"], z.mean(axis=0), rtol=1e-13)
    assert list(stats) == [""]


@pytest.mark.parametrize("call, match", [
    (lambda m, x: precise_bn(bnnet.mlp([6, 3], batch_norm=False), x),
     r"precise_bn expected a model with at least one BatchNorm layer, got one with none \(1 layers\)"),
    (lambda m, x: precise_bn(m, x[:0]), r"expected at least one example .* got an empty array"),
    (lambda m, x: precise_bn(m, x, batch_size=0), r"expected batch_size >= 1, got 0"),
    (lambda m, x: population_statistics(m, x, max_batches=0), r"expected max_batches >= 1 or None .*, got 0"),
])
def test_precise_bn_errors(rng, call, match):
    with pytest.raises(ValueError, match=match):
        call(trained_mlp(rng), rng.normal(size=(10, 6)))


def test_a_container_other_than_sequential_is_refused(rng):
    class Pair(bnnet.Module):
        def children(self):
            return [BatchNorm(2), BatchNorm(2)]

    with pytest.raises(TypeError, match=r"expected a Sequential of layers or a single layer, got Pair with 2 children"):
        precise_bn(Pair(), rng.normal(size=(4, 2)))
