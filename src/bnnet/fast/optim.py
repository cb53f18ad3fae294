"""Optimizer updates as one compiled pass per parameter, bit for bit the reference's arithmetic.

The scalars are cast to the parameter's dtype before the kernel runs, as NumPy
does when it multiplies a float32 array by a Python float, and the operations
keep the reference's order, so float32 and float64 results equal the NumPy
rules in :mod:`bnnet.optim` exactly (no fused multiply-add: ``fastmath=False``).
"""
from __future__ import annotations

import numpy as np

from .jit import jit

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@jit
def _sgd(param, grad, velocity, lr, momentum, damp_keep, weight_decay, use_decay, use_momentum,
         first_step, nesterov):
    p, g_in, v = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
    for i in range(p.shape[0]):
        g = g_in[i]
        if use_decay:
            g = g + weight_decay * p[i]
        if use_momentum:
            if first_step:
                v[i] = g
            else:
                v[i] = v[i] * momentum + damp_keep * g
            g = g + momentum * v[i] if nesterov else v[i]
        p[i] = p[i] - lr * g


def sgd_update(param: np.ndarray, grad: np.ndarray, state: dict, lr: float, momentum: float,
               dampening: float, nesterov: bool, weight_decay: float) -> bool:
    """Apply :class:`bnnet.optim.SGD`'s update in place; False (nothing done) if not covered."""
    dtype = param.dtype
    if (dtype not in FLOATS or not isinstance(grad, np.ndarray) or grad.dtype != dtype
            or grad.shape != param.shape or not param.flags.c_contiguous):
        return False
    velocity = state.get("velocity")
    first_step = velocity is None
    if momentum:
        if first_step:
            velocity = state["velocity"] = np.empty_like(param)
        elif velocity.dtype != dtype or velocity.shape != param.shape or not velocity.flags.c_contiguous:
            return False
    else:
        velocity = param  # unused by the kernel
    cast = dtype.type
    _sgd(param, np.ascontiguousarray(grad), velocity, cast(lr), cast(momentum), cast(1.0 - dampening),
         cast(weight_decay), bool(weight_decay), bool(momentum), first_step, bool(nesterov))
    return True
