"""Does batch norm allow higher learning rates? Final test accuracy against the learning rate.

For each learning rate (log-spaced, several orders of magnitude) the Figure 1
network is trained with and without batch norm, from the same initial weights
and on the same batches, for ``steps`` steps; then its test accuracy is
measured in eval mode. A run *diverges* when its training loss becomes NaN or
infinite (training stops there) or a parameter does: it is counted at chance
accuracy, 1 / classes, and marked as diverged.

``holdout`` > 0 measures on the last ``holdout`` training examples instead
(and trains on the rest), for choosing a learning rate without looking at the
test set.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..losses import SoftmaxCrossEntropy
from ..training.evaluate import evaluate
from ..training.progress import progress_bar
from .network import NETWORKS, TrainingSettings, build_network, diverged, train
from .recording import write_csv, write_json

DEFAULT_LRS = tuple(float(f"{lr:.3g}") for lr in np.logspace(-3, 2, 11))  # 0.001, 0.00316, ..., 100


@dataclass
class SweepSettings(TrainingSettings):
    """:class:`TrainingSettings` (``lr`` unused) plus the learning rates and the evaluation split.

    Attributes:
        lrs: learning rates to try, each for both networks.
        holdout: evaluate on the last this many training examples (0: on the test set).
    """

    unused = ("lr",)  # each run has its own, from lrs
    steps: int = 10_000
    lrs: tuple[float, ...] = DEFAULT_LRS
    holdout: int = 0

    def validate(self) -> None:
        super().validate()
        if not self.lrs or not all(np.isfinite(lr) and lr > 0 for lr in self.lrs):
            raise ValueError(f"expected finite learning rates > 0, got {self.lrs}")
        if self.holdout < 0:
            raise ValueError(f"expected holdout >= 0 examples, got {self.holdout}")


def split(data, holdout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_eval, y_eval): the test set, or the last ``holdout`` training examples.

    >>> from types import SimpleNamespace
    >>> data = SimpleNamespace(x_train=np.zeros((10, 2)), y_train=np.arange(10), x_test=None, y_test=None)
    >>> [len(part) for part in split(data, 3)]
    [7, 7, 3, 3]
    """
    if holdout == 0:
        return data.x_train, data.y_train, data.x_test, data.y_test
    if holdout >= len(data.x_train) - 1:
        raise ValueError(f"expected holdout < {len(data.x_train) - 1} (the training set has "
                         f"{len(data.x_train)} examples), got {holdout}")
    cut = len(data.x_train) - holdout
    return data.x_train[:cut], data.y_train[:cut], data.x_train[cut:], data.y_train[cut:]


def run_lr_sweep(data, settings: SweepSettings, *, progress: bool | None = None,
                 log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train both networks at every learning rate; returns a JSON-ready result.

    Returns:
        ``{"experiment", "dataset", "settings", "evaluated_on", "runs": [rows], "seconds"}``,
        a row per (network, lr): ``network``, ``lr``, ``test_accuracy`` (chance
        if diverged), ``test_loss`` (None if diverged), ``diverged``, ``steps``, ``seconds``.
    """
    settings.validate()
    x_train, y_train, x_eval, y_eval = split(data, settings.holdout)
    chance = 1.0 / data.num_classes
    say = log if log is not None else (lambda line: None)
    bar = progress_bar(settings.steps * len(NETWORKS) * len(settings.lrs), "lr-sweep", progress)
    started = time.perf_counter()
    runs = []
    try:
        for lr in settings.lrs:
            for name, batch_norm in NETWORKS.items():
                run_settings = _with_lr(settings, lr)
                model = build_network(run_settings, data.num_features, data.num_classes, batch_norm)
                run_started = time.perf_counter()
                history = train(model, run_settings, x_train, y_train, on_step=lambda step, model: bar.update(1))
                bar.update(settings.steps - history.steps)  # a run stopped early skips its remaining steps
                blew_up = diverged(model, history)
                loss, accuracy = (None, chance) if blew_up else evaluate(model, SoftmaxCrossEntropy(), x_eval, y_eval)
                runs.append({"network": name, "lr": lr, "test_accuracy": accuracy, "test_loss": loss,
                             "diverged": blew_up, "steps": history.steps,
                             "seconds": time.perf_counter() - run_started})
                bar.write(f"lr {lr:<8g} {name:<10} " + (f"diverged at step {history.steps}" if blew_up
                          else f"test_acc {accuracy:.4f}"), say)
    finally:
        bar.close()
    return {"experiment": "lr-sweep", "dataset": data.describe(), "settings": settings.as_dict(),
            "evaluated_on": "test set" if settings.holdout == 0 else f"last {settings.holdout} training examples",
            "chance_accuracy": chance, "runs": runs, "seconds": time.perf_counter() - started}


def _with_lr(settings: SweepSettings, lr: float) -> TrainingSettings:
    values = {name: getattr(settings, name) for name in TrainingSettings.field_names()}
    return TrainingSettings(**{**values, "lr": lr})


def save_lr_sweep(result: dict[str, Any], out_dir: str | Path, *, plot: bool = True) -> dict[str, str]:
    """Write ``lr_sweep.csv`` (one row per run), ``lr_sweep.json`` and ``lr_sweep.png``."""
    out_dir = Path(out_dir)
    paths = {"csv": str(write_csv(out_dir / "lr_sweep.csv", result["runs"])),
             "json": str(write_json(out_dir / "lr_sweep.json", result))}
    if plot:
        from .plots import plot_lr_sweep

        paths["png"] = str(plot_lr_sweep(result, out_dir / "lr_sweep.png"))
    return paths


def lr_sweep_summary(result: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """The one-line JSON summary: accuracy per network and lr, the best lr of each, outputs."""
    accuracy: dict[str, dict[str, float]] = {name: {} for name in NETWORKS}
    for run in result["runs"]:
        accuracy[run["network"]][f"{run['lr']:g}"] = run["test_accuracy"]
    best = {name: max(values, key=values.get) for name, values in accuracy.items() if values}
    return {"experiment": "lr-sweep", "dataset": result["dataset"], "steps": result["settings"]["steps"],
            "evaluated_on": result["evaluated_on"], "test_accuracy": accuracy, "best_lr": best,
            "diverged": [f"{run['network']} lr={run['lr']:g}" for run in result["runs"] if run["diverged"]],
            "seconds": result["seconds"], "settings": result["settings"], "outputs": paths}
