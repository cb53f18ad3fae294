"""Batch renorm and ghost batch norm, proven: gradient checks, exact reductions to batch norm, chunking."""
from __future__ import annotations

import numpy as np
import pytest

from bnnet import fast
from bnnet.functional.batch_norm import batch_norm_forward
from bnnet.functional.batch_renorm import batch_renorm_forward
from bnnet.functional.ghost_batch_norm import ghost_batch_slices
from bnnet.nn import BatchNorm

from gradcheck import batch_norm_with_state as layer_with_state, check_module, numerical_gradient

F64 = np.float64



def same_state(source: BatchNorm, **options) -> BatchNorm:
    """A new float64 BatchNorm with the given options and source's parameters and buffers."""
    layer = BatchNorm(source.num_features, dtype=F64, **options)
    for name, value in source.params.items():
        layer.params[name][...] = value
    for name, value in source.buffers.items():
        layer.buffers[name][...] = value
    return layer


# -- batch renorm -------------------------------------------------------------
def test_renorm_gradients_when_r_and_d_are_clipped(rng):
    # Running statistics far from the batch's: r and d sit at their clip limits,
    # so they are locally constant and the plain numerical derivative is the
    # stop-gradient one.
    layer = layer_with_state(rng, renorm=True, renorm_rmax=1.5, renorm_dmax=0.5)
    layer.buffers["running_mean"][:] = [10.0, -10.0, 10.0]
    layer.buffers["running_var"][:] = [100.0, 0.01, 100.0]
    x = rng.normal(0.0, 2.0, size=(7, 3))
    _, cache = batch_renorm_forward(x, None, None, layer.eps, layer.buffers["running_mean"],
                                    layer.buffers["running_var"], 1.5, 0.5)
    assert np.allclose(np.abs(cache.d), 0.5) and np.all((cache.r == 1.5) | (cache.r == 1 / 1.5))
    layer.update_running_stats = False  # keep r and d fixed across the numerical evaluations
    check_module(layer, x, rng)


def test_renorm_gradients_treat_unclipped_r_and_d_as_constants(rng):
    layer = layer_with_state(rng, renorm=True, renorm_rmax=10.0, renorm_dmax=10.0, update_running_stats=False)
    x = rng.normal(0.5, 1.5, size=(8, 3))
    dy = rng.standard_normal(x.shape)
    y = layer.forward(x)
    cache = layer._cache
    assert np.all((cache.r > 1 / 10) & (cache.r < 10)) and np.all(np.abs(cache.d) < 10)  # not clipped
    dx = layer.backward(dy)
    r, d = cache.r.copy(), cache.d.copy()
    gamma, beta = layer.params["gamma"], layer.params["beta"]

    def with_constant_r_d() -> float:  # the forward with r and d frozen at their values: stop_gradient
        x_hat, _ = batch_norm_forward(x, None, None, layer.eps)
        return float(np.sum(dy * (gamma * (x_hat * r + d) + beta)))

    assert np.allclose(with_constant_r_d(), np.sum(dy * y))
    np.testing.assert_allclose(dx, numerical_gradient(with_constant_r_d, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.grads["gamma"], numerical_gradient(with_constant_r_d, gamma), rtol=1e-6)
    np.testing.assert_allclose(layer.grads["beta"], numerical_gradient(with_constant_r_d, beta), rtol=1e-6)
    # and it is not the full derivative: r and d depend on x, which the method ignores on purpose
    def full() -> float:
        return float(np.sum(dy * layer.forward(x)))
    assert not np.allclose(dx, numerical_gradient(full, x), rtol=1e-3, atol=1e-5)


def compare_renorm_with_batch_norm(rng, shape, same):
    plain = layer_with_state(rng)
    renorm = same_state(plain, renorm=True, renorm_rmax=1.0, renorm_dmax=0.0)
    for _ in range(3):  # several steps: the running statistics must stay identical too
        x = rng.normal(2.0, 3.0, size=shape)
        dy = rng.standard_normal(shape)
        assert same(plain.forward(x), renorm.forward(x))
        assert same(plain.backward(dy), renorm.backward(dy))
        for name in ("gamma", "beta"):
            assert same(plain.grads[name], renorm.grads[name])
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert same(plain.buffers[name], renorm.buffers[name])


@pytest.mark.parametrize("shape", [(9, 3), (4, 3, 5)])
def test_renorm_with_rmax_1_and_dmax_0_is_batch_norm_bit_for_bit(rng, shape):
    # Bit for bit against the NumPy reference batch norm, which renorm is written on.
    with fast.use_engine("reference"):
        compare_renorm_with_batch_norm(rng, shape, np.array_equal)
    # The compiled kernels (the default engine when numba is there) agree to rounding.
    compare_renorm_with_batch_norm(rng, shape, lambda a, b: np.allclose(a, b, rtol=1e-12, atol=1e-12))


def test_renorm_warmup_ramps_the_limits_linearly_from_batch_norm(rng):
    layer = BatchNorm(3, dtype=F64, renorm=True, renorm_rmax=3.0, renorm_dmax=5.0, renorm_warmup_steps=4)
    seen = []
    for _ in range(6):
        seen.append(layer.renorm_limits())
        layer.forward(rng.normal(size=(6, 3)))
    assert seen == [(1.0, 0.0), (1.5, 1.25), (2.0, 2.5), (2.5, 3.75), (3.0, 5.0), (3.0, 5.0)]


def test_renorm_is_training_only_and_eval_uses_running_statistics(rng):
    layer = layer_with_state(rng, renorm=True)
    plain = same_state(layer)
    x = rng.normal(size=(6, 3))
    assert np.array_equal(layer.eval().forward(x), plain.eval().forward(x))
    # Bug fixed here: with normalize_with="batch", eval used to apply renorm's r, d.
    layer.normalize_with = plain.normalize_with = "batch"
    assert np.array_equal(layer.forward(x), plain.forward(x))


# -- ghost batch norm ---------------------------------------------------------
@pytest.mark.parametrize("batch, ghost, sizes", [(10, 4, [4, 4, 2]), (9, 4, [4, 5]), (8, 4, [4, 4]),
                                                 (3, 4, [3]), (5, 2, [2, 3])])
def test_ghost_slices_cover_the_batch_and_never_leave_one_alone(batch, ghost, sizes):
    slices = ghost_batch_slices(batch, ghost)
    assert [s.stop - s.start for s in slices] == sizes
    assert slices[0].start == 0 and slices[-1].stop == batch
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))


@pytest.mark.parametrize("batch", [10, 9])  # remainder of two, and of one (merged)
def test_ghost_output_is_each_chunk_batch_normalised_on_its_own(rng, batch):
    layer = layer_with_state(rng, ghost_batch_size=4)
    x = rng.normal(1.0, 2.0, size=(batch, 3))
    y = layer.forward(x)
    for part in ghost_batch_slices(batch, 4):
        expected, _ = batch_norm_forward(x[part], layer.params["gamma"], layer.params["beta"], layer.eps)
        np.testing.assert_allclose(y[part], expected, rtol=1e-13, atol=1e-13)
    # training output is not the whole-batch normalisation
    whole, _ = batch_norm_forward(x, layer.params["gamma"], layer.params["beta"], layer.eps)
    assert not np.allclose(y, whole)


@pytest.mark.parametrize("batch", [10, 9, 7])
def test_ghost_gradients(rng, batch):
    layer = layer_with_state(rng, ghost_batch_size=4, update_running_stats=False)
    grads = check_module(layer, rng.normal(1.0, 2.0, size=(batch, 3)), rng)
    # each chunk's dx sums to zero per channel: each chunk is mean-subtracted on its own
    for part in ghost_batch_slices(batch, 4):
        np.testing.assert_allclose(grads["x"][part].sum(axis=0), 0.0, atol=1e-10)


def test_ghost_updates_running_statistics_once_per_chunk(rng):
    ghost = BatchNorm(3, dtype=F64, ghost_batch_size=4)
    sequential = BatchNorm(3, dtype=F64)
    x = rng.normal(3.0, 2.0, size=(10, 3))
    ghost.forward(x)
    for part in ghost_batch_slices(10, 4):  # Hoffer et al.: one EMA step per ghost batch, in order
        sequential.forward(x[part])
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(ghost.buffers[name], sequential.buffers[name], rtol=1e-14)
    assert int(ghost.buffers["num_batches_tracked"]) == 3


def test_ghost_eval_is_unchanged(rng):
    ghost = layer_with_state(rng, ghost_batch_size=4)
    plain = same_state(ghost)
    x = rng.normal(size=(10, 3))
    assert np.array_equal(ghost.eval().forward(x), plain.eval().forward(x))
    # Bug fixed here: with normalize_with="batch", eval used to split the batch into ghost chunks.
    ghost.normalize_with = plain.normalize_with = "batch"
    assert np.array_equal(ghost.forward(x), plain.forward(x))


def test_ghost_and_renorm_construction_errors():
    with pytest.raises(ValueError, match=r"expected ghost_batch_size >= 2 or None, got 1"):
        BatchNorm(3, ghost_batch_size=1)
    with pytest.raises(ValueError, match=r"renorm and ghost_batch_size cannot be combined"):
        BatchNorm(3, ghost_batch_size=4, renorm=True)
    with pytest.raises(ValueError, match=r"expected renorm_rmax >= 1 and renorm_dmax >= 0, got 0.5, 1.0"):
        BatchNorm(3, renorm=True, renorm_rmax=0.5, renorm_dmax=1.0)
    with pytest.raises(ValueError, match=r"ghost_batch_size must be at least 2, got 0"):
        ghost_batch_slices(8, 0)
