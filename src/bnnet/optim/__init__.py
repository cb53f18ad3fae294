"""Optimizers: small update rules with inspectable per-parameter state."""
from .adam import Adam, AdamW
from .base import Optimizer
from .gd import GD
from .rmsprop import RMSProp
from .sgd import SGD

OPTIMIZERS = {"gd": GD, "sgd": SGD, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW}

__all__ = ["Adam", "AdamW", "GD", "OPTIMIZERS", "Optimizer", "RMSProp", "SGD"]
