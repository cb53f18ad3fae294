"""bnnet's layers, losses and a whole network against PyTorch as a second oracle.

Every comparison feeds both libraries the same numbers (weights copied across)
and a *random* upstream gradient: an all-ones one makes batch norm's dx and
dgamma identically zero, so it would prove nothing.

Tolerances: relative 1e-10 in float64, 1e-5 in float32. Where a quantity is a
difference of nearly equal terms (batch norm's centred outputs, its dx, whose
entries sum to zero per channel; softmax-minus-one-hot), an element can be far
smaller than the terms it came from, and both libraries' rounding errors are
of the size of those terms, not of the element. So ``atol`` is a factor times
the largest magnitude of the reference array (``scaled_atol``), never a fixed
absolute number. The factors are as small as the data allow: over 20 random
batch-norm trials the worst difference relative to the array's maximum was
about 2e-15 in float64 (factor 1e-13, ~50x margin) and 7e-7 in float32 (factor
1e-5, ~15x margin), while single elements near zero differed relatively by up
to 2e-12 and 9e-4 (so a purely relative check would fail in float32).
"""
from __future__ import annotations

import numpy as np
import pytest

import bnnet
from bnnet.nn import BatchNorm, Linear, ReLU, Sigmoid, Tanh

F64, F32 = np.float64, np.float32
RTOL = {F64: 1e-10, F32: 1e-5}
ATOL_FACTOR = {F64: 1e-13, F32: 1e-5}
DTYPES = [F64, F32]


def scaled_atol(reference: np.ndarray, dtype) -> float:
    """ATOL_FACTOR times the array's largest magnitude (see the module docstring for why)."""
    return ATOL_FACTOR[dtype] * float(np.max(np.abs(reference)))


def assert_close(actual, expected, dtype) -> None:
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=scaled_atol(expected, dtype))


def tensor(torch, array, requires_grad: bool = False):
    """A torch tensor with the array's dtype (float64 stays float64)."""
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def numpy_of(t) -> np.ndarray:
    return t.detach().numpy()


def torch_batch_norm(torch, shape, dtype, **kwargs):
    cls = torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d
    return cls(shape[1], dtype=getattr(torch, np.dtype(dtype).name), **kwargs)


def random_batch(rng, shape, dtype) -> np.ndarray:
    """Channels with their own means (up to +-4) and scales (0.5 to 3): the statistics matter."""
    channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    means = rng.uniform(-4.0, 4.0, size=channel)
    scales = rng.uniform(0.5, 3.0, size=channel)
    return (means + scales * rng.standard_normal(shape)).astype(dtype)


def paired_batch_norm(torch, rng, shape, dtype, affine=True, bn_kwargs=None, torch_kwargs=None):
    """A bnnet BatchNorm and a torch BatchNorm{1,2}d with the same random gamma and beta."""
    ours = BatchNorm(shape[1], affine=affine, dtype=dtype, **(bn_kwargs or {}))
    theirs = torch_batch_norm(torch, shape, dtype, affine=affine, **(torch_kwargs or {}))
    if affine:
        ours.params["gamma"][:] = rng.uniform(0.5, 2.0, shape[1])
        ours.params["beta"][:] = rng.normal(size=shape[1])
        with torch.no_grad():
            theirs.weight.copy_(tensor(torch, ours.params["gamma"]))
            theirs.bias.copy_(tensor(torch, ours.params["beta"]))
    return ours, theirs


def forward_backward_both(torch, ours, theirs, x, dy):
    """Run one forward and backward through both; return both (y, dx) pairs."""
    y = ours.forward(x)
    dx = ours.backward(dy)
    x_t = tensor(torch, x, requires_grad=True)
    y_t = theirs(x_t)
    y_t.backward(tensor(torch, dy))
    return (y, dx), (numpy_of(y_t), numpy_of(x_t.grad))


def assert_affine_grads_match(ours, theirs, dtype) -> None:
    assert_close(ours.grads["gamma"], numpy_of(theirs.weight.grad), dtype)
    assert_close(ours.grads["beta"], numpy_of(theirs.bias.grad), dtype)
    theirs.weight.grad = None
    theirs.bias.grad = None


SHAPES = [(32, 6), (8, 4, 5, 3)]


# -- batch norm: one training step ----------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_step(torch, rng, dtype, shape, affine):
    ours, theirs = paired_batch_norm(torch, rng, shape, dtype, affine=affine)
    x = random_batch(rng, shape, dtype)
    dy = rng.normal(size=shape).astype(dtype)
    (y, dx), (y_t, dx_t) = forward_backward_both(torch, ours, theirs, x, dy)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, dtype)
    assert_close(dx, dx_t, dtype)
    if affine:
        assert_affine_grads_match(ours, theirs, dtype)
    else:
        assert ours.params == {} and ours.grads == {}
    assert_close(ours.buffers["running_mean"], numpy_of(theirs.running_mean), dtype)
    assert_close(ours.buffers["running_var"], numpy_of(theirs.running_var), dtype)


# -- batch norm: running statistics over several steps, then eval --------------
RUNNING = [
    pytest.param({"new_batch_weight": 0.1}, {"momentum": 0.1}, id="ema-0.1"),
    pytest.param({"new_batch_weight": 0.35}, {"momentum": 0.35}, id="ema-0.35"),
    pytest.param({"running_average": "cumulative"}, {"momentum": None}, id="cumulative"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize(("bn_kwargs", "torch_kwargs"), RUNNING)
def test_batch_norm_running_statistics_then_eval(torch, rng, dtype, shape, bn_kwargs, torch_kwargs):
    ours, theirs = paired_batch_norm(torch, rng, shape, dtype, bn_kwargs=bn_kwargs, torch_kwargs=torch_kwargs)
    def step_and_compare():
        x = random_batch(rng, shape, dtype)
        dy = rng.normal(size=shape).astype(dtype)
        (y, dx), (y_t, dx_t) = forward_backward_both(torch, ours, theirs, x, dy)
        assert_close(y, y_t, dtype)
        assert_close(dx, dx_t, dtype)
        assert_affine_grads_match(ours, theirs, dtype)

    for _ in range(6):  # different batches, with different channel means and scales each time
        step_and_compare()
    assert int(ours.buffers["num_batches_tracked"]) == int(theirs.num_batches_tracked) == 6
    assert_close(ours.buffers["running_mean"], numpy_of(theirs.running_mean), dtype)
    assert_close(ours.buffers["running_var"], numpy_of(theirs.running_var), dtype)
    # The running statistics moved well away from their start (0, 1), so eval differs from training.
    assert np.max(np.abs(ours.buffers["running_mean"])) > 0.2

    ours.eval()
    theirs.eval()
    step_and_compare()
    assert int(ours.buffers["num_batches_tracked"]) == 6  # eval moved nothing


def test_biased_running_variance_matches_closed_form(rng):
    """unbiased_running_var=False (Keras/Flax) has no PyTorch switch: check the closed form.

    After k EMA updates with weight w from the initial variance 1::

        running_var_k = (1 - w)^k * 1 + sum_j w (1 - w)^(k - j) var_j

    with var_j the *biased* variance (divide by m) of batch j; the mean likewise from 0.
    """
    w, shape, steps = 0.25, (10, 3, 2, 2), 7
    layer = BatchNorm(3, new_batch_weight=w, unbiased_running_var=False, dtype=F64)
    means, variances = [], []
    for _ in range(steps):
        x = random_batch(rng, shape, F64)
        layer.forward(x)
        means.append(x.mean(axis=(0, 2, 3)))
        variances.append(x.var(axis=(0, 2, 3)))  # ddof=0: biased
    weights = np.array([w * (1 - w) ** (steps - j) for j in range(1, steps + 1)])
    expected_mean = weights @ np.array(means)
    expected_var = (1 - w) ** steps + weights @ np.array(variances)
    np.testing.assert_allclose(layer.buffers["running_mean"], expected_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], expected_var, rtol=1e-12)
    # And it really is the biased one: the unbiased estimate would be m/(m-1) = 40/39 larger per batch.
    unbiased = (1 - w) ** steps + weights @ (np.array(variances) * 40 / 39)
    assert np.all(np.abs(layer.buffers["running_var"] - unbiased) > 1e-3)


# -- Linear -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(torch, rng, dtype, bias):
    ours = Linear(7, 5, bias=bias, rng=rng, dtype=dtype)
    theirs = torch.nn.Linear(7, 5, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    if bias:
        ours.params["bias"][:] = rng.normal(size=5)
    with torch.no_grad():
        theirs.weight.copy_(tensor(torch, ours.params["weight"]))
        if bias:
            theirs.bias.copy_(tensor(torch, ours.params["bias"]))
    x = rng.normal(size=(9, 7)).astype(dtype)
    dy = rng.normal(size=(9, 5)).astype(dtype)
    (y, dx), (y_t, dx_t) = forward_backward_both(torch, ours, theirs, x, dy)
    assert_close(y, y_t, dtype)
    assert_close(dx, dx_t, dtype)
    assert_close(ours.grads["weight"], numpy_of(theirs.weight.grad), dtype)
    if bias:
        assert_close(ours.grads["bias"], numpy_of(theirs.bias.grad), dtype)
    else:
        assert "bias" not in ours.grads


# -- activations and losses ----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("ours_cls", "torch_name"), [(Sigmoid, "Sigmoid"), (Tanh, "Tanh"), (ReLU, "ReLU")])
def test_activation(torch, rng, dtype, ours_cls, torch_name):
    x = rng.normal(scale=3.0, size=(6, 5))
    # Saturated values (sigmoid of -40 is ~4e-18: relative precision must survive) and ReLU's
    # kink, where both libraries take the derivative at exactly 0 to be 0.
    x[0, :] = [-40.0, -15.0, 0.0, 15.0, 40.0]
    x = x.astype(dtype)
    dy = rng.normal(size=x.shape).astype(dtype)
    (y, dx), (y_t, dx_t) = forward_backward_both(torch, ours_cls(), getattr(torch.nn, torch_name)(), x, dy)
    # Outputs: elementwise, no cancellation, so a purely relative check (it pins sigmoid(-40) ~ 4e-18
    # to full relative precision); the atol of 1e-300 only lets exact zeros (ReLU) compare equal.
    np.testing.assert_allclose(y, y_t, rtol=RTOL[dtype], atol=1e-300)
    # Derivatives are computed from the output: 1 - y^2 and y (1 - y) cancel where y saturates near
    # 1, so a one-ulp difference in y (numpy's and torch's tanh may round differently) becomes an
    # absolute error of about 2 ulp(1) |dy| in dx. Hence atol = 4 eps max|dy| (about 1e-6 in float32).
    np.testing.assert_allclose(dx, dx_t, rtol=RTOL[dtype], atol=4 * np.finfo(dtype).eps * np.max(np.abs(dy)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 1000.0], ids=["moderate", "logits-of-1000"])
def test_softmax_cross_entropy(torch, rng, dtype, scale):
    logits = (scale * rng.normal(size=(12, 7))).astype(dtype)
    if scale > 1:
        logits[0] = [1000.0, -1000.0, 999.0, 0.0, 1000.0, -5.0, 3.0]  # exp(1000) overflows unshifted
    labels = rng.integers(0, 7, size=12)
    labels[0] = 1  # the label with logit -1000: loss about 2000, finite
    loss_fn = bnnet.SoftmaxCrossEntropy()
    loss = loss_fn.forward(logits, labels)
    dlogits = loss_fn.backward()
    logits_t = tensor(torch, logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(labels))
    loss_t.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, loss_t.item(), rtol=RTOL[dtype])
    assert_close(dlogits, numpy_of(logits_t.grad), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("integer_labels", [False, True])
def test_mean_squared_error(torch, rng, dtype, integer_labels):
    prediction = rng.normal(size=(10, 4)).astype(dtype)
    if integer_labels:  # bnnet one-hot encodes class labels; torch is given the one-hot target
        target = rng.integers(0, 4, size=10)
        target_t = torch.nn.functional.one_hot(torch.tensor(target), 4).to(getattr(torch, np.dtype(dtype).name))
    else:
        target = rng.normal(size=(10, 4)).astype(dtype)
        target_t = tensor(torch, target)
    loss_fn = bnnet.MeanSquaredError()
    loss = loss_fn.forward(prediction, target)
    prediction_t = tensor(torch, prediction, requires_grad=True)
    loss_t = torch.nn.functional.mse_loss(prediction_t, target_t)
    loss_t.backward()
    np.testing.assert_allclose(loss, loss_t.item(), rtol=RTOL[dtype])
    assert_close(loss_fn.backward(), numpy_of(prediction_t.grad), dtype)


# -- a whole network trained for 5 SGD steps --------------------------------
TORCH_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU"}


def torch_twin(torch, model: bnnet.Sequential, activation: str):
    """The nn.Sequential equivalent of ``bnnet.mlp`` with every parameter and buffer copied.

    Layer indices coincide, so bnnet's "1.gamma" is torch's "1.weight" (see ``torch_name``).
    """
    layers = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.has_bias,
                                          dtype=torch.float64))
        elif isinstance(layer, BatchNorm):
            layers.append(torch.nn.BatchNorm1d(layer.num_features, eps=layer.eps,
                                               momentum=layer.new_batch_weight, dtype=torch.float64))
        else:
            layers.append(getattr(torch.nn, TORCH_ACTIVATIONS[activation])())
    twin = torch.nn.Sequential(*layers)
    state = {torch_name(name): tensor(torch, value)
             for name, value in {**model.parameters(), **model.named_buffers()}.items()}
    twin.load_state_dict(state, strict=True)
    return twin


def torch_name(name: str) -> str:
    return name.replace("gamma", "weight").replace("beta", "bias")


def assert_network_state_matches(model, twin) -> None:
    theirs = {name: numpy_of(value) for name, value in twin.state_dict().items()}
    ours = {torch_name(name): value for name, value in {**model.parameters(), **model.named_buffers()}.items()}
    assert set(ours) == set(theirs)
    for name, value in ours.items():
        np.testing.assert_allclose(value, theirs[name], rtol=RTOL[F64], atol=scaled_atol(theirs[name], F64),
                                   err_msg=name)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_mlp_sgd_steps_match_torch(torch, rng, activation):
    model = bnnet.mlp([20, 16, 16, 5], activation=activation, dtype=F64, rng=rng)
    for name, value in model.parameters().items():  # move gamma/beta and the output bias off 1/0
        if name.endswith(("gamma", "beta", "bias")):
            value += rng.normal(scale=0.3, size=value.shape)
    twin = torch_twin(torch, model, activation)
    loss_fn = bnnet.SoftmaxCrossEntropy()
    optimizer = bnnet.SGD(model.parameters(), lr=0.2, momentum=0.9)
    optimizer_t = torch.optim.SGD(twin.parameters(), lr=0.2, momentum=0.9)
    named_t = dict(twin.named_parameters())
    for _ in range(5):
        x = rng.normal(1.0, 2.0, size=(32, 20))
        labels = rng.integers(0, 5, size=32)
        loss = loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward())
        optimizer_t.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(twin(tensor(torch, x)), torch.tensor(labels))
        loss_t.backward()
        np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-10)
        grads = model.gradients()
        assert set(map(torch_name, grads)) == set(named_t)
        for name, grad in grads.items():
            reference = numpy_of(named_t[torch_name(name)].grad)
            np.testing.assert_allclose(grad, reference, rtol=1e-10, atol=scaled_atol(reference, F64), err_msg=name)
        optimizer.step(grads)
        optimizer_t.step()
    assert_network_state_matches(model, twin)
    assert np.max(np.abs(model.named_buffers()["1.running_mean"])) > 0.1  # the statistics moved

    x = rng.normal(1.0, 2.0, size=(11, 20))
    twin.eval()
    with torch.no_grad():
        expected = numpy_of(twin(tensor(torch, x)))
    assert_close(model.predict(x), expected, F64)
    assert_close(model.predict(x[3]), expected[3], F64)  # a single example in eval mode
