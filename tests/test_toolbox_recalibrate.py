"""Domain shifts and AdaBN: exact for an affine shift, and it works on MNIST."""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.toolbox import Shift, precise_bn, recalibrate

F64 = np.float64


def test_brightness_and_contrast_by_hand():
    x = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    shifted = Shift(brightness=0.1, contrast=0.5)(x)
    assert shifted.dtype == np.float32
    np.testing.assert_allclose(shifted, [[0.35, 0.6, 0.85]], rtol=1e-6)  # 0.5 (x - 0.5) + 0.5 + 0.1
    np.testing.assert_allclose(Shift(brightness=0.3, contrast=2.0)(x), [[0.0, 0.8, 1.0]], rtol=1e-6)  # clipped
    np.testing.assert_allclose(Shift(brightness=0.3, contrast=2.0, clip=False)(x), [[-0.2, 0.8, 1.8]], rtol=1e-6)
    assert np.array_equal(Shift()(x), x) and Shift().is_identity()


def test_noise_is_seeded_and_the_input_is_not_changed(rng):
    x = rng.uniform(size=(5, 4))
    original = x.copy()
    a, b, c = Shift(noise_std=0.1, seed=3)(x), Shift(noise_std=0.1, seed=3)(x), Shift(noise_std=0.1, seed=4)(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and np.array_equal(x, original)
    assert Shift(brightness=-0.2, contrast=0.5, noise_std=0.1).describe() == \
        "brightness -0.2, contrast x0.5, noise std 0.1, clipped to [0, 1]"


@pytest.mark.parametrize("kwargs, match", [
    ({"brightness": 1.5}, r"Shift expected brightness in \[-1, 1\] \(pixel units\), got 1.5"),
    ({"contrast": 0.0}, r"Shift expected contrast > 0 \(1 keeps the contrast\), got 0.0"),
    ({"noise_std": -0.1}, r"Shift expected noise_std >= 0, got -0.1"),
])
def test_shift_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Shift(**kwargs)


def test_adabn_undoes_an_affine_shift_exactly(rng):
    # (c z + k - (c mu + k)) / sqrt(c^2 var) = (z - mu) / sqrt(var): exact up to eps, made negligible here.
    model = bnnet.mlp([12, 9, 7, 4], activation="tanh", dtype=F64, rng=rng, batch_norm_options={"eps": 1e-12})
    x = rng.uniform(size=(300, 12))
    precise_bn(model, x, batch_size=64)
    expected = model.predict(x)
    shift = Shift(brightness=0.2, contrast=0.4, clip=False)
    assert not np.allclose(model.predict(shift(x)), expected, atol=1e-2)
    stats = recalibrate(model, shift(x), batch_size=64)
    assert list(stats) == ["1", "4"]
    np.testing.assert_allclose(model.predict(shift(x)), expected, rtol=1e-7, atol=1e-9)


def test_recalibrate_needs_batch_norm(rng):
    with pytest.raises(ValueError, match=r"recalibrate expected a model with at least one BatchNorm layer"):
        recalibrate(bnnet.mlp([4, 2], batch_norm=False), rng.uniform(size=(5, 4)))


def test_adabn_recovers_mnist_accuracy_on_a_brightness_contrast_shift(data_dir):
    from bnnet.data import load_dataset

    data = load_dataset("mnist", data_dir=data_dir, limit_train=2000)
    x_test, y_test = data.x_test[:2000], data.y_test[:2000]
    model = bnnet.mlp([784, 64, 64, 10], rng=0)
    loss = bnnet.SoftmaxCrossEntropy()
    bnnet.fit(model, loss, bnnet.Adam(model.parameters(), lr=3e-3), data.x_train, data.y_train, epochs=2,
              batch_size=60, rng=np.random.default_rng(0), log=None)
    clean = bnnet.evaluate(model, loss, x_test, y_test)[1]
    shift = Shift(brightness=0.2, contrast=0.5)
    before = bnnet.evaluate(model, loss, shift(x_test), y_test)[1]
    recalibrate(model, Shift(brightness=0.2, contrast=0.5, seed=1)(data.x_train))
    after = bnnet.evaluate(model, loss, shift(x_test), y_test)[1]
    assert clean > 0.8  # 2,000 examples, 2 epochs: about 0.87
    assert before < clean - 0.2  # the shift hurts
    assert after > clean - 0.03  # and recalibration undoes nearly all of it
