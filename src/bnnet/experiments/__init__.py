"""Experiments that check batch norm's claims on real data, as a user runs them.

- :mod:`.fig1`: Ioffe & Szegedy (2015), Figure 1 on MNIST, with and without batch norm
  (``bnnet experiment fig1``);
- :mod:`.test_stats`: test-time statistics of one trained network: running averages of
  several weights, population statistics, batch statistics of small test batches, single
  examples (``bnnet experiment test-stats``);
- :mod:`.lr_sweep`: final accuracy against the learning rate, with and without batch norm
  (``bnnet experiment lr-sweep``).

Each ``run_*`` returns a JSON-ready dict, each ``save_*`` writes CSV, JSON and a PNG
(:mod:`.plots`, matplotlib imported only then). They train through the public API
(:func:`bnnet.mlp`, :func:`bnnet.fit`, the optimizers), so a faster engine speeds them up
unchanged. Results and commands: docs/experiments.md.
"""
from .fig1 import Fig1Settings, fig1_summary, run_fig1, save_fig1
from .lr_sweep import SweepSettings, lr_sweep_summary, run_lr_sweep, save_lr_sweep
from .network import TrainingSettings, build_network, build_optimizer, diverged, train
from .recording import Recorder, activation_input, percentiles
from .running_averages import RunningAverages, statistics_distance
from .test_stats import StatsSettings, run_test_stats, save_test_stats, stats_summary

__all__ = [
    "Fig1Settings", "Recorder", "RunningAverages", "StatsSettings", "SweepSettings", "TrainingSettings",
    "activation_input", "build_network", "build_optimizer", "diverged", "fig1_summary", "lr_sweep_summary",
    "percentiles", "run_fig1", "run_lr_sweep", "run_test_stats", "save_fig1", "save_lr_sweep",
    "save_test_stats", "statistics_distance", "stats_summary", "train",
]
