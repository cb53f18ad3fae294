"""Adam (Kingma & Ba 2015) with L2 weight decay, and AdamW with decoupled weight decay."""
from __future__ import annotations

import numpy as np

from .base import Optimizer


class Adam(Optimizer):
    """Adam, PyTorch's formulation (bias corrections folded into the step size)::

        g <- g + weight_decay * p                     (L2: the decay passes through the moments)
        m <- beta1 * m + (1 - beta1) * g              (m, v start at 0; t counts this parameter's steps from 1)
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    hyperparameter_names = ("beta1", "beta2", "eps", "weight_decay")

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{type(self).__name__} expected 0 <= {name} < 1, got {beta}")
        self.check_non_negative(eps=eps, weight_decay=weight_decay)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def update(self, param, grad, state) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        self.adam_step(param, grad, state)

    def adam_step(self, param, grad, state) -> None:
        m = state.setdefault("exp_avg", np.zeros_like(param))
        v = state.setdefault("exp_avg_sq", np.zeros_like(param))
        # Each parameter counts its own updates (as PyTorch does), so one that was frozen
        # for a while and then trained again gets the bias correction of its own history.
        step = state.setdefault("step", np.zeros((), dtype=np.int64))
        step += 1
        t = int(step)
        m *= self.beta1
        m += (1.0 - self.beta1) * grad
        v *= self.beta2
        v += (1.0 - self.beta2) * grad * grad
        step_size = self.lr / (1.0 - self.beta1**t)
        denom = np.sqrt(v) / np.sqrt(1.0 - self.beta2**t) + self.eps
        param -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)::

        p <- p * (1 - lr * weight_decay)              (applied to p directly, not through m and v)
        then the Adam update above with no L2 term.

    Unlike Adam's L2 penalty, the decay is not rescaled by 1 / sqrt(v).
    """

    def __init__(self, params, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, beta1, beta2, eps, weight_decay)

    def update(self, param, grad, state) -> None:
        if self.weight_decay:
            param *= 1.0 - self.lr * self.weight_decay
        self.adam_step(param, grad, state)
