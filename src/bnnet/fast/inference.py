"""Eval-mode prediction of a layer chain with few calls: BLAS for each Linear, one kernel between them.

For a Sequential of Linear, BatchNorm (normalising with its running
statistics), Sigmoid, Tanh and ReLU layers, everything between two matrix
products, ``+ bias``, batch norm and the activation, runs as one compiled
*epilogue* over the product, in place. The arithmetic is the reference's, in
the same order and dtype (``x_hat = (z - mean) * inv_std``, then
``x_hat * gamma + beta``); only the sigmoid's exp is evaluated differently
(see :mod:`bnnet.fast.activation_kernels`).

The chain's structure is worked out once per model and rechecked on every
call; parameters and running statistics are read afresh each call, so
training between predictions is seen. Models with other layers, or a batch
norm that normalises with batch statistics in eval mode, are not covered
(:func:`predict` returns None and the layered path runs).
"""
from __future__ import annotations

import weakref

import numpy as np

from ..nn.activation import ReLU, Sigmoid, Tanh
from ..nn.batch_norm import BatchNorm
from ..nn.linear import Linear
from .activation_kernels import sigmoid_float32, sigmoid_float64
from .jit import jit

NO_ACTIVATION, SIGMOID, TANH, RELU = 0, 1, 2, 3
ACTIVATION_CODES = {Sigmoid: SIGMOID, Tanh: TANH, ReLU: RELU}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@jit
def epilogue(h, bias, mean, var, gamma, beta, eps, flags):
    """In place on h (rows of C values): + bias, batch norm with fixed statistics, activation.

    ``flags`` packs the switches (fewer arguments: each costs dispatch time):
    bit 0 bias, bit 1 batch norm, bit 2 affine, bit 3 float64-exact sigmoid,
    bits 4-5 the activation code.
    """
    use_bias, use_norm, use_affine, precise = flags & 1, flags & 2, flags & 4, flags & 8
    activation = flags >> 4
    channels = h.shape[-1]
    values = h.reshape(-1)
    one = np.ones(1, h.dtype)[0]
    zero = one - one
    constants = np.empty(channels + 1, h.dtype)
    constants[channels] = eps  # eps in h's dtype, as NumPy casts it in the reference
    inv_std = constants[:channels]
    if use_norm:
        for c in range(channels):
            inv_std[c] = one / np.sqrt(var[c] + constants[channels])
    for start in range(0, values.shape[0], channels):
        row = values[start:start + channels]
        for c in range(channels):
            v = row[c]
            if use_bias:
                v = v + bias[c]
            if use_norm:
                v = (v - mean[c]) * inv_std[c]
                if use_affine:
                    v = v * gamma[c] + beta[c]
            row[c] = v
    if activation == SIGMOID:
        if precise:
            sigmoid_float64(values, values)
        else:
            sigmoid_float32(values, values)
    elif activation == TANH:
        for i in range(values.shape[0]):
            values[i] = np.tanh(values[i])
    elif activation == RELU:
        for i in range(values.shape[0]):
            values[i] = zero if values[i] < zero else values[i]


class _Plan:
    """The chain as ``("linear", layer)`` and ``("epilogue", bias_layer, norm_layer, activation)`` steps."""

    def __init__(self, layers: tuple) -> None:
        self.layers = layers
        self.steps: list[tuple] | None = []
        pending: list | None = None  # [bias layer, norm layer, activation code]
        for layer in layers:
            kind = type(layer)
            if kind is Linear:
                self._flush(pending)
                self.steps.append(("linear", layer))
                pending = [layer if layer.has_bias else None, None, NO_ACTIVATION]
            elif kind is BatchNorm:
                if pending is None or pending[1] is not None or pending[2] != NO_ACTIVATION:
                    self._flush(pending)
                    pending = [None, None, NO_ACTIVATION]
                pending[1] = layer
            elif kind in ACTIVATION_CODES:
                if pending is None or pending[2] != NO_ACTIVATION:
                    self._flush(pending)
                    pending = [None, None, NO_ACTIVATION]
                pending[2] = ACTIVATION_CODES[kind]
            else:
                self.steps = None
                return
        self._flush(pending)
        self.calls = [self._call(step) for step in self.steps]
        self.norm_layers = [layer for layer in layers if type(layer) is BatchNorm]
        first = layers[0] if layers else None
        self.in_features = first.in_features if type(first) is Linear else None
        if not self._sizes_chain(layers):
            self.steps = None  # the layered path raises the explanatory error

    @staticmethod
    def _sizes_chain(layers: tuple) -> bool:
        width = None
        for layer in layers:
            if type(layer) is Linear:
                if width is not None and layer.in_features != width:
                    return False
                width = layer.out_features
            elif type(layer) is BatchNorm and layer.num_features != width:
                return False
        return True

    @staticmethod
    def _call(step) -> tuple:
        """(linear layer, bias layer, norm layer, flags but the affine bit): what predict needs of a
        step, its flags worked out once (the arrays are read from the layers on every call)."""
        if step[0] == "linear":
            return step[1], None, None, 0
        _, bias_layer, norm, activation = step
        flags = activation << 4 | (1 if bias_layer is not None else 0) | (2 if norm is not None else 0)
        return None, bias_layer, norm, flags

    def _flush(self, pending) -> None:
        if pending is not None and (pending[0] is not None or pending[1] is not None or pending[2]):
            self.steps.append(("epilogue", *pending))


_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_EMPTY = {dtype: np.empty(0, dtype) for dtype in FLOATS}


def _plan_for(model) -> _Plan | None:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list):
        return None
    plan = _PLANS.get(model)
    if plan is None or plan.layers != tuple(layers):  # layers compare by identity
        plan = _PLANS[model] = _Plan(tuple(layers))
    if plan.steps is None or plan.in_features is None:
        return None
    for layer in plan.norm_layers:
        if layer.normalize_with == "batch":  # eval mode would use the batch's own statistics
            return None
    return plan


def predict(model, x) -> np.ndarray | None:
    """The eval-mode output of ``model`` for x, (features,) or (N, features); None if not covered."""
    plan = _plan_for(model)
    if plan is None:
        return None
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.ndim not in (1, 2) or x.shape[-1] != plan.in_features:
        return None  # the layered path raises the explanatory error
    dtype = plan.layers[0].params["weight"].dtype
    if dtype not in FLOATS:
        return None
    h = x if x.dtype == dtype else x.astype(dtype)
    single = h.ndim == 1
    empty = _EMPTY[dtype]
    precise = 8 if dtype == FLOATS[1] else 0
    for linear, bias_layer, norm, flags in plan.calls:
        if linear is not None:
            weight = linear.params["weight"]
            h = weight.dot(h) if single else h @ weight.T
            continue
        bias = empty if bias_layer is None else bias_layer.params["bias"]
        mean = var = gamma = beta = empty
        eps = 0.0
        if norm is not None:
            buffers = norm.buffers
            mean, var, eps = buffers["running_mean"], buffers["running_var"], norm.eps
            if norm.affine:
                gamma, beta = norm.params["gamma"], norm.params["beta"]
                flags |= 4
        if not (bias.dtype is dtype and mean.dtype is dtype and var.dtype is dtype and gamma.dtype is dtype
                and beta.dtype is dtype):
            return None  # mixed dtypes: the layered path applies NumPy's promotion rules
        if flags == 1:  # a bias alone (the output layer): NumPy's add costs less than a kernel call
            h += bias
        else:
            epilogue(h, bias, mean, var, gamma, beta, eps, flags | precise)
    return h
