"""What the experiments record while a network trains, and how they write it down.

- :func:`activation_input`: the input of one activation layer (e.g. the last
  Sigmoid), computed in eval mode by running the model layer by layer up to it.
- :func:`percentiles`: the 15th, 50th and 85th percentiles the paper's Figure 1
  plots for one sigmoid unit.
- :class:`Recorder`: an ``on_step`` callback for :func:`bnnet.training.fit` that
  every N steps writes down test accuracy (eval mode, running statistics) and
  those percentiles.
- :func:`write_csv`, :func:`write_json`: the files every experiment leaves.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..nn.activation import Sigmoid
from ..nn.module import Module
from ..training.evaluate import evaluate

PERCENTILES = (15, 50, 85)


def activation_input(model: Module, x: np.ndarray, *, kind: type = Sigmoid, index: int = -1) -> np.ndarray:
    """The input of the ``index``-th layer of type ``kind`` of a Sequential, in eval mode.

    Runs ``model.layers`` one by one on ``x`` and stops at that layer, so what
    comes back is exactly what the activation sees at test time (batch norm
    with its running statistics). The model's mode is restored afterwards.

    Args:
        model: a :class:`bnnet.nn.Sequential` (anything with ``layers``).
        x: a batch of inputs, ``(N, D)``.
        kind: the layer class to look for (default: Sigmoid).
        index: which of those layers, counted as in a Python list (-1: the last).

    Returns:
        ``(N, width)``: the pre-activation values of that layer for every example.

    Raises:
        ValueError: the model has no such layer.

    Example:
        >>> import numpy as np, bnnet
        >>> model = bnnet.mlp([4, 3, 2], activation="sigmoid", batch_norm=False, dtype=np.float64)
        >>> x = np.ones((5, 4))
        >>> bool(np.allclose(activation_input(model, x), x @ model[0].params["weight"].T))
        True
    """
    layers = list(getattr(model, "layers", []))
    positions = [i for i, layer in enumerate(layers) if isinstance(layer, kind)]
    if not positions or not -len(positions) <= index < len(positions):
        raise ValueError(
            f"expected a Sequential with a {kind.__name__} layer number {index}, got "
            f"{len(positions)} {kind.__name__} layer(s) in {len(layers)} layers; "
            f"build the network with activation={kind.__name__.lower()!r}"
        )
    stop = positions[index]
    was_training = model.training
    model.eval()
    try:
        for layer in layers[:stop]:
            x = layer.forward(x)
    finally:
        model.train(was_training)
    return x


def percentiles(values: np.ndarray, qs: Sequence[float] = PERCENTILES) -> list[float]:
    """The ``qs`` percentiles of ``values`` (linear interpolation), as floats.

    >>> percentiles(np.arange(101.0))
    [15.0, 50.0, 85.0]
    """
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), qs)]


class Recorder:
    """Every ``every`` steps: test accuracy and the percentiles of one sigmoid unit's input.

    Use as ``fit(..., on_step=recorder)`` after calling ``recorder(0, model)``
    for the initial point. Each record is a dict with ``step``,
    ``test_accuracy``, ``test_loss`` and ``p15``, ``p50``, ``p85`` (the
    percentiles, over the ``probe`` inputs, of the input of unit ``unit`` of the
    last Sigmoid layer). Everything is measured in eval mode, so batch norm
    uses its running statistics; the training mode is restored afterwards.

    Args:
        loss_fn: the loss to report on the test set.
        x_test, y_test: the test set.
        probe: the fixed inputs whose sigmoid inputs are summarised.
        unit: which unit of the last hidden layer.
        every: record when ``step % every == 0``.
        on_record: called with each new record (for logging).
    """

    def __init__(self, loss_fn, x_test: np.ndarray, y_test: np.ndarray, probe: np.ndarray, *,
                 unit: int = 0, every: int = 500, on_record: Callable[[dict], None] | None = None) -> None:
        if every < 1:
            raise ValueError(f"expected a recording interval >= 1 step, got {every}")
        self.loss_fn = loss_fn
        self.x_test, self.y_test, self.probe = x_test, y_test, probe
        self.unit = int(unit)
        self.every = int(every)
        self.on_record = on_record
        self.records: list[dict[str, float]] = []
        # (3, width) percentiles of every unit of the last hidden layer, per record, for band_drift.
        self.all_units: list[np.ndarray] = []

    def __call__(self, step: int, model: Module) -> None:
        """The ``on_step`` callback: record if ``step`` is a multiple of ``every``."""
        if step % self.every == 0:
            self.record(step, model)

    def record(self, step: int, model: Module) -> None:
        """Record now, whatever the step (for the last step of a run)."""
        loss, accuracy = evaluate(model, self.loss_fn, self.x_test, self.y_test)
        inputs = activation_input(model, self.probe)
        if not 0 <= self.unit < inputs.shape[1]:
            raise ValueError(f"expected a unit in 0..{inputs.shape[1] - 1} of the last hidden layer, got {self.unit}")
        record = {"step": int(step), "test_accuracy": accuracy, "test_loss": loss}
        record.update({f"p{q}": value for q, value in zip(PERCENTILES, percentiles(inputs[:, self.unit]))})
        self.all_units.append(np.percentile(inputs.astype(np.float64), PERCENTILES, axis=0))
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)


def band_drift(steps: Sequence[int], all_units: Sequence[np.ndarray], start: int) -> np.ndarray:
    """How far each unit's median moved from step ``start`` to the end, in widths of its band then.

    ``drift_u = |p50_u(end) - p50_u(start)| / (p85_u(start) - p15_u(start))``, one
    value per unit, from the percentile arrays a :class:`Recorder` keeps
    (``all_units[i]`` is ``(3, width)`` at ``steps[i]``; the first record at or
    after ``start`` is the reference). 0 means the distribution's centre did
    not move; 1 means it moved by the whole 15-85 band.

    >>> band_drift([0, 10], [np.array([[0.0], [1.0], [2.0]]), np.array([[2.0], [3.0], [4.0]])], start=0)
    array([1.])
    """
    first = next((i for i, step in enumerate(steps) if step >= start), None)
    if first is None:
        raise ValueError(f"expected a record at or after step {start}, got records up to step {max(steps)}")
    reference, end = all_units[first], all_units[-1]
    width = np.maximum(reference[2] - reference[0], 1e-12)  # a collapsed band: avoid dividing by 0
    return np.abs(end[1] - reference[1]) / width


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write dict rows as CSV (header from the first row's keys); returns the path."""
    path = Path(path)
    if not rows:
        raise ValueError(f"expected at least one row to write to {path}, got none")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write strict JSON (NaN and infinities become null); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_strict(data), indent=2, sort_keys=True) + "\n")
    return path


def _strict(value: Any) -> Any:
    # JSON has no NaN/Infinity; strict parsers reject them, so they become null.
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value
