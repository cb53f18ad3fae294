"""Everything the fast engine offers, in one namespace (:func:`bnnet.fast.compiled` returns this module).

Importing it imports numba and loads the compiled kernels (compiling them the
first time after installation); nothing else in bnnet imports it eagerly.
"""
from .activations import relu_backward, sigmoid, sigmoid_backward, tanh_backward
from .batch_norm import (
    batch_norm_backward, batch_norm_forward, fixed_statistics_backward, fixed_statistics_forward,
)
from .inference import predict
from .losses import softmax_cross_entropy
from .optim import sgd_step, sgd_update
from .preload import warm_up
from .running_statistics import fold_running_statistics

__all__ = [
    "batch_norm_backward", "batch_norm_forward", "fixed_statistics_backward", "fixed_statistics_forward",
    "fold_running_statistics", "predict", "relu_backward", "sgd_step", "sgd_update", "sigmoid",
    "sigmoid_backward", "softmax_cross_entropy", "tanh_backward", "warm_up",
]
