"""Float64 central-difference gradient checks with a random upstream gradient.

The checked scalar is ``sum(dy * f(x))`` for a random dy: with an all-ones dy,
batch norm's dx and dgamma are identically zero and the check would prove nothing.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

STEP = 1e-6


def numerical_gradient(scalar: Callable[[], float], array: np.ndarray, step: float = STEP) -> np.ndarray:
    """d scalar() / d array by central differences, perturbing array in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + step
        plus = scalar()
        array[index] = original - step
        minus = scalar()
        array[index] = original
        grad[index] = (plus - minus) / (2 * step)
    return grad


def check_module(module, x: np.ndarray, rng: np.random.Generator, rtol: float = 1e-6, atol: float = 1e-8) -> dict:
    """Compare module.backward's dx and parameter gradients with central differences.

    Returns the analytic gradients (dx under "x") so callers can check more.
    """
    x = np.array(x, dtype=np.float64)
    dy = rng.standard_normal(module.forward(x).shape)
    module.forward(x)
    analytic = {"x": np.array(module.backward(dy))}
    analytic.update({name: np.array(g) for name, g in module.gradients().items()})

    def scalar() -> float:
        return float(np.sum(module.forward(x) * dy))

    np.testing.assert_allclose(analytic["x"], numerical_gradient(scalar, x), rtol=rtol, atol=atol, err_msg="dx")
    for name, param in module.parameters().items():
        if name in analytic:
            np.testing.assert_allclose(analytic[name], numerical_gradient(scalar, param), rtol=rtol, atol=atol,
                                       err_msg=f"d{name}")
    return analytic


def check_network_with_loss(model, loss_fn, x: np.ndarray, target: np.ndarray, rtol: float = 1e-6,
                            atol: float = 1e-8) -> None:
    """Gradient of loss(model(x), target) for every parameter and the input."""
    x = np.array(x, dtype=np.float64)
    loss_fn.forward(model.forward(x), target)
    dx = model.backward(loss_fn.backward())
    grads = {name: np.array(g) for name, g in model.gradients().items()}

    def scalar() -> float:
        return loss_fn.forward(model.forward(x), target)

    np.testing.assert_allclose(dx, numerical_gradient(scalar, x), rtol=rtol, atol=atol, err_msg="dx")
    assert grads, "the model reported no gradients"
    for name, param in model.parameters().items():
        np.testing.assert_allclose(grads[name], numerical_gradient(scalar, param), rtol=rtol, atol=atol,
                                   err_msg=f"d{name}")


def batch_norm_with_state(rng: np.random.Generator, **options):
    """A float64 BatchNorm(3) with non-trivial gamma, beta and running statistics."""
    from bnnet.nn import BatchNorm

    layer = BatchNorm(3, dtype=np.float64, **options)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, 3)
    layer.params["beta"][:] = rng.normal(size=3)
    layer.buffers["running_mean"][:] = rng.normal(size=3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, 3)
    return layer
