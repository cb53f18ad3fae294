"""Learning-rate schedules: the factor that multiplies the base learning rate at a step.

- ``constant``: 1.
- ``step``: ``gamma ** (epoch // step_epochs)``, the rate drops by gamma every
  step_epochs epochs.
- ``cosine``: ``min_factor + (1 - min_factor) * (1 + cos(pi * t / T)) / 2`` over
  the T steps of training (Loshchilov & Hutter 2017, without restarts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """A named schedule and its settings; call :meth:`factor` per step."""

    name: str = "constant"
    step_epochs: int = 10
    gamma: float = 0.1
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.name!r}; expected one of {', '.join(SCHEDULES)}")
        if self.step_epochs < 1:
            raise ValueError(f"lr schedule expected step_epochs >= 1, got {self.step_epochs}")

    def factor(self, step: int, steps_per_epoch: int, total_steps: int) -> float:
        """Multiplier for the base rate at ``step`` (0-based) of ``total_steps``."""
        if self.name == "step":
            return self.gamma ** ((step // max(steps_per_epoch, 1)) // self.step_epochs)
        if self.name == "cosine":
            progress = min(step / max(total_steps, 1), 1.0)
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0
