"""Precise batch norm: exact population statistics in place of the running averages.

The paper's inference network (Ioffe & Szegedy 2015, Algorithm 2, step 10)
normalises with the mean and variance of each BatchNorm's input over the
training data, weights fixed. Running averages only approximate them: they
lean towards recent batches, and towards weights that have since changed.
Here they are computed exactly, layer by layer, in eval mode::

    for each BatchNorm k, in forward order:
        z_k = the input of BatchNorm k for every example, with every layer
              in eval mode (so BatchNorms 1..k-1 already use their new statistics)
        mean_k = mean of z_k over examples (and spatial positions)
        var_k  = biased variance of z_k over the same values
        running_mean_k <- mean_k
        running_var_k  <- var_k * n / (n - 1)   if the layer stores the unbiased
                          variance (PyTorch and the paper), else var_k (Keras, Flax)

Batches are pooled exactly with Chan et al.'s merge (:mod:`bnnet.toolbox.moments`),
so the result is the statistics of all the data at once, whatever the batch
size, and every deeper layer's statistics are those of the input it will
actually receive in eval mode. (The paper's recipe averages per-batch
variances of a training-mode pass, m/(m-1) E_B[var_B]; that estimate depends
on the batch size m and misses the spread between batch means.)

Two read-only functions serve studies that compare statistics without changing
the model: :func:`population_statistics` (what precise BN installs) and
:func:`input_statistics` (what each BatchNorm's input is in the model as it is now).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.batch_norm import BatchNorm
from ..nn.module import Module
from .moments import PooledMoments
from .walk import (
    batches, eval_mode, flat_layers, model_dtype, require_batch_norm, run_chain, statistics_restored,
)

DEFAULT_BATCH_SIZE = 1000  # only memory and speed depend on it: the pooled result does not


@dataclass(frozen=True)
class PopulationStatistics:
    """Exact statistics of one BatchNorm's input over a dataset.

    Attributes:
        name: the layer's dotted name in the model (``"1"`` is layer 1 of a Sequential).
        count: values per channel pooled: examples x spatial positions.
        mean: ``(C,)`` float64 mean.
        var: ``(C,)`` float64 *biased* variance (divides by ``count``).
    """

    name: str
    count: int
    mean: np.ndarray
    var: np.ndarray

    def running_var_for(self, layer: BatchNorm) -> np.ndarray:
        """The variance in the layer's stored convention: n/(n-1) var if it keeps the unbiased one."""
        if layer.unbiased_running_var and self.count > 1:
            return self.var * (self.count / (self.count - 1))
        return self.var


def population_statistics(
    model: Module,
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> dict[str, PopulationStatistics]:
    """Exact statistics of every BatchNorm's input, as precise BN would install them.

    BatchNorm k's input is computed in eval mode with BatchNorms 1..k-1
    normalising with *their* population statistics (see the module docstring),
    so these are the statistics of the network that :func:`precise_bn` gives.
    The model is left exactly as it was (buffers bit for bit, every module's mode).
    The cost is one eval-mode pass over the data (up to the last BatchNorm);
    the memory, one layer's activations for every example used.

    Args:
        model: a Sequential (nested ones allowed) or a single BatchNorm.
        x: the data, ``(N, features)``; cast to the model's floating type.
        batch_size: examples per forward pass; the result does not depend on it.
        max_batches: use only the first this many batches (None: all of x).
            Shuffle x first if it is ordered (by class, say).

    Returns:
        ``{layer name: PopulationStatistics}`` in forward order.

    Raises:
        ValueError: no BatchNorm in the model, empty x, batch_size < 1 or max_batches < 1.
        TypeError: a container other than Sequential.

    Example:
        >>> import bnnet
        >>> model = bnnet.mlp([3, 4, 2], dtype=np.float64)
        >>> data = np.random.default_rng(0).normal(size=(50, 3))
        >>> stats = population_statistics(model, data, batch_size=7)
        >>> first = data @ model[0].params["weight"].T
        >>> bool(np.allclose(stats["1"].mean, first.mean(axis=0)) and np.allclose(stats["1"].var, first.var(axis=0)))
        True
    """
    found = require_batch_norm(model, "population_statistics")
    layers = flat_layers(model)
    dtype = model_dtype(model)
    # Each batch's activations at the input of the current BatchNorm: the next
    # BatchNorm's input is computed from them once this one's statistics are
    # installed, so every layer runs once per batch (memory: one layer's
    # activations for the data used).
    current = [np.asarray(x[part], dtype=dtype) for part in batches(len(x), batch_size, max_batches)]
    start = 0
    result: dict[str, PopulationStatistics] = {}
    with eval_mode(model), statistics_restored(model):
        for position, name, layer in found:
            current = [run_chain(layers[start:position], h) for h in current]
            start = position
            pooled = PooledMoments(layer.num_features)
            for h in current:
                pooled.add(h)
            stats = PopulationStatistics(name, pooled.count, pooled.mean, pooled.variance())
            # Install now: the next layer's input must come from this layer's new statistics.
            _install(layer, stats)
            result[name] = stats
    return result


def input_statistics(
    model: Module,
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> dict[str, PopulationStatistics]:
    """Exact statistics of every BatchNorm's input in the model *as it is*, in one eval pass.

    Unlike :func:`population_statistics`, earlier BatchNorms keep their current
    running statistics, so this is what each layer receives right now: compare
    it with the layer's running statistics to see how stale they are. For the
    first BatchNorm the two functions agree. The model is not changed.

    Args, Returns, Raises: as :func:`population_statistics`.
    """
    found = require_batch_norm(model, "input_statistics")
    layers = flat_layers(model)
    last = found[-1][0]
    pooled = {position: PooledMoments(layer.num_features) for position, _, layer in found}
    dtype = model_dtype(model)
    with eval_mode(model):
        for part in batches(len(x), batch_size, max_batches):
            h = np.asarray(x[part], dtype=dtype)
            for position, (_, layer) in enumerate(layers[:last + 1]):
                if position in pooled:
                    pooled[position].add(h)
                h = layer.forward(h)
    return {name: PopulationStatistics(name, pooled[position].count, pooled[position].mean,
                                       pooled[position].variance())
            for position, name, _ in found}


def precise_bn(
    model: Module,
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> dict[str, PopulationStatistics]:
    """Replace every BatchNorm's running mean and variance with exact population statistics.

    Weights, gamma, beta, ``num_batches_tracked`` and every module's mode are
    unchanged; only ``running_mean`` and ``running_var`` are written (in the
    layer's dtype and variance convention).

    Args, Raises: as :func:`population_statistics`.

    Returns:
        The statistics installed, ``{layer name: PopulationStatistics}``.
    """
    found = require_batch_norm(model, "precise_bn")
    stats = population_statistics(model, x, batch_size, max_batches)
    for _, name, layer in found:
        _install(layer, stats[name])
    return stats


def _install(layer: BatchNorm, stats: PopulationStatistics) -> None:
    layer.buffers["running_mean"][...] = stats.mean
    layer.buffers["running_var"][...] = stats.running_var_for(layer)
