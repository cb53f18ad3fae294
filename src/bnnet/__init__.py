"""bnnet: neural networks with batch normalization, written out by hand on NumPy.

>>> import numpy as np, bnnet
>>> model = bnnet.mlp([4, 8, 3], activation="sigmoid", dtype=np.float64)
>>> model
Sequential(
  (0) Linear(in_features=4, out_features=8, bias=False, dtype='float64')
  (1) BatchNorm(num_features=8, eps=1e-05, new_batch_weight=0.1, running_average='ema', unbiased_running_var=True, affine=True, normalize_with='auto', update_running_stats=True, train_affine=True, single_value_policy='error', ghost_batch_size=None, renorm=False, renorm_rmax=3.0, renorm_dmax=5.0, renorm_warmup_steps=0, dtype='float64')
  (2) Sigmoid()
  (3) Linear(in_features=8, out_features=3, bias=True, dtype='float64')
)
"""
from .checkpoint import Checkpoint, CheckpointError, load, save
from .losses import MeanSquaredError, SoftmaxCrossEntropy
from .nn import (
    BatchNorm, BiasBeforeBatchNormWarning, Linear, Module, ReLU, Sequential, Sigmoid, Tanh, mlp,
)
from .optim import GD, SGD, Adam, AdamW, RMSProp
from .schedules import LRSchedule
from .training import evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "GD", "SGD", "Adam", "AdamW", "BatchNorm", "BiasBeforeBatchNormWarning", "Checkpoint",
    "CheckpointError", "LRSchedule", "Linear", "MeanSquaredError", "Module", "RMSProp", "ReLU",
    "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "Tanh", "evaluate", "fit", "load", "mlp", "save",
]
