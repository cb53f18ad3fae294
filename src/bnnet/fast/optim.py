"""Optimizer updates as one compiled pass per parameter, bit for bit the reference's arithmetic.

The hyperparameters are cast to the parameter's dtype inside the kernel, as
NumPy casts a Python float when it multiplies a float32 array by it, and the
operations keep the reference's order, so float32 and float64 results equal
the NumPy rules in :mod:`bnnet.optim` exactly (``fastmath=False``: no fused
multiply-add, no reordering).
"""
from __future__ import annotations

import numpy as np

from .jit import jit

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
GROUP = 8  # parameters per grouped call: one compiled signature per dtype, whatever the model's size


@jit
def _sgd(param, grad, velocity, hyper, first_step):
    """hyper = [lr, momentum, 1 - dampening, weight_decay, nesterov (1 or 0)]."""
    h = np.empty(5, param.dtype)
    h[:] = hyper  # the Python floats rounded to the parameter's dtype, as NumPy does
    lr, momentum, damp_keep, weight_decay = h[0], h[1], h[2], h[3]
    use_decay, use_momentum, nesterov = hyper[3] != 0.0, hyper[1] != 0.0, hyper[4] != 0.0
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


@jit
def _sgd_group(params, grads, velocities, count, hyper):
    """_sgd on the first ``count`` entries of three tuples of 1-D arrays, none on its first step."""
    for k in range(count):
        _sgd(params[k], grads[k], velocities[k], hyper, False)


def sgd_step(params: dict, grads: dict, state: dict, hyper: np.ndarray, flat_views: dict) -> list[str]:
    """Apply :class:`bnnet.optim.SGD`'s update to every parameter named in ``grads`` that the
    grouped kernel covers, GROUP parameters per compiled call; return the names it left alone.

    One call per parameter cost about 2 microseconds of Python each, as much as the
    arithmetic of the paper's whole network at batch 60. Left alone (for
    :func:`sgd_update` or the NumPy rule): a parameter on its first momentum step,
    one whose dtype differs from the first one's, and a gradient whose layout differs
    from its parameter's.

    Args:
        flat_views: the caller's cache, by name, of the parameter's and its
            velocity's 1-D views; rebuilt when either array is replaced.
    """
    momentum = bool(hyper[1] != 0.0)
    left, flat_params, flat_grads, flat_velocities = [], [], [], []
    dtype = None
    for name, grad in grads.items():
        param = params[name]
        velocity = state[name].get("velocity") if momentum else param
        views = flat_views.get(name)
        if views is None or views[0] is not param or views[1] is not velocity:
            views = flat_views[name] = _flat_views(param, velocity)
        _, _, flat_param, flat_velocity, layout = views
        if flat_param is None or type(grad) is not np.ndarray or (grad.strides, grad.shape, grad.dtype) != layout:
            left.append(name)
            continue
        if dtype is None:
            dtype = layout[2]
        elif layout[2] != dtype:
            left.append(name)
            continue
        flat_params.append(flat_param)
        flat_grads.append(grad.ravel("K"))  # a view, in the parameter's memory order
        flat_velocities.append(flat_velocity)
    for start in range(0, len(flat_params), GROUP):
        count = min(GROUP, len(flat_params) - start)
        padding = [_EMPTY[dtype]] * (GROUP - count)
        _sgd_group(tuple(flat_params[start:start + GROUP] + padding),
                   tuple(flat_grads[start:start + GROUP] + padding),
                   tuple(flat_velocities[start:start + GROUP] + padding), count, hyper)
    return left


_EMPTY = {dtype: np.empty(0, dtype) for dtype in FLOATS}  # pads a group: a zero-length loop


def _flat_views(param: np.ndarray, velocity: np.ndarray | None) -> tuple:
    """(param, velocity, 1-D view of param, 1-D view of velocity, (strides, shape, dtype) a
    gradient must have to pair with them), the views None if not covered."""
    layout = (param.strides, param.shape, param.dtype)
    covered = (velocity is not None and param.dtype in FLOATS
               and (velocity.strides, velocity.shape, velocity.dtype) == layout
               and (param.flags.c_contiguous or param.flags.f_contiguous))
    if not covered:
        return param, velocity, None, None, layout
    return param, velocity, param.ravel(order="K"), velocity.ravel(order="K"), layout


def sgd_update(param: np.ndarray, grad: np.ndarray, state: dict, hyper: np.ndarray) -> bool:
    """Apply :class:`bnnet.optim.SGD`'s update in place; False (nothing done) if not covered.

    Args:
        hyper: float64 ``[lr, momentum, 1 - dampening, weight_decay, 1.0 if nesterov else 0.0]``.
    """
    if (type(grad) is not np.ndarray or param.dtype not in FLOATS or grad.dtype != param.dtype
            or grad.shape != param.shape):
        return False
    block = _row_major(param)
    if block is None:
        return False
    velocity = state.get("velocity")
    first_step = velocity is None
    if hyper[1] != 0.0:
        if first_step:
            velocity = state["velocity"] = np.empty_like(param)  # the parameter's layout
        elif velocity.dtype != param.dtype or velocity.shape != param.shape:
            return False
        velocity_block = _row_major(velocity, like=param)
        if velocity_block is None:
            return False
    else:
        velocity_block = block  # not touched by the kernel without momentum
    grad_block = _row_major(grad, like=param)
    if grad_block is None:
        grad_block = np.ascontiguousarray(grad.T if block is not param else grad)
    _sgd(block, grad_block, velocity_block, hyper, first_step)
    return True


def _row_major(array: np.ndarray, like: np.ndarray | None = None) -> np.ndarray | None:
    """A C-contiguous view of the same memory: the array, or its transpose when it is column-major.

    With ``like``, the view pairs element for element with ``_row_major(like)`` (or None).
    """
    transpose = (like if like is not None else array).flags.c_contiguous is False
    view = array.T if transpose else array
    return view if view.flags.c_contiguous else None
