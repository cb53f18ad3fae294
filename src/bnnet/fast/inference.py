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
def epilogue(h, bias, mean, var, gamma, beta, eps, use_bias, use_norm, use_affine, activation, precise):
    """In place on h (N, C): h + bias, then batch norm with fixed statistics, then the activation."""
    n, channels = h.shape
    one = np.ones(1, h.dtype)[0]
    zero = one - one
    inv_std = np.empty(channels, h.dtype)
    if use_norm:
        for c in range(channels):
            inv_std[c] = one / np.sqrt(var[c] + eps)
    for i in range(n):
        row = h[i]
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
            sigmoid_float64(h, h)
        else:
            sigmoid_float32(h, h)
    elif activation == TANH:
        flat = h.reshape(-1)
        for i in range(flat.shape[0]):
            flat[i] = np.tanh(flat[i])
    elif activation == RELU:
        flat = h.reshape(-1)
        for i in range(flat.shape[0]):
            flat[i] = zero if flat[i] < zero else flat[i]


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

    def _flush(self, pending) -> None:
        if pending is not None and (pending[0] is not None or pending[1] is not None or pending[2]):
            self.steps.append(("epilogue", *pending))


_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _plan_for(model) -> _Plan | None:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list):
        return None
    plan = _PLANS.get(model)
    if plan is None or len(plan.layers) != len(layers) or any(a is not b for a, b in zip(plan.layers, layers)):
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
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.shape[-1] != plan.in_features:
        return None  # the layered path raises the explanatory error
    dtype = plan.layers[0].params["weight"].dtype
    if dtype not in FLOATS:
        return None
    single = x.ndim == 1
    h = x.astype(dtype, copy=False)
    if single:
        h = h[None, :]
    precise = dtype == FLOATS[1]
    eps_type = dtype.type
    for step in plan.steps:
        if step[0] == "linear":
            weight = step[1].params["weight"]
            h = np.dot(weight, h[0])[None, :] if single else h @ weight.T
            continue
        _, bias_layer, norm, activation = step
        empty = np.empty(0, dtype)
        bias = bias_layer.params["bias"] if bias_layer is not None else empty
        if norm is not None:
            mean, var = norm.buffers["running_mean"], norm.buffers["running_var"]
            gamma, beta = norm.params.get("gamma", empty), norm.params.get("beta", empty)
            if not all(a.dtype == dtype for a in (mean, var, gamma, beta)):
                return None
            eps = eps_type(norm.eps)
        else:
            mean = var = gamma = beta = empty
            eps = eps_type(0)
        if bias.dtype != dtype or not h.flags.c_contiguous:
            return None
        epilogue(h, bias, mean, var, gamma, beta, eps, bias_layer is not None, norm is not None,
                 norm is not None and norm.affine, activation, precise)
    return h[0] if single else h
