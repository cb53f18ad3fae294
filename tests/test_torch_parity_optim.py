"""Every bnnet optimizer against ``torch.optim`` over 60 steps, float64, relative 1e-10.

Both sides start from the same parameters and compute each step's gradient
from *their own* current parameters with the same deterministic rule, a fixed
quadratic plus a seeded stream of noise::

    g_t = curvature * (p_t - target) + noise_t

so the gradient depends on the trajectory (a wrong update changes every later
gradient) and never settles to exactly zero (which would hide eps handling).
"""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm

STEPS = 60
RTOL = 1e-10
SHAPES = {"weight": (4, 3), "bias": (3,)}

# (id, bnnet optimizer and kwargs, torch optimizer name and kwargs, {bnnet state slot: torch state key})
CASES = [
    ("gd", bnnet.GD, {"lr": 0.1}, "SGD", {"lr": 0.1}, {}),
    ("gd-weight-decay", bnnet.GD, {"lr": 0.1, "weight_decay": 0.05},
     "SGD", {"lr": 0.1, "weight_decay": 0.05}, {}),
    ("sgd", bnnet.SGD, {"lr": 0.05}, "SGD", {"lr": 0.05}, {}),
    ("sgd-momentum", bnnet.SGD, {"lr": 0.05, "momentum": 0.9},
     "SGD", {"lr": 0.05, "momentum": 0.9}, {"velocity": "momentum_buffer"}),
    ("sgd-dampening", bnnet.SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
     "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}, {"velocity": "momentum_buffer"}),
    ("sgd-nesterov", bnnet.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True},
     "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {"velocity": "momentum_buffer"}),
    ("sgd-momentum-weight-decay", bnnet.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
     "SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}, {"velocity": "momentum_buffer"}),
    ("rmsprop", bnnet.RMSProp, {"lr": 0.01}, "RMSprop", {"lr": 0.01}, {"square_avg": "square_avg"}),
    ("rmsprop-alpha-eps", bnnet.RMSProp, {"lr": 0.01, "alpha": 0.9, "eps": 1e-3},
     "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-3}, {"square_avg": "square_avg"}),
    ("rmsprop-momentum", bnnet.RMSProp, {"lr": 0.01, "momentum": 0.8},
     "RMSprop", {"lr": 0.01, "momentum": 0.8}, {"square_avg": "square_avg", "velocity": "momentum_buffer"}),
    ("rmsprop-centered", bnnet.RMSProp, {"lr": 0.01, "centered": True},
     "RMSprop", {"lr": 0.01, "centered": True}, {"square_avg": "square_avg", "grad_avg": "grad_avg"}),
    ("rmsprop-centered-momentum", bnnet.RMSProp, {"lr": 0.01, "centered": True, "momentum": 0.7},
     "RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.7},
     {"square_avg": "square_avg", "grad_avg": "grad_avg", "velocity": "momentum_buffer"}),
    ("rmsprop-weight-decay", bnnet.RMSProp, {"lr": 0.01, "weight_decay": 0.1},
     "RMSprop", {"lr": 0.01, "weight_decay": 0.1}, {"square_avg": "square_avg"}),
    ("adam", bnnet.Adam, {"lr": 0.05}, "Adam", {"lr": 0.05}, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "step": "step"}),
    ("adam-betas", bnnet.Adam, {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-4},
     "Adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-4}, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "step": "step"}),
    ("adam-weight-decay", bnnet.Adam, {"lr": 0.05, "weight_decay": 0.1},
     "Adam", {"lr": 0.05, "weight_decay": 0.1}, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "step": "step"}),
    ("adamw", bnnet.AdamW, {"lr": 0.05}, "AdamW", {"lr": 0.05},  # both default to weight_decay=0.01
     {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "step": "step"}),
    ("adamw-strong-decay", bnnet.AdamW, {"lr": 0.05, "weight_decay": 0.5},
     "AdamW", {"lr": 0.05, "weight_decay": 0.5}, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "step": "step"}),
]


class GradientRule:
    """g_t = curvature * (p - target) + noise_t, per parameter, from a fixed seed."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.curvature = {name: rng.uniform(0.3, 3.0, shape) for name, shape in SHAPES.items()}
        self.target = {name: rng.normal(size=shape) for name, shape in SHAPES.items()}
        self.noise = [{name: rng.normal(scale=0.3, size=shape) for name, shape in SHAPES.items()}
                      for _ in range(STEPS)]
        self.start = {name: rng.normal(scale=2.0, size=shape) for name, shape in SHAPES.items()}

    def __call__(self, step: int, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: self.curvature[name] * (params[name] - self.target[name]) + self.noise[step][name]
                for name in SHAPES}


@pytest.mark.parametrize(("ours_cls", "ours_kwargs", "torch_cls", "torch_kwargs", "slots"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_trajectory_matches_torch(torch, ours_cls, ours_kwargs, torch_cls, torch_kwargs, slots):
    rule = GradientRule()
    params = {name: value.copy() for name, value in rule.start.items()}
    optimizer = ours_cls(params, **ours_kwargs)
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in rule.start.items()}
    optimizer_t = getattr(torch.optim, torch_cls)(list(tensors.values()), **torch_kwargs)
    for step in range(STEPS):
        optimizer.step(rule(step, params))
        for name, grad in rule(step, {n: t.detach().numpy() for n, t in tensors.items()}).items():
            tensors[name].grad = torch.tensor(grad)
        optimizer_t.step()
        for name, value in params.items():
            np.testing.assert_allclose(value, tensors[name].detach().numpy(), rtol=RTOL,
                                       err_msg=f"{name} after step {step + 1}")
    for name, tensor in tensors.items():
        assert set(optimizer.state[name]) == set(slots)
        for slot, torch_key in slots.items():
            np.testing.assert_allclose(optimizer.state[name][slot], optimizer_t.state[tensor][torch_key].numpy(),
                                       rtol=RTOL, err_msg=f"{name}/{slot}")
    # The trajectory went somewhere: parameters moved far from their start.
    assert max(np.max(np.abs(params[name] - rule.start[name])) for name in params) > 0.5


def test_end_to_end_mlp_adam_matches_torch(torch, rng):
    """The same mlp trained 50 Adam steps on the same batches: parameters and running stats agree."""
    model = bnnet.mlp([20, 16, 16, 5], activation="tanh", dtype=np.float64, rng=rng)
    names = {name: name.replace("gamma", "weight").replace("beta", "bias")
             for name in {**model.parameters(), **model.named_buffers()}}
    layers = []
    for layer in model.layers:
        if isinstance(layer, bnnet.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.has_bias,
                                          dtype=torch.float64))
        elif isinstance(layer, BatchNorm):
            layers.append(torch.nn.BatchNorm1d(layer.num_features, momentum=layer.new_batch_weight,
                                               dtype=torch.float64))
        else:
            layers.append(torch.nn.Tanh())
    twin = torch.nn.Sequential(*layers)
    twin.load_state_dict({names[name]: torch.tensor(value) for name, value in
                          {**model.parameters(), **model.named_buffers()}.items()})
    loss_fn = bnnet.SoftmaxCrossEntropy()
    optimizer = bnnet.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    optimizer_t = torch.optim.Adam(twin.parameters(), lr=0.01, weight_decay=1e-3)
    centers = rng.normal(scale=2.0, size=(5, 20))  # a learnable task: class-dependent means
    losses = []
    for _ in range(50):
        labels = rng.integers(0, 5, size=24)
        x = centers[labels] + rng.normal(size=(24, 20))
        losses.append(loss_fn.forward(model.forward(x), labels))
        model.backward(loss_fn.backward())
        optimizer.step(model.gradients())
        optimizer_t.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(labels))
        loss_t.backward()
        optimizer_t.step()
        np.testing.assert_allclose(losses[-1], loss_t.item(), rtol=RTOL)
    assert losses[-1] < 0.5 * losses[0]  # it learned, so the comparison covers a real trajectory
    theirs = twin.state_dict()
    for name, value in {**model.parameters(), **model.named_buffers()}.items():
        expected = theirs[names[name]].numpy()
        # atol: 1e-13 of the array's largest entry (the worst difference seen is ~7e-16 of it) for
        # entries that pass near zero, whose own relative error can reach ~1e-13 (see
        # test_torch_parity_layers: rounding differences scale with the array, not the entry).
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=1e-13 * np.max(np.abs(expected)),
                                   err_msg=name)
