"""Model files: bit-identical round trips, optimizer state, atomic writes, no pickle."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import bnnet
from bnnet.checkpoint import CheckpointError, load, save


def trained(rng, dtype=np.float32, steps=5):
    model = bnnet.mlp([6, 8, 8, 3], activation="sigmoid", rng=rng, dtype=dtype)
    optimizer = bnnet.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = bnnet.SoftmaxCrossEntropy()
    x = rng.normal(size=(40, 6)).astype(dtype)
    y = rng.integers(0, 3, size=40)
    for step in range(steps):
        batch = slice(8 * (step % 5), 8 * (step % 5) + 8)
        loss.forward(model.forward(x[batch]), y[batch])
        model.backward(loss.backward())
        optimizer.step(model.gradients())
    return model, optimizer, x, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_gives_bit_identical_predictions(tmp_path, rng, dtype):
    model, optimizer, x, _ = trained(rng, dtype)
    path = save(tmp_path / "model.npz", model, optimizer=optimizer, config={"note": "hi"}, metadata={"k": 1})
    checkpoint = load(path)
    np.testing.assert_array_equal(checkpoint.model.predict(x), model.predict(x))
    for name, value in model.named_buffers().items():
        np.testing.assert_array_equal(checkpoint.model.named_buffers()[name], value)
    assert checkpoint.config == {"note": "hi"} and checkpoint.metadata == {"k": 1}
    assert repr(checkpoint.model) == repr(model)


def test_optimizer_state_resumes_the_same_trajectory(tmp_path, rng):
    model, optimizer, x, y = trained(rng, np.float64)
    save(tmp_path / "m.npz", model, optimizer=optimizer)
    resumed = load(tmp_path / "m.npz")
    assert resumed.optimizer.steps == optimizer.steps and resumed.optimizer.momentum == 0.9
    for run_model, run_optimizer in ((model, optimizer), (resumed.model, resumed.optimizer)):
        loss = bnnet.SoftmaxCrossEntropy()
        loss.forward(run_model.forward(x[:8]), y[:8])
        run_model.backward(loss.backward())
        run_optimizer.step(run_model.gradients())
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(resumed.model.parameters()[name], value)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, rng, monkeypatch):
    model, _, x, _ = trained(rng)
    path = tmp_path / "model.npz"
    save(path, model)
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save(path, model)
    assert path.read_bytes() == original  # the old model survives a failed write
    assert os.listdir(tmp_path) == ["model.npz"]


def test_loading_refuses_pickled_arrays(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.frombuffer(b"{}", dtype=np.uint8), payload=np.array([object()], dtype=object))
    with pytest.raises(CheckpointError, match="not a bnnet model file"):
        load(path)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "model file not found"),
        (lambda p: p.write_text("hello"), "not a bnnet model file"),
        (lambda p: np.savez(p, a=np.zeros(2)), "no __meta__ entry"),
        (lambda p: np.savez(p, __meta__=np.frombuffer(json.dumps({"format": "x", "version": 9}).encode(),
                                                      dtype=np.uint8)), "expected format bnnet-model version 1"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, make, match):
    path = tmp_path / "m.npz"
    make(path)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_shape_mismatch_is_reported(tmp_path, rng):
    model, _, _, _ = trained(rng)
    save(tmp_path / "m.npz", model)
    with np.load(tmp_path / "m.npz") as archive:
        arrays = dict(archive)
    arrays["param:0.weight"] = np.zeros((2, 2), dtype=np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"param '0.weight' expected shape \(8, 6\).*got shape \(2, 2\)"):
        load(tmp_path / "bad.npz")


def test_missing_directory_is_reported(tmp_path, rng):
    model, _, _, _ = trained(rng)
    with pytest.raises(CheckpointError, match="does not exist"):
        save(tmp_path / "no" / "such" / "m.npz", model)
