"""Batch norm's running averages for several weights from one training run, and their error.

Running statistics never enter training: in training mode batch norm
normalises with the batch's own statistics, so the weights a network learns
do not depend on ``new_batch_weight``. Networks that differ only in that weight
therefore train identically, and their running averages are the same
recursion over the *same* sequence of batch statistics::

    running_w <- running_w + w * (batch_t - running_w)      (running_0: mean 0, var 1)

:class:`RunningAverages` computes them all from one run: the network is built
with ``new_batch_weight = 1``, so after step t its own buffers hold exactly
batch t's mean and unbiased variance m/(m-1) var_B, and an ``on_step``
callback folds them into one average per weight. This gives what separate
networks with those weights would hold, at the cost of one.

:func:`statistics_distance` measures how far running statistics are from the
population ones, in the units that matter at test time: eval-mode batch norm
computes ``(x - mean) / sqrt(var + eps)``, so with running instead of
population statistics the normalised value is off by a shift of
``(mean_run - mean_pop) / sqrt(var_pop + eps)`` and a scale of
``sqrt((var_pop + eps) / (var_run + eps))``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..nn.batch_norm import BatchNorm
from ..nn.sequential import Sequential


def batch_norm_layers(model: Sequential) -> list[tuple[str, BatchNorm]]:
    """Every BatchNorm of a flat Sequential as ``(name, layer)``; the name is its index, as in buffer names."""
    return [(str(index), layer) for index, layer in enumerate(model.layers) if isinstance(layer, BatchNorm)]


class RunningAverages:
    """Exponential running averages of every BatchNorm's batch statistics, one per weight.

    Pass it as ``on_step`` to :func:`bnnet.training.fit` (it is called after
    every step) for a model whose BatchNorms have ``new_batch_weight=1``.

    Args:
        model: the network being trained.
        weights: the weights on the new batch (PyTorch's ``momentum``), each in (0, 1].

    Raises:
        ValueError: a weight out of range, no BatchNorm, or a BatchNorm whose
            buffers do not hold the last batch's statistics after a step.

    Example:
        >>> import bnnet
        >>> net = bnnet.mlp([3, 4, 2], batch_norm_options={"new_batch_weight": 1.0}, dtype=np.float64)
        >>> averages = RunningAverages(net, [0.1, 0.5])
        >>> _ = net(np.random.default_rng(0).normal(size=(8, 3)))  # one training step's forward
        >>> averages(1, net)
        >>> bool(np.allclose(averages.statistics(0.5)["1"][0], 0.5 * net[1].buffers["running_mean"]))
        True
    """

    def __init__(self, model: Sequential, weights: Sequence[float]) -> None:
        self.layers = batch_norm_layers(model)
        if not self.layers:
            raise ValueError("expected a network with at least one BatchNorm layer, got none")
        for name, layer in self.layers:
            if layer.new_batch_weight != 1.0 or layer.running_average != "ema" or not layer.update_running_stats:
                raise ValueError(
                    f"expected BatchNorm {name} to store the last batch's statistics (new_batch_weight=1.0, "
                    f"running_average='ema', update_running_stats=True), got new_batch_weight="
                    f"{layer.new_batch_weight}, running_average={layer.running_average!r}, "
                    f"update_running_stats={layer.update_running_stats}; build it with "
                    f"batch_norm_options={{'new_batch_weight': 1.0}}"
                )
        self.weights = [float(w) for w in weights]
        for weight in self.weights:
            if not 0.0 < weight <= 1.0:
                raise ValueError(f"expected every weight in (0, 1], got {weight}")
        # Start where a new BatchNorm starts: mean 0, variance 1, in the layer's dtype.
        self.averages = {
            weight: {name: (np.zeros_like(layer.buffers["running_mean"]), np.ones_like(layer.buffers["running_var"]))
                     for name, layer in self.layers}
            for weight in self.weights
        }

    def __call__(self, step: int, model: Sequential) -> None:
        for name, layer in self.layers:
            batch_mean, batch_var = layer.buffers["running_mean"], layer.buffers["running_var"]
            for weight, layers in self.averages.items():
                mean, var = layers[name]
                mean += weight * (batch_mean - mean)
                var += weight * (batch_var - var)

    def statistics(self, weight: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{layer name: (running mean, running variance)}`` for one weight."""
        if weight not in self.averages:
            raise KeyError(f"no running average with weight {weight}; the weights are {self.weights}")
        return self.averages[weight]

    def install(self, model: Sequential, weight: float) -> Sequential:
        """Write the averages for ``weight`` into the model's buffers (a copy of the trained model)."""
        for name, layer in batch_norm_layers(model):
            mean, var = self.statistics(weight)[name]
            layer.buffers["running_mean"][...] = mean
            layer.buffers["running_var"][...] = var
        return model


def statistics_distance(running_mean: np.ndarray, running_var: np.ndarray, population_mean: np.ndarray,
                        population_var: np.ndarray, eps: float) -> tuple[float, float]:
    """(shift, scale) errors of eval-mode normalisation with running instead of population statistics.

    ``shift = rms_c((mean_run - mean_pop) / sqrt(var_pop + eps))``: how far the
    normalised values move, in population standard deviations.
    ``scale = rms_c(sqrt((var_run + eps) / (var_pop + eps)) - 1)``: the relative
    error of the standard deviation they are divided by. Both are 0 for exact statistics.

    >>> statistics_distance(np.array([1.0]), np.array([4.0]), np.array([0.0]), np.array([1.0]), eps=0.0)
    (1.0, 1.0)
    """
    population_scale = np.sqrt(np.asarray(population_var, np.float64) + eps)
    shift = (np.asarray(running_mean, np.float64) - population_mean) / population_scale
    scale = np.sqrt(np.asarray(running_var, np.float64) + eps) / population_scale - 1.0
    return float(np.sqrt(np.mean(shift ** 2))), float(np.sqrt(np.mean(scale ** 2)))
