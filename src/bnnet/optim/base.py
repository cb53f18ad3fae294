"""What every optimizer shares: the parameters it updates, its learning rate and inspectable state."""
from __future__ import annotations

from typing import Any

import numpy as np


class Optimizer:
    """Updates parameters in place from a dict of gradients.

    ``step(grads)`` updates only the parameters named in ``grads``: a frozen
    parameter (one a layer reports no gradient for) is left exactly as it is,
    weight decay included. Per-parameter state lives in ``self.state[name]``.
    """

    hyperparameter_names: tuple[str, ...] = ()

    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        if lr < 0 or not np.isfinite(lr):
            raise ValueError(f"{type(self).__name__} expected a finite learning rate >= 0, got {lr}")
        self.params = params
        self.lr = float(lr)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in params}

    def check_non_negative(self, **values: float) -> None:
        """Raise a ValueError naming the first setting that is negative (or NaN)."""
        for name, value in values.items():
            if not value >= 0:
                raise ValueError(f"{type(self).__name__} expected {name} >= 0, got {value}")

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.check_known(grads)
        self.steps += 1
        for name, grad in grads.items():
            self.update(self.params[name], grad, self.state[name])

    def check_known(self, grads: dict[str, np.ndarray]) -> None:
        """Raise a KeyError naming any gradient for a parameter this optimizer does not hold."""
        if not grads.keys() <= self.params.keys():
            unknown = sorted(set(grads) - set(self.params))
            raise KeyError(f"gradients for parameters the optimizer does not hold: {unknown}")

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, **{name: getattr(self, name) for name in self.hyperparameter_names}}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Flat ``"<param>/<slot>"`` -> array view of the state, for saving."""
        return {f"{name}/{slot}": value for name, slots in self.state.items() for slot, value in slots.items()}

    def load_state(self, steps: int, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` gave (and the step count)."""
        self.steps = int(steps)
        for key, value in arrays.items():
            name, _, slot = key.rpartition("/")
            if name not in self.state:
                raise KeyError(f"optimizer state for unknown parameter {name!r}")
            # Counters stay integers; moments take the parameter's float type.
            dtype = value.dtype if np.issubdtype(value.dtype, np.integer) else self.params[name].dtype
            self.state[name][slot] = np.array(value, dtype=dtype)
