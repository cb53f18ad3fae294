"""Which statistics should batch norm use at test time? One trained network, measured every way.

The claim under test: running (exponentially weighted) averages of the batch
statistics are not the exact population statistics, but are good enough at
test time. One Figure 1 network with batch norm is trained on the training
set, then its test accuracy is measured with

- (a) running averages for several weights w on the new batch (0.001 ... 0.5;
  all from the same run, see :mod:`bnnet.experiments.running_averages`);
- (b) exact population statistics of the training set, weights fixed
  (:func:`bnnet.toolbox.precise_bn`, the paper's Algorithm 2);
- (c) the statistics of each test batch itself (``normalize_with="batch"`` in
  eval mode), for test batches of 1 (undefined: one value has no variance),
  2, 8, 32 and 256 examples;
- (d) one example at a time, ``model.predict(x)`` with a 1-D ``x`` (running
  statistics with the layer's default weight, 0.1, if it is among the weights).

Every ``record_every`` steps during training it also records, per layer and
weight, the distance between running and population statistics
(:func:`~bnnet.experiments.running_averages.statistics_distance`) and the test
accuracy with each.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..losses import SoftmaxCrossEntropy
from ..nn.sequential import Sequential
from ..toolbox.precise_bn import population_statistics, precise_bn
from ..training.evaluate import evaluate
from ..training.loop import batch_slices
from ..training.progress import progress_bar
from .network import TrainingSettings, build_network, diverged, train
from .running_averages import RunningAverages, batch_norm_layers, statistics_distance
from .recording import write_csv, write_json

DEFAULT_WEIGHT = 0.1  # BatchNorm's default new_batch_weight (PyTorch's momentum=0.1)


@dataclass
class StatsSettings(TrainingSettings):
    """:class:`TrainingSettings` plus what the study measures.

    Attributes:
        weights: running-average weights on the new batch to compare.
        test_batch_sizes: test batch sizes for evaluation with batch statistics.
        record_every: steps between measurements of the running-vs-population distance.
    """

    unused = ("new_batch_weight",)  # the network stores each batch's statistics; weights are compared
    weights: tuple[float, ...] = (0.001, 0.01, 0.1, 0.5)
    test_batch_sizes: tuple[int, ...] = (1, 2, 8, 32, 256)
    record_every: int = 2500

    def validate(self) -> None:
        super().validate()
        if not self.weights or not all(0.0 < w <= 1.0 for w in self.weights):
            raise ValueError(f"expected weights in (0, 1], got {self.weights}")
        if not self.test_batch_sizes or min(self.test_batch_sizes) < 1:
            raise ValueError(f"expected test batch sizes >= 1, got {self.test_batch_sizes}")
        if self.record_every < 1:
            raise ValueError(f"expected record_every >= 1, got {self.record_every}")


def run_test_stats(data, settings: StatsSettings, *, progress: bool | None = None,
                   log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train one batch-norm network and measure its test accuracy with each kind of statistics.

    Returns:
        ``{"experiment", "dataset", "settings", "table": [rows], "trajectory": [rows],
        "seconds", "train_seconds", "diverged"}``. A table row has ``method``,
        ``kind`` (running / population / batch / single), ``setting`` (weight or
        batch size), ``test_accuracy`` (None where undefined) and ``note``; a
        trajectory row has ``step``, ``statistics``, ``layer``, ``shift``,
        ``scale`` and ``test_accuracy``.
    """
    settings.validate()
    say = log if log is not None else (lambda line: None)
    started = time.perf_counter()
    # new_batch_weight=1: the buffers hold the last batch's statistics, which
    # RunningAverages folds into one average per weight (see its docstring).
    model = build_network(replace(settings, new_batch_weight=1.0), data.num_features, data.num_classes, True)
    averages = RunningAverages(model, settings.weights)
    trajectory: list[dict[str, Any]] = []
    bar = progress_bar(settings.steps, "test-stats", progress)

    def on_step(step: int, model: Sequential) -> None:
        averages(step, model)
        bar.update(1)
        if step % settings.record_every == 0 or step == settings.steps:
            rows = _measure(step, model, averages, data)
            trajectory.extend(rows)
            accuracies = {row["statistics"]: row["test_accuracy"] for row in rows}
            bar.write(f"step {step:>6}/{settings.steps}  test_acc " + "  ".join(
                f"{name} {accuracy:.4f}" for name, accuracy in accuracies.items()), say)

    try:
        history = train(model, settings, data.x_train, data.y_train, on_step=on_step)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - started
    if history.stopped:
        say(history.stopped)
    table = _table(model, averages, data, settings)
    return {"experiment": "test-stats", "dataset": data.describe(), "settings": settings.as_dict(),
            "table": table, "trajectory": trajectory, "diverged": diverged(model, history),
            "train_seconds": train_seconds, "seconds": time.perf_counter() - started}


def _measure(step: int, model: Sequential, averages: RunningAverages, data) -> list[dict[str, Any]]:
    """Distances running-vs-population per weight and layer, and the test accuracy with each."""
    population = population_statistics(model, data.x_train)
    loss_fn = SoftmaxCrossEntropy()
    rows = []
    for weight in averages.weights:
        candidate = averages.install(copy.deepcopy(model), weight)
        accuracy = evaluate(candidate, loss_fn, data.x_test, data.y_test)[1]
        for name, layer in batch_norm_layers(model):
            mean, var = averages.statistics(weight)[name]
            exact = population[name]
            shift, scale = statistics_distance(mean, var, exact.mean, exact.running_var_for(layer), layer.eps)
            rows.append({"step": step, "statistics": f"running w={weight:g}", "weight": weight, "layer": name,
                         "shift": shift, "scale": scale, "test_accuracy": accuracy})
    exact_model = _with_population(copy.deepcopy(model), population)
    accuracy = evaluate(exact_model, loss_fn, data.x_test, data.y_test)[1]
    rows.append({"step": step, "statistics": "population", "weight": None, "layer": "all",
                 "shift": 0.0, "scale": 0.0, "test_accuracy": accuracy})
    return rows


def _table(model: Sequential, averages: RunningAverages, data, settings: StatsSettings) -> list[dict[str, Any]]:
    loss_fn = SoftmaxCrossEntropy()
    rows = []
    for weight in settings.weights:
        candidate = averages.install(copy.deepcopy(model), weight)
        rows.append(_row(f"running averages, new_batch_weight={weight:g}", "running", weight,
                         evaluate(candidate, loss_fn, data.x_test, data.y_test)[1]))
    exact_model = copy.deepcopy(model)
    precise_bn(exact_model, data.x_train)  # the toolbox's Algorithm 2, step 10
    rows.append(_row("population statistics of the training set (precise BN)", "population", None,
                     evaluate(exact_model, loss_fn, data.x_test, data.y_test)[1]))
    order = np.random.default_rng(settings.seed).permutation(len(data.x_test))
    for size in settings.test_batch_sizes:
        accuracy, note = batch_statistics_accuracy(model, data.x_test[order], data.y_test[order], size)
        rows.append(_row(f"batch statistics, test batches of {size}", "batch", size, accuracy, note))
    weight = DEFAULT_WEIGHT if DEFAULT_WEIGHT in averages.weights else averages.weights[0]
    rows.append(_row(f"one example at a time, model.predict(x) (running, w={weight:g})", "single", 1,
                     *single_example_accuracy(averages.install(copy.deepcopy(model), weight),
                                              data.x_test, data.y_test)))
    return rows


def _with_population(model: Sequential, population) -> Sequential:
    """Install population statistics computed earlier (what precise_bn does, without a second pass)."""
    for name, layer in batch_norm_layers(model):
        layer.buffers["running_mean"][...] = population[name].mean
        layer.buffers["running_var"][...] = population[name].running_var_for(layer)
    return model


def _row(method: str, kind: str, setting, accuracy: float | None, note: str = "") -> dict[str, Any]:
    return {"method": method, "kind": kind, "setting": setting, "test_accuracy": accuracy, "note": note}


def batch_statistics_accuracy(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float | None, str]:
    """Accuracy when every BatchNorm normalises each test batch with that batch's own statistics.

    The batches are consecutive slices of ``batch_size`` (a trailing batch of
    one joins the one before). A batch of one has variance 0 in every
    channel, so its normalisation is undefined: then the accuracy is None and
    the note quotes the layer's error. The model is not changed.
    """
    candidate = copy.deepcopy(model).eval()
    for _, layer in batch_norm_layers(candidate):
        layer.normalize_with = "batch"
    parts = [slice(i, i + 1) for i in range(len(x))] if batch_size == 1 else batch_slices(len(x), batch_size)
    correct = 0
    try:
        for part in parts:
            correct += int(np.sum(candidate.forward(x[part]).argmax(axis=1) == y[part]))
    except ValueError as error:
        if batch_size != 1:
            raise
        return None, "undefined: one example has variance 0 in every channel; BatchNorm raises ValueError"
    return correct / len(x), ""


def single_example_accuracy(model: Sequential, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Accuracy of ``model.predict(x_i)`` one 1-D example at a time, and how far it is from batched eval."""
    single = np.stack([model.predict(example) for example in x])
    batched = model.predict(x)
    gap = float(np.max(np.abs(single.astype(np.float64) - batched)))
    return float(np.mean(single.argmax(axis=1) == y)), f"max |single - batched eval| over the logits: {gap:.2g}"


def save_test_stats(result: dict[str, Any], out_dir: str | Path, *, plot: bool = True) -> dict[str, str]:
    """Write ``test_stats.csv`` (the table), ``test_stats_trajectory.csv``, ``test_stats.json`` and ``.png``."""
    out_dir = Path(out_dir)
    paths = {
        "csv": str(write_csv(out_dir / "test_stats.csv", result["table"])),
        "trajectory_csv": str(write_csv(out_dir / "test_stats_trajectory.csv", result["trajectory"])),
        "json": str(write_json(out_dir / "test_stats.json", result)),
    }
    if plot:
        from .plots import plot_test_stats

        paths["png"] = str(plot_test_stats(result, out_dir / "test_stats.png"))
    return paths


def stats_summary(result: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """The one-line JSON summary: the table's accuracies by method, steps, seconds, outputs."""
    return {
        "experiment": "test-stats",
        "dataset": result["dataset"],
        "steps": result["settings"]["steps"],
        "test_accuracy": {row["method"]: row["test_accuracy"] for row in result["table"]},
        "diverged": result["diverged"],
        "seconds": result["seconds"],
        "settings": result["settings"],
        "outputs": paths,
    }

