"""The optimizers as update rules (optax-style tests, no PyTorch).

Table-driven: every rule reaches the minimum of a parabola and gets near the
minimum of Rosenbrock's function; one exact step per rule against hand
arithmetic; frozen parameters stay untouched; saved state resumes the same
trajectory; every error message is pinned.
"""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.optim import GD, OPTIMIZERS, SGD, Adam, AdamW, RMSProp

# -- convergence ---------------------------------------------------------------
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
CENTER = np.array([1.0, -2.0, 0.5, 3.0])


def parabola_gradient(p: np.ndarray) -> np.ndarray:
    """Gradient of f(p) = 1/2 sum_i h_i (p_i - c_i)^2, whose minimum is p = c."""
    return CURVATURE * (p - CENTER)


def rosenbrock_gradient(p: np.ndarray) -> np.ndarray:
    """Gradient of f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, whose minimum is (1, 1)."""
    x, y = p
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


def descend(optimizer_cls, kwargs, gradient, start, steps) -> np.ndarray:
    params = {"p": np.array(start, dtype=np.float64)}
    optimizer = optimizer_cls(params, **kwargs)
    for _ in range(steps):
        optimizer.step({"p": gradient(params["p"])})
    return params["p"]


# (optimizer, kwargs, steps, tolerance on max |p - c|)
PARABOLA = [
    (GD, {"lr": 0.3}, 200, 1e-10),
    (SGD, {"lr": 0.3}, 300, 1e-10),
    (SGD, {"lr": 0.1, "momentum": 0.9}, 300, 1e-6),
    (SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.5}, 300, 1e-6),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, 300, 1e-9),
    # RMSProp's step lr * g / sqrt(mean g^2) stays ~lr however small g gets, so with a constant
    # learning rate it may end in a limit cycle of amplitude lr / 2 around the minimum (seen with
    # weight decay, where g never becomes exactly 0): tolerance lr. An eps comparable to g near the
    # minimum turns the last steps into gradient descent, which converges exactly.
    (RMSProp, {"lr": 0.01}, 1000, 1e-2),
    (RMSProp, {"lr": 0.01, "eps": 0.1}, 1000, 1e-10),
    (RMSProp, {"lr": 0.01, "momentum": 0.5}, 500, 1e-10),
    (RMSProp, {"lr": 0.01, "centered": True}, 1000, 1e-10),
    (Adam, {"lr": 0.1}, 1000, 1e-10),
    # Decoupled decay pulls p towards 0 by lr * wd * p every step, which with a constant learning
    # rate keeps AdamW in a small band around the minimum (observed 7e-5 after 1000 steps).
    (AdamW, {"lr": 0.1, "weight_decay": 1e-4}, 1000, 1e-3),
]


def rule_id(case) -> str:
    return f"{case[0].__name__}-" + "-".join(f"{k}={v}" for k, v in case[1].items())


def test_every_optimizer_is_in_the_convergence_tables():
    assert {case[0] for case in PARABOLA} == {case[0] for case in ROSENBROCK} == set(OPTIMIZERS.values())


@pytest.mark.parametrize(("optimizer_cls", "kwargs", "steps", "tolerance"), PARABOLA, ids=map(rule_id, PARABOLA))
def test_reaches_the_minimum_of_a_parabola(optimizer_cls, kwargs, steps, tolerance):
    start = np.zeros(4)
    assert np.max(np.abs(start - CENTER)) == 3.0
    final = descend(optimizer_cls, kwargs, parabola_gradient, start, steps)
    np.testing.assert_allclose(final, CENTER, rtol=0, atol=tolerance)


L2_CASES = [
    (GD, {"lr": 0.3, "weight_decay": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    (RMSProp, {"lr": 0.01, "eps": 0.1, "weight_decay": 0.1}),  # eps: see the limit cycle note above
    (Adam, {"lr": 0.1, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("optimizer_cls", "kwargs"), L2_CASES, ids=map(rule_id, L2_CASES))
def test_l2_weight_decay_reaches_the_minimum_of_the_penalised_parabola(optimizer_cls, kwargs):
    """L2 decay adds wd * p to the gradient: the minimum of f + wd/2 |p|^2 is h c / (h + wd)."""
    weight_decay = kwargs["weight_decay"]
    final = descend(optimizer_cls, kwargs, parabola_gradient, np.zeros(4), 2000)
    penalised_minimum = CURVATURE * CENTER / (CURVATURE + weight_decay)
    np.testing.assert_allclose(final, penalised_minimum, rtol=0, atol=1e-9)
    assert np.max(np.abs(final - CENTER)) > 0.05  # and that is measurably not the unpenalised one


ROSENBROCK = [
    (GD, {"lr": 1e-3}, 20000),
    (SGD, {"lr": 1e-3, "momentum": 0.9}, 3000),
    (SGD, {"lr": 1e-3, "momentum": 0.9, "dampening": 0.5}, 5000),
    (SGD, {"lr": 1e-3, "momentum": 0.9, "nesterov": True}, 3000),
    (RMSProp, {"lr": 1e-3}, 10000),
    (RMSProp, {"lr": 3e-4, "momentum": 0.9}, 4000),
    (RMSProp, {"lr": 1e-3, "centered": True}, 10000),
    (Adam, {"lr": 0.02}, 3000),
    (AdamW, {"lr": 0.02, "weight_decay": 1e-4}, 3000),
]


@pytest.mark.parametrize(("optimizer_cls", "kwargs", "steps"), ROSENBROCK, ids=map(rule_id, ROSENBROCK))
def test_gets_near_the_minimum_of_rosenbrock(optimizer_cls, kwargs, steps):
    """From the classic start (-1.2, 1), along the curved valley, to within 0.01 of (1, 1)."""
    final = descend(optimizer_cls, kwargs, rosenbrock_gradient, [-1.2, 1.0], steps)
    assert np.linalg.norm(final - 1.0) < 1e-2, final


# -- one exact step against hand arithmetic ------------------------------------------
def run_steps(optimizer_cls, kwargs, start, gradients) -> tuple[np.ndarray, object]:
    params = {"p": np.array(start, dtype=np.float64)}
    optimizer = optimizer_cls(params, **kwargs)
    for grad in gradients:
        optimizer.step({"p": np.array(grad, dtype=np.float64)})
    return params["p"], optimizer


def test_gd_step_by_hand():
    # g + wd p = [0.5 + 0.2 * 1, -1 + 0.2 * -2] = [0.7, -1.4];  p - 0.1 * that = [0.93, -1.86]
    p, _ = run_steps(GD, {"lr": 0.1, "weight_decay": 0.2}, [1.0, -2.0], [[0.5, -1.0]])
    np.testing.assert_allclose(p, [0.93, -1.86], rtol=1e-15)


def test_sgd_momentum_dampening_steps_by_hand():
    # step 1: v = g = 0.5 (no dampening on the first step, as PyTorch);  p = 1 - 0.1 * 0.5 = 0.95
    p, optimizer = run_steps(SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, [1.0], [[0.5]])
    np.testing.assert_allclose(p, [0.95], rtol=1e-15)
    # step 2: v = 0.9 * 0.5 + (1 - 0.5) * -1 = -0.05;  p = 0.95 - 0.1 * -0.05 = 0.955
    optimizer.step({"p": np.array([-1.0])})
    np.testing.assert_allclose(optimizer.state["p"]["velocity"], [-0.05], rtol=1e-14)
    np.testing.assert_allclose(p, [0.955], rtol=1e-15)


def test_sgd_nesterov_steps_by_hand():
    # step 1: v = 0.5;  d = g + 0.9 v = 0.95;  p = 1 - 0.1 * 0.95 = 0.905
    # step 2: v = 0.9 * 0.5 - 1 = -0.55;  d = -1 + 0.9 * -0.55 = -1.495;  p = 0.905 + 0.1495 = 1.0545
    p, _ = run_steps(SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, [1.0], [[0.5], [-1.0]])
    np.testing.assert_allclose(p, [1.0545], rtol=1e-15)


def test_rmsprop_step_by_hand():
    # s = (1 - 0.9) g^2 = [0.4, 0.025];  denom = sqrt(s) + eps = [0.6324555320 + 0.1, 0.1581138830 + 0.1]
    # p - 0.01 * g / denom = [1 - 0.02 / 0.7324555320, -2 + 0.005 / 0.2581138830]
    #                      = [1 - 0.0273054119, -2 + 0.0193712943] = [0.9726945881, -1.9806287057]
    p, optimizer = run_steps(RMSProp, {"lr": 0.01, "alpha": 0.9, "eps": 0.1}, [1.0, -2.0], [[2.0, -0.5]])
    np.testing.assert_allclose(optimizer.state["p"]["square_avg"], [0.4, 0.025], rtol=1e-15)
    np.testing.assert_allclose(p, [1.0 - 0.02 / (np.sqrt(0.4) + 0.1), -2.0 + 0.005 / (np.sqrt(0.025) + 0.1)],
                               rtol=1e-15)
    np.testing.assert_allclose(p, [0.9726945881, -1.9806287057], rtol=1e-10)


def test_rmsprop_centered_momentum_steps_by_hand():
    # step 1, g = 2: s = 0.1 * 4 = 0.4, a = 0.1 * 2 = 0.2, denom = sqrt(0.4 - 0.04) = 0.6 (eps = 0)
    #   v = 2 / 0.6 = 3.333...;  p = 1 - 0.01 * 3.333... = 0.966666...
    # step 2, g = -1: s = 0.36 + 0.1 = 0.46, a = 0.18 - 0.1 = 0.08, denom = sqrt(0.46 - 0.0064) = sqrt(0.4536)
    #   v = 0.5 * 3.3333333333 - 1 / 0.6734983296 = 1.6666666667 - 1.4847846773 = 0.1818819894
    #   p = 0.9666666667 - 0.01 * 0.1818819894 = 0.9648478468
    kwargs = {"lr": 0.01, "alpha": 0.9, "eps": 0.0, "centered": True, "momentum": 0.5}
    p, optimizer = run_steps(RMSProp, kwargs, [1.0], [[2.0]])
    np.testing.assert_allclose(p, [1.0 - 0.01 * 2.0 / 0.6], rtol=1e-15)
    optimizer.step({"p": np.array([-1.0])})
    np.testing.assert_allclose(optimizer.state["p"]["grad_avg"], [0.08], rtol=1e-14)
    np.testing.assert_allclose(optimizer.state["p"]["square_avg"], [0.46], rtol=1e-15)
    np.testing.assert_allclose(optimizer.state["p"]["velocity"], [1.0 / 0.6 - 1.0 / np.sqrt(0.4536)], rtol=1e-14)
    np.testing.assert_allclose(p, [0.9648478468], rtol=1e-10)


def test_adam_steps_by_hand():
    # step 1, g = 2: m = 0.1 * 2 = 0.2, v = 0.01 * 4 = 0.04; corrected: m/(1-0.9) = 2, sqrt(v/(1-0.99)) = 2
    #   p = 1 - 0.1 * 2 / (2 + 0.5) = 0.92   (eps = 0.5 is visible)
    p, optimizer = run_steps(Adam, {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 0.5}, [1.0], [[2.0]])
    np.testing.assert_allclose(p, [0.92], rtol=1e-15)
    # step 2, g = -1: m = 0.18 - 0.1 = 0.08, v = 0.0396 + 0.01 = 0.0496
    #   m / (1 - 0.81) = 0.4210526316;  sqrt(0.0496 / (1 - 0.9801)) = sqrt(2.4924623116) = 1.5787534043
    #   p = 0.92 - 0.1 * 0.4210526316 / (1.5787534043 + 0.5) = 0.92 - 0.0202550543 = 0.8997449457
    optimizer.step({"p": np.array([-1.0])})
    np.testing.assert_allclose(optimizer.state["p"]["exp_avg"], [0.08], rtol=1e-14)
    np.testing.assert_allclose(optimizer.state["p"]["exp_avg_sq"], [0.0496], rtol=1e-14)
    np.testing.assert_allclose(p, [0.92 - 0.1 * (0.08 / 0.19) / (np.sqrt(0.0496 / 0.0199) + 0.5)], rtol=1e-15)
    np.testing.assert_allclose(p, [0.8997449457], rtol=1e-10)


def test_adam_l2_weight_decay_step_by_hand():
    # L2: g' = g + wd p = 2 + 0.5 * 4 = 4 enters the moments; first step moves lr * g'/(|g'| + eps)
    #   p = 4 - 0.1 * 4 / (4 + 1) = 3.92
    p, optimizer = run_steps(Adam, {"lr": 0.1, "eps": 1.0, "weight_decay": 0.5}, [4.0], [[2.0]])
    np.testing.assert_allclose(optimizer.state["p"]["exp_avg"], [0.1 * 4.0], rtol=1e-15)
    np.testing.assert_allclose(p, [3.92], rtol=1e-15)


def test_adamw_step_by_hand():
    # decoupled: p = 4 * (1 - 0.1 * 0.5) = 3.8 first; the moments see g = 2 only:
    #   p = 3.8 - 0.1 * 2 / (2 + 1) = 3.733333...
    p, optimizer = run_steps(AdamW, {"lr": 0.1, "eps": 1.0, "weight_decay": 0.5}, [4.0], [[2.0]])
    np.testing.assert_allclose(optimizer.state["p"]["exp_avg"], [0.1 * 2.0], rtol=1e-15)
    np.testing.assert_allclose(p, [3.8 - 0.2 / 3.0], rtol=1e-15)


# -- frozen parameters and saved state ----------------------------------------------
STATEFUL = [
    (GD, {"lr": 0.1, "weight_decay": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (RMSProp, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    (Adam, {"lr": 0.05, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.05, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("optimizer_cls", "kwargs"), STATEFUL, ids=map(rule_id, STATEFUL))
def test_frozen_parameters_are_untouched(rng, optimizer_cls, kwargs):
    """A parameter absent from the gradients is not changed, not even by weight decay."""
    params = {"trained": rng.normal(size=(3, 2)), "frozen": rng.normal(size=4)}
    frozen_before = params["frozen"].copy()
    trained_before = params["trained"].copy()
    optimizer = optimizer_cls(params, **kwargs)
    for _ in range(5):
        optimizer.step({"trained": rng.normal(size=(3, 2))})
    assert np.array_equal(params["frozen"], frozen_before)
    assert optimizer.state["frozen"] == {}
    assert not np.allclose(params["trained"], trained_before)


def test_frozen_batch_norm_affine_in_a_network_is_untouched(rng):
    """train_affine=False: gamma and beta get no gradient, so AdamW's decay leaves them alone."""
    model = bnnet.mlp([4, 6, 3], dtype=np.float64, rng=rng, batch_norm_options={"train_affine": False})
    before = {name: value.copy() for name, value in model.parameters().items()}
    optimizer = AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    loss_fn = bnnet.SoftmaxCrossEntropy()
    for _ in range(3):
        loss_fn.forward(model.forward(rng.normal(size=(8, 4))), rng.integers(0, 3, size=8))
        model.backward(loss_fn.backward())
        assert "1.gamma" not in model.gradients() and "1.beta" not in model.gradients()
        optimizer.step(model.gradients())
    after = model.parameters()
    assert np.array_equal(after["1.gamma"], before["1.gamma"])
    assert np.array_equal(after["1.beta"], before["1.beta"])
    assert not np.array_equal(after["0.weight"], before["0.weight"])


@pytest.mark.parametrize(("optimizer_cls", "kwargs"), STATEFUL, ids=map(rule_id, STATEFUL))
def test_saved_state_continues_the_identical_trajectory(optimizer_cls, kwargs):
    def gradients(params):
        return {"p": parabola_gradient(params["p"]), "q": 0.5 * params["q"] - 1.0}

    params = {"p": np.zeros(4), "q": np.full((2, 2), 3.0)}
    optimizer = optimizer_cls(params, **kwargs)
    for _ in range(7):
        optimizer.step(gradients(params))
    saved_steps = optimizer.steps
    saved_state = {key: value.copy() for key, value in optimizer.state_arrays().items()}  # views: copy
    saved_params = {name: value.copy() for name, value in params.items()}
    for _ in range(9):
        optimizer.step(gradients(params))

    resumed_params = {name: value.copy() for name, value in saved_params.items()}
    resumed = optimizer_cls(resumed_params, **kwargs)
    resumed.load_state(saved_steps, saved_state)
    for _ in range(9):
        resumed.step(gradients(resumed_params))
    assert resumed.steps == optimizer.steps == 16  # the step count is restored too (Adam's 1 - beta^t)
    for name in params:
        assert np.array_equal(resumed_params[name], params[name]), name  # bit for bit

    # Without the saved state (fresh moments, step count 0) the trajectory differs, so the check bites.
    if saved_state:
        fresh_params = {name: value.copy() for name, value in saved_params.items()}
        fresh = optimizer_cls(fresh_params, **kwargs)
        for _ in range(9):
            fresh.step(gradients(fresh_params))
        assert not np.allclose(fresh_params["p"], params["p"], rtol=1e-6, atol=0)


# -- error messages ------------------------------------------------------------------
@pytest.mark.parametrize("optimizer_cls", list(OPTIMIZERS.values()))
@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf")])
def test_rejects_a_bad_learning_rate(optimizer_cls, lr):
    with pytest.raises(ValueError, match=rf"^{optimizer_cls.__name__} expected a finite learning rate >= 0, got {lr}$"):
        optimizer_cls({"p": np.zeros(2)}, lr=lr)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"momentum": -0.5}, r"^SGD expected momentum >= 0, got -0\.5$"),
    ({"nesterov": True}, r"^SGD with nesterov=True expected momentum > 0 and dampening = 0, got momentum=0\.0, dampening=0\.0$"),
    ({"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     r"^SGD with nesterov=True expected momentum > 0 and dampening = 0, got momentum=0\.9, dampening=0\.1$"),
])
def test_sgd_rejects_bad_momentum_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD({"p": np.zeros(2)}, lr=0.1, **kwargs)


@pytest.mark.parametrize("optimizer_cls", [Adam, AdamW])
@pytest.mark.parametrize(("name", "value"), [("beta1", 1.0), ("beta1", -0.1), ("beta2", 1.5), ("beta2", -0.01)])
def test_adam_rejects_bad_betas(optimizer_cls, name, value):
    with pytest.raises(ValueError, match=rf"^{optimizer_cls.__name__} expected 0 <= {name} < 1, got {value}$"):
        optimizer_cls({"p": np.zeros(2)}, **{name: value})


@pytest.mark.parametrize("alpha", [1.0, -0.5])
def test_rmsprop_rejects_a_bad_alpha(alpha):
    with pytest.raises(ValueError, match=rf"^RMSProp expected 0 <= alpha < 1, got {alpha}$"):
        RMSProp({"p": np.zeros(2)}, alpha=alpha)


@pytest.mark.parametrize("optimizer_cls", list(OPTIMIZERS.values()))
def test_rejects_gradients_for_unknown_parameters_and_changes_nothing(optimizer_cls):
    params = {"weight": np.ones(2)}
    optimizer = optimizer_cls(params, lr=0.1)
    grads = {"weight": np.ones(2), "wieght": np.ones(2), "bias": np.ones(1)}
    with pytest.raises(KeyError, match=r"gradients for parameters the optimizer does not hold: \['bias', 'wieght'\]"):
        optimizer.step(grads)
    assert optimizer.steps == 0 and np.array_equal(params["weight"], np.ones(2))


def test_load_state_rejects_an_unknown_parameter():
    optimizer = Adam({"weight": np.ones(2)})
    with pytest.raises(KeyError, match=r"optimizer state for unknown parameter 'bias'"):
        optimizer.load_state(3, {"bias/exp_avg": np.zeros(1)})


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda p: bnnet.optim.GD(p, weight_decay=-1.0), "GD expected weight_decay >= 0, got -1.0"),
        (lambda p: bnnet.optim.RMSProp(p, momentum=-0.5), "RMSProp expected momentum >= 0, got -0.5"),
        (lambda p: bnnet.optim.RMSProp(p, eps=-1e-8), "RMSProp expected eps >= 0"),
        (lambda p: bnnet.optim.Adam(p, weight_decay=-0.1), "Adam expected weight_decay >= 0, got -0.1"),
        (lambda p: bnnet.optim.AdamW(p, eps=float("nan")), "AdamW expected eps >= 0, got nan"),
    ],
)
def test_negative_settings_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build({"w": np.zeros(2)})


def test_adam_counts_steps_per_parameter(torch):
    """A parameter frozen for the first steps gets the bias correction of its own history, as in PyTorch."""
    start = {"a": np.array([1.0, -2.0]), "b": np.array([0.5, 3.0])}
    params = {k: v.copy() for k, v in start.items()}
    optimizer = bnnet.optim.Adam(params, lr=0.1)
    torch_params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in start.items()}
    torch_optimizer = torch.optim.Adam(list(torch_params.values()), lr=0.1)
    for step in range(6):
        names = ["a"] if step < 3 else ["a", "b"]  # "b" is frozen for three steps
        grads = {name: np.cos(params[name] + step) for name in names}
        optimizer.step(grads)
        torch_optimizer.zero_grad(set_to_none=True)
        for name in names:
            torch_params[name].grad = torch.tensor(np.cos(torch_params[name].detach().numpy() + step))
        torch_optimizer.step()
    for name in start:
        np.testing.assert_allclose(params[name], torch_params[name].detach().numpy(), rtol=1e-12)
    assert int(optimizer.state["b"]["step"]) == 3 and int(optimizer.state["a"]["step"]) == 6
