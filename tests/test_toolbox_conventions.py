"""Framework conventions: PyTorch as a live oracle, Keras and Flax pinned by hand-computed updates."""
from __future__ import annotations

import numpy as np
import pytest

from bnnet.nn import BatchNorm
from bnnet.toolbox import FRAMEWORKS, from_framework, to_framework

F64 = np.float64


def trained(rng, **options) -> BatchNorm:
    layer = BatchNorm(3, dtype=F64, **options)
    if layer.affine:
        layer.params["gamma"][:] = rng.uniform(0.5, 2.0, 3)
        layer.params["beta"][:] = rng.normal(size=3)
    for _ in range(4):
        layer.forward(rng.normal(2.0, 3.0, size=(10, 3)))
    return layer


def torch_layer(torch, config, state):
    module = torch.nn.BatchNorm1d(**config, dtype=torch.float64)
    module.load_state_dict({key: torch.as_tensor(np.asarray(value)) for key, value in state.items()})
    return module


def torch_state(module) -> dict:
    return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


# -- PyTorch, live -------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("options", [{}, {"new_batch_weight": 0.3, "eps": 1e-3}, {"running_average": "cumulative"},
                                     {"affine": False}])
def test_to_pytorch_gives_the_same_eval_outputs_and_the_same_next_update(rng, torch, options):
    layer = trained(rng, **options)
    converted = to_framework(layer, "pytorch", strict=True)
    module = torch_layer(torch, converted.config, converted.state)
    x = rng.normal(2.0, 3.0, size=(8, 3))
    module.eval()
    np.testing.assert_allclose(module(torch.as_tensor(x)).detach().numpy(), layer.eval().forward(x), rtol=1e-12)
    module.train()
    batch = rng.normal(1.0, 2.0, size=(12, 3))
    np.testing.assert_allclose(module(torch.as_tensor(batch)).detach().numpy(), layer.train().forward(batch),
                               rtol=1e-12, atol=1e-12)
    after = torch_state(module)
    np.testing.assert_allclose(after["running_mean"], layer.buffers["running_mean"], rtol=1e-12)
    np.testing.assert_allclose(after["running_var"], layer.buffers["running_var"], rtol=1e-12)
    assert int(after["num_batches_tracked"]) == int(layer.buffers["num_batches_tracked"]) == 5


@pytest.mark.torch
@pytest.mark.parametrize("config", [{"num_features": 3}, {"num_features": 3, "momentum": 0.25, "eps": 1e-4},
                                    {"num_features": 3, "momentum": None}])
def test_from_pytorch_gives_the_same_eval_outputs_and_the_same_next_update(rng, torch, config):
    module = torch.nn.BatchNorm1d(**config, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(rng.uniform(0.5, 2.0, 3)))
        module.bias.copy_(torch.as_tensor(rng.normal(size=3)))
    for _ in range(3):
        module(torch.as_tensor(rng.normal(2.0, 3.0, size=(10, 3))))
    layer = from_framework("pytorch", config, torch_state(module), dtype=F64)
    x = rng.normal(size=(6, 3))
    module.eval()
    np.testing.assert_allclose(layer.eval().forward(x), module(torch.as_tensor(x)).detach().numpy(), rtol=1e-12)
    module.train()
    batch = rng.normal(size=(9, 3))
    module(torch.as_tensor(batch))
    layer.train().forward(batch)
    np.testing.assert_allclose(layer.buffers["running_var"], torch_state(module)["running_var"], rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], torch_state(module)["running_mean"], rtol=1e-12)


# -- Keras and Flax, by hand -----------------------------------------------------
KERAS_BATCH = np.array([[1.0, 2.0], [3.0, 6.0]])  # mean [2, 4]; biased variance [1, 4]; unbiased [2, 8]


@pytest.mark.parametrize("framework, config, eps", [
    ("keras", {"momentum": 0.9}, 1e-3),
    ("flax", {"momentum": 0.9}, 1e-5),
])
def test_keras_and_flax_average_the_biased_variance_with_momentum_on_the_old_value(framework, config, eps):
    layer = from_framework(framework, config, num_features=2, dtype=F64)
    assert (layer.new_batch_weight, layer.eps, layer.unbiased_running_var) == (0.1, eps, False)
    layer.forward(KERAS_BATCH)
    # moving = 0.9 * moving + 0.1 * batch, from mean 0 and variance 1; the batch variance is the biased one
    np.testing.assert_allclose(layer.buffers["running_mean"], [0.2, 0.4], rtol=1e-15)
    np.testing.assert_allclose(layer.buffers["running_var"], [1.0, 1.3], rtol=1e-15)
    x = np.array([[0.2, 1.7]])
    expected = (x - [0.2, 0.4]) / np.sqrt(np.array([1.0, 1.3]) + eps)
    np.testing.assert_allclose(layer.eval().forward(x), expected, rtol=1e-14)


def test_keras_and_flax_state_names_and_defaults(rng):
    layer = trained(rng, new_batch_weight=0.01, eps=1e-3, unbiased_running_var=False)
    keras = to_framework(layer, "keras", strict=True)
    assert keras.config == {"epsilon": 1e-3, "momentum": 0.99, "center": True, "scale": True}
    assert list(keras.state) == ["gamma", "beta", "moving_mean", "moving_variance"]  # Keras's set_weights order
    np.testing.assert_array_equal(keras.state["moving_variance"], layer.buffers["running_var"])
    flax = to_framework(layer, "flax", strict=True)
    assert flax.config == {"epsilon": 1e-3, "momentum": 0.99, "use_bias": True, "use_scale": True}
    np.testing.assert_array_equal(flax.state["params"]["scale"], layer.params["gamma"])
    np.testing.assert_array_equal(flax.state["batch_stats"]["var"], layer.buffers["running_var"])
    assert from_framework("keras", {}, num_features=3).eps == 1e-3
    assert from_framework("flax", {}, num_features=3).eps == 1e-5


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("affine", [True, False])
def test_round_trip_is_exact(rng, framework, affine):
    layer = trained(rng, affine=affine, unbiased_running_var=framework == "pytorch", new_batch_weight=0.05)
    converted = to_framework(layer, framework, strict=True)
    back = from_framework(framework, converted.config, converted.state, dtype=F64)
    keys = ("eps", "new_batch_weight", "running_average", "unbiased_running_var", "affine", "num_features")
    assert {k: getattr(back, k) for k in keys} == {k: getattr(layer, k) for k in keys}
    for name in layer.params:
        assert np.array_equal(back.params[name], layer.params[name])
    for name in ("running_mean", "running_var"):
        assert np.array_equal(back.buffers[name], layer.buffers[name])


# -- what cannot be expressed ------------------------------------------------------
def test_training_only_differences_are_noted_or_refused_when_strict(rng):
    layer = trained(rng, running_average="ema_debiased")  # unbiased variance, as PyTorch
    converted = to_framework(layer, "keras")
    assert len(converted.notes) == 2
    assert "no start-up bias correction" in converted.notes[0]
    assert "averages the biased one from now on (the stored variance is copied unchanged" in converted.notes[1]
    assert to_framework(trained(rng), "pytorch").notes == ()
    with pytest.raises(ValueError, match=r"to_framework\('flax', strict=True\) cannot express: "
                                         r"running_average='ema_debiased'"):
        to_framework(layer, "flax", strict=True)
    ghost = to_framework(trained(rng, ghost_batch_size=4), "pytorch").notes
    assert ghost == ("ghost_batch_size=4: a bnnet training option with no pytorch setting",)


def test_normalize_with_other_than_auto_is_refused(rng):
    with pytest.raises(ValueError, match=r"to_framework\('pytorch'\) expected normalize_with='auto' .*got 'running'"):
        to_framework(trained(rng, normalize_with="running"), "pytorch")


@pytest.mark.parametrize("args, kwargs, match", [
    (("jax", {}), {}, r"expected framework in \('pytorch', 'keras', 'flax'\), got 'jax'"),
    (("pytorch", {"num_features": 3, "track_running_stats": False}), {},
     r"expected track_running_stats=True, got False.*normalize_with='batch', update_running_stats=False"),
    (("keras", {"renorm": True}), {"num_features": 3}, r"does not convert renorm=True"),
    (("keras", {"virtual_batch_size": 8}), {"num_features": 3}, r"does not convert virtual_batch_size=8"),
    (("keras", {"center": True, "scale": False}), {"num_features": 3},
     r"expected center and scale both on or both off \(bnnet's affine covers both\), got center=True, scale=False"),
    (("flax", {}), {}, r"from_framework\('flax'\) needs num_features=... when no state is given"),
    (("pytorch", {}), {}, r"from_framework\('pytorch'\) needs num_features=... when no state is given"),
    (("pytorch", {"num_features": 2}, {"weight": np.ones(2)}), {},
     r"expected state keys \['bias', 'running_mean', 'running_var', 'weight'\], got \['weight'\]"),
    (("keras", {}, {"gamma": np.ones(3), "beta": np.ones(3), "moving_mean": np.ones(3), "moving_variance": np.ones(2)}),
     {}, r"expected moving_variance of shape \(3,\), got \(2,\)"),
])
def test_from_framework_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_framework(*args, **kwargs)
