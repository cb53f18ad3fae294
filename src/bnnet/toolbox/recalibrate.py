"""AdaBN (Li et al. 2016): re-estimate batch-norm statistics on unlabeled data from a new domain.

A network trained on one domain (clean MNIST) and deployed on another (darker,
low-contrast scans) sees inputs whose per-feature mean and variance differ
from the ones its BatchNorms stored. AdaBN keeps every weight, gamma and beta
and replaces only the statistics, with those of the target domain::

    running_mean_k, running_var_k <- population statistics of BatchNorm k's
                                     input over the target-domain examples

computed layer by layer exactly as precise BN does
(:func:`bnnet.toolbox.precise_bn.population_statistics`): no labels are
needed, and deeper layers see the already-adapted earlier ones. For a shift
that is affine per input feature, the first BatchNorm then undoes it exactly
(up to eps): ``(c z + k - (c mu + k)) / sqrt(c^2 var) = (z - mu) / sqrt(var)``.
"""
from __future__ import annotations

import numpy as np

from ..nn.module import Module
from .precise_bn import DEFAULT_BATCH_SIZE, PopulationStatistics, precise_bn
from .walk import require_batch_norm


def recalibrate(
    model: Module,
    x_target: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> dict[str, PopulationStatistics]:
    """Adapt every BatchNorm's running statistics to unlabeled target-domain data, in place.

    Args:
        model: the trained model; only its BatchNorm running statistics change.
        x_target: unlabeled examples from the new domain, ``(N, features)``.
        batch_size: examples per forward pass (the result does not depend on it).
        max_batches: use only the first this many batches (None: all).

    Returns:
        The statistics installed, ``{layer name: PopulationStatistics}``.

    Raises:
        ValueError: no BatchNorm in the model, empty data, bad batch_size or max_batches.

    Example:
        >>> import bnnet
        >>> model = bnnet.mlp([2, 3, 2], dtype=np.float64).eval()
        >>> target = np.random.default_rng(0).normal(5.0, 3.0, size=(100, 2))
        >>> stats = recalibrate(model, target)
        >>> z = target @ model[0].params["weight"].T
        >>> bool(np.allclose(model[1].buffers["running_mean"], z.mean(axis=0)))
        True
    """
    require_batch_norm(model, "recalibrate")
    return precise_bn(model, x_target, batch_size, max_batches)
