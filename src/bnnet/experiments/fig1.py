"""Ioffe & Szegedy (2015), Figure 1, on MNIST: the same network with and without batch norm.

Both networks (see :mod:`bnnet.experiments.network`) start from the same
weights, see the same batches and use the same optimizer and learning rate.
Every ``record_every`` steps, for each network, in eval mode (batch norm with
its running statistics):

- (a) test accuracy;
- (b, c) the 15th, 50th and 85th percentiles, over a fixed batch of test
  images (the probe), of the input of one fixed sigmoid unit of the last
  hidden layer: ``W3 h2`` (+ bias) without batch norm, ``BN(W3 h2)`` with it.

One unit is what the paper plots; to see whether it is typical, every unit of
that layer is followed too, and each network's result has its *band drift*
(:func:`~bnnet.experiments.recording.band_drift`): how far each unit's median
moved from 1/10 of training to the end, in widths of its 15-85 band.

The paper's reading: with batch norm the accuracy rises sooner and ends
higher, and the percentile band stays put, while without it the distribution
of the sigmoid's input drifts ("internal covariate shift").
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..losses import SoftmaxCrossEntropy
from ..training.progress import progress_bar
from .network import NETWORKS, TrainingSettings, build_network, diverged, train
from .recording import Recorder, band_drift, write_csv, write_json

LABELS = {"without_bn": "without BN", "with_bn": "with BN"}
DRIFT_START = 10  # band drift is measured from 1/10 of training, after the first fast transient


@dataclass
class Fig1Settings(TrainingSettings):
    """:class:`TrainingSettings` plus what Figure 1 records.

    Attributes:
        record_every: steps between records (the paper's plot has a point every few hundred).
        probe_size: test images in the fixed batch whose sigmoid inputs are summarised.
        unit: the sigmoid unit of the last hidden layer that is followed.
    """

    record_every: int = 500
    probe_size: int = 1000
    unit: int = 0

    def validate(self) -> None:
        super().validate()
        if self.record_every < 1:
            raise ValueError(f"expected record_every >= 1, got {self.record_every}")
        if self.probe_size < 1:
            raise ValueError(f"expected probe_size >= 1, got {self.probe_size}")
        if not 0 <= self.unit < self.hidden[-1]:
            raise ValueError(f"expected unit in 0..{self.hidden[-1] - 1} (the last hidden layer has "
                             f"{self.hidden[-1]} units), got {self.unit}")


def probe_batch(x_test: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A fixed batch of ``size`` test inputs, drawn without replacement with ``default_rng(seed)``.

    >>> probe_batch(np.arange(10.0)[:, None], 3, seed=0).shape
    (3, 1)
    """
    size = min(size, len(x_test))
    rows = np.sort(np.random.default_rng(seed).choice(len(x_test), size=size, replace=False))
    return x_test[rows]


def run_fig1(data, settings: Fig1Settings, *, progress: bool | None = None,
             log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train both networks and record them; returns a JSON-ready result.

    Args:
        data: a :class:`bnnet.data.Dataset`.
        settings: the experiment's settings (validated here).
        progress: show one progress bar over both runs (None: on a terminal only).
        log: where progress lines go (None: nowhere).

    Returns:
        ``{"experiment", "dataset", "settings", "networks": {name: {"records",
        "band_drift", "final_test_accuracy", "steps", "seconds", "stopped",
        "diverged"}}, "seconds"}`` where name is ``"without_bn"`` or
        ``"with_bn"``; a network's seconds include its recording passes.
    """
    settings.validate()
    probe = probe_batch(data.x_test, settings.probe_size, settings.seed)
    bar = progress_bar(settings.steps * len(NETWORKS), "fig1", progress)
    say = (lambda line: bar.write(line, log)) if log is not None else (lambda line: None)
    started = time.perf_counter()
    networks: dict[str, Any] = {}
    try:
        for name, batch_norm in NETWORKS.items():
            model = build_network(settings, data.num_features, data.num_classes, batch_norm)
            recorder = Recorder(SoftmaxCrossEntropy(), data.x_test, data.y_test, probe, unit=settings.unit,
                                every=settings.record_every, on_record=_logger(name, settings, say))
            recorder(0, model)

            def on_step(step: int, model, recorder=recorder) -> None:
                bar.update(1)
                recorder(step, model)

            run_started = time.perf_counter()
            history = train(model, settings, data.x_train, data.y_train, on_step=on_step)
            if recorder.records[-1]["step"] != history.steps:
                recorder.record(history.steps, model)  # the last step is always recorded
            if history.stopped:
                say(f"[{LABELS[name]}] {history.stopped}")
            networks[name] = {
                "records": recorder.records,
                "band_drift": _drift_summary(recorder, settings),
                "final_test_accuracy": recorder.records[-1]["test_accuracy"],
                "steps": history.steps,
                "seconds": time.perf_counter() - run_started,
                "stopped": history.stopped,
                "diverged": diverged(model, history),
            }
    finally:
        bar.close()
    return {"experiment": "fig1", "dataset": data.describe(), "settings": settings.as_dict(),
            "networks": networks, "seconds": time.perf_counter() - started}


def _drift_summary(recorder: Recorder, settings: Fig1Settings) -> dict[str, float]:
    """Band drift of the followed unit and its mean and median over every unit of the layer."""
    steps = [record["step"] for record in recorder.records]
    start = min((step for step in steps if step >= settings.steps // DRIFT_START), default=steps[-1])
    drift = band_drift(steps, recorder.all_units, start=start)
    return {"from_step": start, "unit": float(drift[settings.unit]),
            "mean_over_units": float(np.mean(drift)), "median_over_units": float(np.median(drift))}


def _logger(name: str, settings: Fig1Settings, say: Callable[[str], None]) -> Callable[[dict], None]:
    """Log every 10th record (and the first and last), not all of them."""
    def on_record(record: dict) -> None:
        step = record["step"]
        if step % (10 * settings.record_every) == 0 or step == settings.steps:
            say(f"[{LABELS[name]:>11}] step {step:>6}/{settings.steps}  test_acc {record['test_accuracy']:.4f}  "
                f"sigmoid input p15/p50/p85 {record['p15']:+.2f} {record['p50']:+.2f} {record['p85']:+.2f}")
    return on_record


def save_fig1(result: dict[str, Any], out_dir: str | Path, *, plot: bool = True) -> dict[str, str]:
    """Write ``fig1.csv`` (one row per network and record), ``fig1.json`` and ``fig1.png``.

    Returns:
        ``{"csv": path, "json": path, "png": path}`` (no ``"png"`` when ``plot`` is False).
    """
    out_dir = Path(out_dir)
    rows = [{"network": name, **record} for name, run in result["networks"].items() for record in run["records"]]
    paths = {"csv": str(write_csv(out_dir / "fig1.csv", rows)), "json": str(write_json(out_dir / "fig1.json", result))}
    if plot:
        from .plots import plot_fig1

        paths["png"] = str(plot_fig1(result, out_dir / "fig1.png"))
    return paths


def fig1_summary(result: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """The one-line JSON summary: final test accuracy of each network, steps, seconds, outputs."""
    networks = result["networks"]
    return {
        "experiment": "fig1",
        "dataset": result["dataset"],
        "steps": result["settings"]["steps"],
        "final_test_accuracy": {name: run["final_test_accuracy"] for name, run in networks.items()},
        "diverged": {name: run["diverged"] for name, run in networks.items()},
        "band_drift": {name: run["band_drift"] for name, run in networks.items()},
        "seconds_per_network": {name: run["seconds"] for name, run in networks.items()},
        "seconds": result["seconds"],
        "settings": result["settings"],
        "outputs": paths,
    }
