"""How batch norm's running estimates of mean and variance are updated.

Every averaging mode is the same update with a different weight on the new batch::

    running += weight_t * (batch_statistic - running)

- ``"ema"`` (the default; PyTorch, Keras, Flax): weight_t = w, a fixed weight
  on the new batch (PyTorch's ``momentum``; Keras/Flax's ``momentum`` is 1 - w,
  the weight on the old average). The result leans towards the initial
  0 (mean) and 1 (variance) for the first ~1/w updates.
- ``"ema_debiased"``: weight_t = w / (1 - (1 - w)^t). This is the exponential
  average with Adam's start-up bias correction, written recursively: it equals
  ``raw_t / (1 - (1 - w)^t)`` where raw is the plain EMA started from zero, so
  the initial values carry no weight at all (weight_1 = 1).
- ``"cumulative"``: weight_t = 1 / t, an equal-weight average of every batch so
  far (PyTorch's ``momentum=None``).

The variance folded in is the batch's biased variance times m / (m - 1) (the
unbiased estimate; the paper's Algorithm 2 and PyTorch) unless the biased one is
asked for (Keras, Flax), where m is the number of values per channel.
"""
from __future__ import annotations

import numpy as np

RUNNING_AVERAGES = ("ema", "ema_debiased", "cumulative")


def update_weight(running_average: str, new_batch_weight: float, step: int) -> float:
    """Weight given to the new batch at update number ``step`` (counted from 1)."""
    if running_average == "ema":
        return new_batch_weight
    if running_average == "ema_debiased":
        return new_batch_weight / (1.0 - (1.0 - new_batch_weight) ** step)
    if running_average == "cumulative":
        return 1.0 / step
    raise ValueError(
        f"unknown running_average {running_average!r}; expected one of {', '.join(RUNNING_AVERAGES)}"
    )


def update_running_statistics(
    running_mean: np.ndarray,
    running_var: np.ndarray,
    batch_mean: np.ndarray,
    batch_var: np.ndarray,
    count: int,
    weight: float,
    unbiased: bool,
) -> None:
    """Fold one batch's statistics into the running ones, in place.

    Args:
        batch_var: the biased batch variance (what normalisation used).
        count: values per channel the batch statistics came from (m).
        weight: weight on the new batch, from :func:`update_weight`.
        unbiased: store m / (m - 1) times the batch variance.
    """
    if unbiased and count > 1:
        batch_var = batch_var * (count / (count - 1))
    running_mean += weight * (batch_mean - running_mean)
    running_var += weight * (batch_var - running_var)
