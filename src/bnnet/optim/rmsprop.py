"""RMSProp (Hinton's lecture 6e), PyTorch's formulation."""
from __future__ import annotations

import numpy as np

from .base import Optimizer


class RMSProp(Optimizer):
    """Divide the gradient by a running root mean square of recent gradients::

        g <- g + weight_decay * p
        s <- alpha * s + (1 - alpha) * g^2                 (s starts at 0)
        denom = sqrt(s) + eps          (centered: sqrt(s - a^2) + eps, a <- alpha a + (1 - alpha) g)
        v <- momentum * v + g / denom,  p <- p - lr * v    (momentum > 0)
        p <- p - lr * g / denom                             (momentum = 0)

    eps is added outside the square root, as PyTorch does (TensorFlow adds it inside).
    """

    hyperparameter_names = ("alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"RMSProp expected 0 <= alpha < 1, got {alpha}")
        self.check_non_negative(eps=eps, momentum=momentum, weight_decay=weight_decay)
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.centered = bool(centered)
        self.weight_decay = float(weight_decay)

    def update(self, param, grad, state) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = state.setdefault("square_avg", np.zeros_like(param))
        square_avg *= self.alpha
        square_avg += (1.0 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(param))
            grad_avg *= self.alpha
            grad_avg += (1.0 - self.alpha) * grad
            denom = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denom = np.sqrt(square_avg) + self.eps
        if self.momentum:
            velocity = state.setdefault("velocity", np.zeros_like(param))
            velocity *= self.momentum
            velocity += grad / denom
            param -= self.lr * velocity
        else:
            param -= self.lr * grad / denom
