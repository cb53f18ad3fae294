"""Stochastic gradient descent with momentum (heavy ball or Nesterov)."""
from __future__ import annotations

import numpy as np

from .. import fast
from .base import Optimizer


class SGD(Optimizer):
    """SGD with optional momentum, PyTorch's formulation::

        g <- g + weight_decay * p                       (L2 penalty in the gradient)
        v <- g                                          (first step)
        v <- momentum * v + (1 - dampening) * g         (later steps)
        d <- g + momentum * v   if nesterov else   v
        p <- p - lr * d

    This "subtly differs" (PyTorch's words) from Sutskever et al. 2013, where
    the learning rate sits inside the velocity (v <- mu v - lr g, p <- p + v);
    the two agree when the learning rate is constant.
    """

    hyperparameter_names = ("momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if momentum < 0:
            raise ValueError(f"SGD expected momentum >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD with nesterov=True expected momentum > 0 and dampening = 0, got momentum={momentum}, dampening={dampening}"
            )
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self._flat_views: dict[str, tuple] = {}  # the fast engine's 1-D views, by parameter name

    def step(self, grads: dict[str, np.ndarray]) -> None:
        kernels = fast.ops()
        if kernels is None:
            return super().step(grads)
        self.check_known(grads)
        self.steps += 1
        # Most parameters in a few grouped compiled calls; the rest one at a time below.
        for name in kernels.sgd_step(self.params, grads, self.state, self._hyperparameter_array(),
                                     self._flat_views):
            self.update(self.params[name], grads[name], self.state[name])

    def _hyperparameter_array(self) -> np.ndarray:
        """The settings as the fast kernel takes them, rebuilt only when one changes (lr may, per step)."""
        key = (self.lr, self.momentum, self.dampening, self.nesterov, self.weight_decay)
        if getattr(self, "_hyper_key", None) != key:
            self._hyper_key = key
            self._hyper = np.array([self.lr, self.momentum, 1.0 - self.dampening, self.weight_decay,
                                    float(self.nesterov)])
        return self._hyper

    def update(self, param, grad, state) -> None:
        kernels = fast.ops()  # the same arithmetic in one compiled pass, when it covers the arrays
        if kernels is not None and kernels.sgd_update(param, grad, state, self._hyperparameter_array()):
            return
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = np.array(grad, copy=True)
            else:
                velocity = state["velocity"]
                velocity *= self.momentum
                velocity += (1.0 - self.dampening) * grad
            grad = grad + self.momentum * state["velocity"] if self.nesterov else state["velocity"]
        param -= self.lr * grad
