"""Plain gradient descent."""
from __future__ import annotations

import numpy as np

from .base import Optimizer


class GD(Optimizer):
    """Gradient descent: ``p <- p - lr * (g + weight_decay * p)``.

    It is the update of full-batch gradient descent; the trainer feeds it the
    gradient of the whole training set when ``optimizer="gd"``.
    """

    hyperparameter_names = ("weight_decay",)

    def __init__(self, params: dict[str, np.ndarray], lr: float = 0.1, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.check_non_negative(weight_decay=weight_decay)
        self.weight_decay = float(weight_decay)

    def update(self, param, grad, state) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        param -= self.lr * grad
