"""The fast engine (bnnet.fast) against the NumPy reference it replaces.

Each compiled kernel must compute what the readable reference in
bnnet.functional computes, forward and gradients, in float32 and float64, on
the benchmark shapes (the huge ones replaced by smaller stand-ins with the same
layout and awkward sizes). Tolerances follow tests/test_torch_parity_layers.py:
relative 1e-10 (float64) and 1e-5 (float32), with an absolute part scaled by
the array's largest magnitude, because batch norm's centred outputs and dx are
differences of nearly equal terms. The optimizer kernel repeats the reference's
arithmetic exactly, so it is compared bit for bit.
"""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

import bnnet
from bnnet import fast
from bnnet.functional import activations as reference_activations
from bnnet.functional import batch_norm as reference_bn
from bnnet.functional import losses as reference_losses

from conftest import REPO_ROOT
from gradcheck import check_module

F32, F64 = np.float32, np.float64
DTYPES = [F64, F32]
RTOL = {F64: 1e-10, F32: 1e-5}
ATOL_FACTOR = {F64: 1e-13, F32: 1e-5}
# The benchmark shapes, huge ones replaced: (4096, 1024) -> (300, 130),
# (65536, 256) -> (2049, 40), (64, 64, 32, 32) -> (6, 16, 9, 7); plus odd corners. Rows of 4 KB
# or more ((256, 1024), (37, 1030)) have the backward's sums taken by cache lines of channels,
# (37, 1030) with a few channels past the last whole line and a last block of 5 rows.
SHAPES = [(60, 100), (256, 1024), (37, 1030), (300, 130), (2049, 40), (6, 16, 9, 7), (2, 1), (5, 3, 1),
          (3, 4, 2, 2, 3)]


def assert_close(actual, expected, dtype) -> None:
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype],
                               atol=ATOL_FACTOR[dtype] * max(float(np.max(np.abs(expected))), 1e-30))


@pytest.fixture
def kernels():
    """The compiled namespace, with the fast engine on for the test."""
    with fast.use_engine("fast"):
        yield fast.ops()


def batch(rng, shape, dtype, mean=0.5, std=2.0):
    return rng.normal(mean, std, size=shape).astype(dtype)


# -- batch norm ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_reference(kernels, rng, dtype, shape, affine):
    x, dy = batch(rng, shape, dtype), batch(rng, shape, dtype, 0.0, 1.0)
    gamma = batch(rng, shape[1], dtype, 1.0, 0.3) if affine else None
    beta = batch(rng, shape[1], dtype, 0.0, 0.3) if affine else None
    y, cache = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
    y_ref, cache_ref = reference_bn.batch_norm_forward(x, gamma, beta, 1e-5)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
    assert_close(y, y_ref, dtype)
    assert_close(cache.mean, cache_ref.mean, dtype)
    assert_close(cache.var, cache_ref.var, dtype)
    grads = kernels.batch_norm_backward(dy, cache)
    grads_ref = reference_bn.batch_norm_backward(dy, cache_ref)
    for ours, theirs in zip(grads, grads_ref):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    # dx is a difference of terms of size |gamma * inv_std * dy|; with two values per
    # channel it nearly cancels, so its tolerance is scaled by the terms, not by dx itself
    terms = np.max(np.abs(dy)) * np.max(np.abs(cache_ref.inv_std * (1.0 if gamma is None else gamma)))
    np.testing.assert_allclose(grads[0], grads_ref[0], rtol=RTOL[dtype], atol=ATOL_FACTOR[dtype] * terms)
    for ours, theirs in zip(grads[1:], grads_ref[1:]):
        assert_close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_line_sums_add_each_blocks_sums_in_the_inputs_dtype(kernels, rng, dtype):
    """The line summers: one line of channels down a block of rows, at any start, into float64 totals,
    bit for bit the row-after-row sums in the inputs' dtype."""
    import numba

    from bnnet.fast.lanes import LINE_BYTES
    from bnnet.fast.line_sums import add_gradient_line_sums, add_shifted_line_sums

    @numba.njit
    def add_shifted(x, first, stride, rows, shift, j, sums, squares):
        add_shifted_line_sums((x,), first, stride, rows, (shift,), j, sums, squares)

    @numba.njit
    def add_gradient(dy, x, first, stride, rows, centre, j, sums, squares):
        add_gradient_line_sums((dy, x), first, stride, rows, (centre,), j, sums, squares)

    lanes = LINE_BYTES // np.dtype(dtype).itemsize
    x = batch(rng, (40, 3 * lanes + 5), dtype)
    dy = batch(rng, x.shape, dtype)
    shift = batch(rng, 3 * lanes, dtype)
    for c0, j, start, rows in ((0, 0, 0, 16), (3, lanes, 5, 7), (5, 2 * lanes, 39, 1)):
        first = start * x.shape[1] + c0 + j
        block = slice(start, start + rows)
        channels = slice(c0 + j, c0 + j + lanes)
        for add, terms in ((lambda t, u: add_shifted(x.reshape(-1), first, x.shape[1], rows, shift, j, t, u),
                            lambda i: (x[i, channels] - shift[j:j + lanes], (x[i, channels] - shift[j:j + lanes]) ** 2)),
                           (lambda t, u: add_gradient(dy.reshape(-1), x.reshape(-1), first, x.shape[1], rows, shift, j,
                                                      t, u),
                            lambda i: (dy[i, channels], dy[i, channels] * (x[i, channels] - shift[j:j + lanes])))):
            sums, others = rng.standard_normal(3 * lanes), rng.standard_normal(3 * lanes)
            expected_sums, expected_others = sums.copy(), others.copy()
            part, part_other = np.zeros(lanes, dtype), np.zeros(lanes, dtype)
            for i in range(block.start, block.stop):  # row after row in the inputs' dtype
                term, other = terms(i)
                part += term
                part_other += other
            expected_sums[j:j + lanes] += part
            expected_others[j:j + lanes] += part_other
            add(sums, others)
            np.testing.assert_array_equal(sums, expected_sums)
            np.testing.assert_array_equal(others, expected_others)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide_rows_match_reference_wherever_they_start_in_a_cache_line(kernels, rng, dtype):
    """Sums by lines start at x's own line boundaries; on one thread, whole rows share their partial
    lines with the next row (the wrapped lines). Every start offset; rows of whole lines and not; the
    forward's sums by lines (over 8 MB) and the backward's; last blocks short."""
    import numba

    itemsize = np.dtype(dtype).itemsize
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for shape in (((8 << 20) // (1024 * itemsize) + 5, 1024), (37, 1024), (37, 1040)):
            size = shape[0] * shape[1] * itemsize
            for offset in range(0, 64, itemsize):
                raw = np.empty(size + 128, np.uint8)
                x = raw[-raw.ctypes.data % 64 + offset:][:size].view(dtype).reshape(shape)
                x[...] = batch(rng, shape, dtype)
                gamma, beta = batch(rng, shape[1], dtype, 1.0, 0.3), batch(rng, shape[1], dtype, 0.0, 0.3)
                dy = batch(rng, shape, dtype, 0.0, 1.0)
                y, cache = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
                y_ref, cache_ref = reference_bn.batch_norm_forward(x, gamma, beta, 1e-5)
                assert_close(y, y_ref, dtype)
                for ours, theirs in zip(kernels.batch_norm_backward(dy, cache),
                                        reference_bn.batch_norm_backward(dy, cache_ref)):
                    assert_close(ours, theirs, dtype)
    finally:
        numba.set_num_threads(previous)


def test_batch_norm_statistics_stay_accurate_far_from_zero(kernels, rng):
    """A mean 10^4 standard deviations from zero and an outlier first row: no cancellation."""
    x = rng.normal(1e4, 1.0, size=(500, 8))
    x[0] += 40.0
    _, cache = kernels.batch_norm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(cache.var, x.var(axis=0), rtol=1e-9)
    np.testing.assert_allclose(cache.mean, x.mean(axis=0), rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(60, 100), (4, 5, 3, 2)])
def test_fixed_statistics_match_reference(kernels, rng, dtype, shape):
    channels = shape[1]
    x, dy = batch(rng, shape, dtype), batch(rng, shape, dtype, 0.0, 1.0)
    mean, var = batch(rng, channels, dtype), rng.uniform(0.5, 2.0, channels).astype(dtype)
    gamma, beta = batch(rng, channels, dtype, 1.0, 0.3), batch(rng, channels, dtype, 0.0, 0.3)
    y, cache = kernels.fixed_statistics_forward(x, mean, var, gamma, beta, 1e-5)
    y_ref, cache_ref = reference_bn.fixed_statistics_forward(x, mean, var, gamma, beta, 1e-5)
    assert_close(y, y_ref, dtype)
    for ours, theirs in zip(kernels.fixed_statistics_backward(dy, cache),
                            reference_bn.fixed_statistics_backward(dy, cache_ref)):
        assert_close(ours, theirs, dtype)


def test_threaded_kernels_match_single_threaded(kernels, rng, monkeypatch):
    """The parallel drivers split channels between threads: the same numbers, bit for bit."""
    from bnnet.fast import jit

    cases = [batch(rng, (50, 70), F32), batch(rng, (6, 40, 5, 3), F32)]
    serial = [(kernels.batch_norm_forward(x, None, None, 1e-5), x) for x in cases]
    monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(jit.numba, "get_num_threads", lambda: 2)
    for (y_serial, cache_serial), x in serial:
        dy = batch(rng, x.shape, F32, 0.0, 1.0)
        y, cache = kernels.batch_norm_forward(x, None, None, 1e-5)
        np.testing.assert_array_equal(y, y_serial)
        grads = kernels.batch_norm_backward(dy, cache)
        monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 1 << 60)
        for ours, theirs in zip(grads, kernels.batch_norm_backward(dy, cache_serial)):
            np.testing.assert_array_equal(ours, theirs)
        monkeypatch.setattr(jit, "PARALLEL_MIN_ELEMENTS", 0)


def test_uncovered_inputs_go_to_the_reference(kernels, rng):
    """Mixed dtypes and non-contiguous inputs give the reference's results (and dtype)."""
    x = batch(rng, (8, 6), F64)
    gamma, beta = np.ones(6, F32), np.zeros(6, F32)
    y, cache = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
    y_ref, _ = reference_bn.batch_norm_forward(x, gamma, beta, 1e-5)
    np.testing.assert_array_equal(y, y_ref)
    strided = batch(rng, (8, 12), F32)[:, ::2]
    assert_close(kernels.batch_norm_forward(strided, None, None, 1e-5)[0],
                 reference_bn.batch_norm_forward(strided, None, None, 1e-5)[0], F32)


def test_backward_rejects_a_gradient_of_the_wrong_shape(kernels, rng):
    _, cache = kernels.batch_norm_forward(batch(rng, (5, 3), F32), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"expected dy of shape \(5, 3\) and dtype float32.*got shape \(5, 4\)"):
        kernels.batch_norm_backward(np.zeros((5, 4), F32), cache)


def test_fixed_statistics_backward_rejects_a_gradient_of_the_wrong_dtype(kernels, rng):
    ones = np.ones(3, F32)
    _, cache = kernels.fixed_statistics_forward(batch(rng, (5, 3), F32), ones, ones, ones, ones, 1e-5)
    with pytest.raises(ValueError, match=r"expected dy of shape \(5, 3\) and dtype float32.*got shape \(5, 3\) "
                                         r"and dtype float64"):
        kernels.fixed_statistics_backward(np.zeros((5, 3)), cache)


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 3)])
def test_batch_norm_layer_gradients_on_fast_engine(kernels, rng, shape):
    """Central differences on the layer as it runs on the fast engine (float64)."""
    layer = bnnet.BatchNorm(shape[1], dtype=F64)
    layer.params["gamma"][:] = rng.normal(1.0, 0.3, shape[1])
    layer.params["beta"][:] = rng.normal(0.0, 0.3, shape[1])
    check_module(layer, rng.normal(1.0, 2.0, size=shape), rng)
    check_module(layer.eval(), rng.normal(1.0, 2.0, size=shape), rng)


# -- activations, loss, optimizer ------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_reference(kernels, rng, dtype):
    x = np.concatenate([rng.normal(0.0, 6.0, 3000), rng.uniform(-120, 120, 3000),
                        [0.0, -0.0, 1e-30, -87.0, -88.5, -100.0, -103.9, -104.5, -200.0, 200.0]]).astype(dtype)
    y, y_ref = kernels.sigmoid(x.reshape(10, -1)), reference_activations.sigmoid(x.reshape(10, -1))
    assert y.dtype == dtype
    # float32: both are within a few units in the last place of the exact value (subnormals included)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    ulp = np.spacing(exact.astype(dtype)).astype(np.float64)
    assert np.max(np.abs(y.reshape(-1) - exact) / ulp) <= 3.0
    assert_close(y, y_ref, dtype)


def test_sigmoid_special_values(kernels):
    x = np.array([np.inf, -np.inf, np.nan, 0.0], dtype=F32)
    y = kernels.sigmoid(x)
    np.testing.assert_array_equal(y[[0, 1, 3]], [1.0, 0.0, 0.5])
    assert np.isnan(y[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid_backward", "tanh_backward", "relu_backward"])
def test_activation_backward_is_the_reference_arithmetic(kernels, rng, dtype, name):
    dy, y = batch(rng, (7, 9), dtype), batch(rng, (7, 9), dtype, 0.0, 0.5)
    np.testing.assert_array_equal(getattr(kernels, name)(dy, y), getattr(reference_activations, name)(dy, y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [5.0, 60.0])  # 60: exponentials down to exp(-400) underflow to 0
@pytest.mark.parametrize("classes", [10, 3, 37])
def test_softmax_cross_entropy_matches_reference(kernels, rng, dtype, scale, classes):
    logits, labels = batch(rng, (60, classes), dtype, 0.0, scale), rng.integers(0, classes, 60)
    loss, grad = kernels.softmax_cross_entropy(logits, labels)
    loss_ref, grad_ref = reference_losses.softmax_cross_entropy(logits, labels)
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, loss_ref, rtol=RTOL[dtype])
    assert_close(grad, grad_ref, dtype)


def test_loss_still_explains_bad_labels_on_fast_engine(kernels):
    with pytest.raises(ValueError, match=r"expected labels in 0\.\.2 \(the model has 3 outputs\), got labels from 0 to 3"):
        bnnet.SoftmaxCrossEntropy().forward(np.zeros((2, 3), F32), np.array([0, 3]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
                                     {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1}])
def test_sgd_update_is_the_reference_bit_for_bit(rng, dtype, options):
    # row-major, column-major (as Linear stores its weight) and 1-D parameters
    start = {"w": batch(rng, (5, 4), dtype), "w_columns": np.asfortranarray(batch(rng, (3, 6), dtype)),
             "b": batch(rng, 4, dtype)}
    runs = {}
    for engine in ("fast", "reference"):
        params = {name: value.copy() for name, value in start.items()}
        optimizer = bnnet.SGD(params, lr=0.1, **options)
        steps = np.random.default_rng(7)
        with fast.use_engine(engine):
            for step in range(4):  # gradients in either layout
                optimizer.step({name: np.asarray(steps.standard_normal(v.shape).astype(dtype),
                                                 order="F" if step % 2 else "C") for name, v in params.items()})
        runs[engine] = params
    for name in start:
        np.testing.assert_array_equal(runs["fast"][name], runs["reference"][name])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_grouped_sgd_is_the_reference_bit_for_bit_over_a_whole_network(rng, momentum):
    """More parameters than one grouped call takes, in both dtypes and layouts, with gradients
    and velocities the grouped kernel must leave to the per-parameter path."""
    shapes = [(7, 5), (5,), (5,), (6, 7), (6,), (6,), (4, 6), (4,), (4,), (3, 4), (3,), (9, 2)]
    start = {}
    for index, shape in enumerate(shapes):
        value = batch(rng, shape, F64 if index == 4 else F32)  # one float64 among float32
        start[f"p{index}"] = np.asfortranarray(value) if index in (0, 3) else value  # as Linear keeps weights
    runs = {}
    for engine in ("fast", "reference"):
        params = {name: value.copy(order="K") for name, value in start.items()}
        optimizer = bnnet.SGD(params, lr=0.1, momentum=momentum, weight_decay=1e-3)
        steps = np.random.default_rng(3)
        with fast.use_engine(engine):
            for step in range(4):
                grads = {name: steps.standard_normal(v.shape).astype(v.dtype) for name, v in params.items()}
                grads["p0"] = np.asfortranarray(grads["p0"])  # the layout Linear produces
                if step == 2:
                    del grads["p7"]  # frozen for a step
                    grads["p3"] = np.ascontiguousarray(grads["p3"])  # a layout unlike its parameter's
                    if momentum:  # restored velocities arrive row-major
                        optimizer.load_state(optimizer.steps, optimizer.state_arrays())
                optimizer.step(grads)
        runs[engine] = params
    for name in start:
        np.testing.assert_array_equal(runs["fast"][name], runs["reference"][name], err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("running_average", ["ema", "ema_debiased", "cumulative"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_running_statistics_update_is_the_reference_bit_for_bit(kernels, rng, dtype, running_average, unbiased):
    from bnnet.nn.running_stats import update_running_statistics, update_weight

    fast_state = (np.zeros(5, dtype), np.ones(5, dtype), np.zeros((), np.int64))
    reference_state = tuple(value.copy() for value in fast_state)
    for step in range(1, 5):
        mean, var, count = batch(rng, 5, dtype), batch(rng, 5, dtype) ** 2, 6 * step
        weight = update_weight(running_average, 0.1, step)
        assert kernels.fold_running_statistics(*fast_state, mean, var, count, weight, unbiased)
        update_running_statistics(*reference_state[:2], mean, var, count, weight, unbiased)
        reference_state[2][...] += 1
        for got, expected in zip(fast_state, reference_state):
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected, err_msg=f"step {step}")


def test_running_statistics_kernel_leaves_uncovered_arrays_to_the_reference(kernels):
    running = np.zeros(3, F32), np.ones(3, F32)
    tracked = np.zeros((), np.int64)
    assert not kernels.fold_running_statistics(*running, tracked, np.zeros(3, F64), np.ones(3, F32), 4, 0.1, True)
    assert not kernels.fold_running_statistics(*running, np.zeros(1, np.int64), np.zeros(3, F32), np.ones(3, F32),
                                               4, 0.1, True)
    assert int(tracked) == 0 and np.array_equal(running[0], np.zeros(3))


# -- whole models -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_predict_matches_the_layered_reference(rng, dtype, activation, batch_norm):
    model = bnnet.mlp([12, 9, 7, 4], activation=activation, batch_norm=batch_norm, dtype=dtype)
    for _ in range(3):  # running statistics away from their initial 0 and 1
        model.forward(batch(rng, (16, 12), dtype))
    x = batch(rng, (5, 12), dtype)
    with fast.use_engine("reference"):
        expected = model.predict(x)
    with fast.use_engine("fast"):
        assert_close(model.predict(x), expected, dtype)
        for row in range(5):  # single examples: no batch axis in, none out
            assert_close(model.predict(x[row]), expected[row], dtype)
        assert model.training  # the mode is left alone


def test_predict_leaves_uncovered_models_to_the_layered_path(rng):
    model = bnnet.mlp([6, 5, 3], batch_norm_options={"normalize_with": "batch"}, dtype=F64)
    x = batch(rng, (4, 6), F64)
    with fast.use_engine("fast"):
        assert fast.ops().predict(model, x) is None
        assert_close(model.predict(x), reference_predict(model, x), F64)
        with pytest.raises(ValueError, match=r"Linear expected input of shape \(N, 6\), got \(4, 5\)"):
            model.predict(x[:, :5])
        covered = bnnet.mlp([6, 5, 3], dtype=F64)  # covered, but the input is the wrong width
        with pytest.raises(ValueError, match=r"Linear expected input of shape \(N, 6\), got \(4, 5\)"):
            covered.predict(x[:, :5])


def reference_predict(model, x):
    with fast.use_engine("reference"):
        return model.predict(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_on_both_engines_agrees(rng, dtype):
    x, y = batch(rng, (120, 10), dtype), rng.integers(0, 3, 120)
    trained = {}
    for engine in ("fast", "reference"):
        model = bnnet.mlp([10, 8, 8, 3], activation="sigmoid", dtype=dtype)
        optimizer = bnnet.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with fast.use_engine(engine):
            bnnet.fit(model, bnnet.SoftmaxCrossEntropy(), optimizer, x, y, epochs=2, batch_size=30,
                      rng=np.random.default_rng(0), log=None, progress=False)
        trained[engine] = {**model.parameters(), **model.named_buffers()}
    tolerance = {F64: 1e-9, F32: 1e-4}[dtype]
    for name, value in trained["reference"].items():
        np.testing.assert_allclose(trained["fast"][name], value, rtol=tolerance, atol=tolerance, err_msg=name)


def test_first_layer_skips_its_input_gradient_only_while_fitting(rng):
    model = bnnet.mlp([6, 5, 3], dtype=F64)
    x, y = batch(rng, (8, 6), F64), rng.integers(0, 3, 8)
    seen = []
    bnnet.fit(model, bnnet.SoftmaxCrossEntropy(), bnnet.SGD(model.parameters()), x, y, epochs=1, batch_size=4,
              rng=rng, log=None, progress=False, on_step=lambda step, m: seen.append(m[0].needs_input_grad))
    assert seen == [False, False] and model[0].needs_input_grad
    loss = bnnet.SoftmaxCrossEntropy()
    loss.forward(model.forward(x), y)
    dx = model.backward(loss.backward())
    grads = {name: g.copy() for name, g in model.gradients().items()}
    model[0].needs_input_grad = False
    loss.forward(model.forward(x), y)
    assert model.backward(loss.backward()) is None and dx.shape == x.shape
    for name, value in model.gradients().items():
        np.testing.assert_array_equal(value, grads[name])


def test_warm_up_loads_the_training_kernels_for_the_model_dtype():
    """In a fresh process (so no earlier test has loaded them): float64 kernels, nothing on the reference engine."""
    code = ("import bnnet; from bnnet import fast; model = bnnet.mlp([3, 2, 2], activation='sigmoid', "
            "dtype='float64'); "
            "fast.warm_up(model); from bnnet.fast import activation_kernels as a, batch_norm_kernels as b, optim, "
            "running_statistics as r; "
            "print([[str(s[0].dtype) for s in k.signatures] for k in (b.train_forward_2d, b.train_backward_2d, "
            "a.sigmoid_float64, r._fold, optim._sgd_group, optim._sgd)])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=_environment(), timeout=300)
    assert done.returncode == 0, done.stderr
    # the grouped SGD's signature is a tuple of arrays; the per-parameter one has 2-D and 1-D
    assert done.stdout.strip() == str([["float64"]] * 4 + [["array(float64, 1d, C)"]]
                                      + [["float64", "float64"]])
    with fast.use_engine("reference"):
        assert fast.warm_up(model=bnnet.mlp([3, 2])) is None


# -- choosing the engine -------------------------------------------------------------
@pytest.fixture
def fresh_engine(monkeypatch):
    """Forget the engine decision for the test (restored afterwards)."""
    monkeypatch.setattr(fast, "_requested", None)
    monkeypatch.setattr(fast, "_ops", None)
    monkeypatch.setattr(fast, "_noticed", False)
    return monkeypatch


@pytest.mark.parametrize("value, expected", [("reference", "reference"), ("fast", "fast"), ("auto", "fast"),
                                             (" Fast ", "fast")])
def test_environment_variable_chooses_the_engine(fresh_engine, value, expected):
    fresh_engine.setenv("BNNET_ENGINE", value)
    assert fast.engine() == expected


def test_unknown_engine_name_is_an_error(fresh_engine):
    fresh_engine.setenv("BNNET_ENGINE", "turbo")
    with pytest.raises(ValueError, match=r"BNNET_ENGINE expected one of auto, fast, reference, got 'turbo'"):
        fast.ops()
    with pytest.raises(ValueError, match=r"set_engine expected one of auto, fast, reference, got 'numpy'"):
        fast.set_engine("numpy")


def test_without_numba_auto_falls_back_with_one_notice(fresh_engine, caplog, rng):
    fresh_engine.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    fresh_engine.setenv("BNNET_ENGINE", "auto")
    with caplog.at_level(logging.WARNING, logger="bnnet.fast"):
        assert fast.engine() == "reference"
        fast.set_engine("auto")
    notices = [r.getMessage() for r in caplog.records if r.name == "bnnet.fast"]
    assert len(notices) == 1 and "numba is unavailable" in notices[0] and "\n" not in notices[0]
    model = bnnet.mlp([4, 3, 2], activation="sigmoid", dtype=F64)
    x = batch(rng, (5, 4), F64)
    np.testing.assert_array_equal(model.forward(x), reference_forward(model, x))


def reference_forward(model, x):
    with fast.use_engine("reference"):
        return model.forward(x)


def test_forcing_fast_without_numba_is_an_error(fresh_engine):
    fresh_engine.setitem(sys.modules, "numba", None)
    fresh_engine.setenv("BNNET_ENGINE", "fast")
    with pytest.raises(RuntimeError, match=r"BNNET_ENGINE=fast asked for the compiled engine, but numba cannot be "
                                           r"imported .*pip install numba"):
        fast.ops()


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_import_bnnet_does_not_import_numba(engine):
    code = ("import sys, numpy as np, bnnet; assert 'numba' not in sys.modules; "
            "m = bnnet.mlp([3, 4, 2]); m.forward(np.ones((4, 3), np.float32)); "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**_environment(), "BNNET_ENGINE": engine}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("False" if engine == "reference" else "True")


def _environment() -> dict:
    import os

    source = str(REPO_ROOT / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
