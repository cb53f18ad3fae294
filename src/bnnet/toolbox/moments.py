"""Exact per-channel mean and variance of data seen in batches of any sizes (Chan et al.).

Each batch b is summarised by its count n_b, mean m_b and M2_b, the sum of
squared deviations from its own mean (computed in two passes, so it is never
the difference of two large numbers). Two summaries merge exactly
(Chan, Golub & LeVeque 1979, the pairwise update)::

    n     = n_a + n_b
    delta = m_b - m_a
    mean  = m_a + delta * n_b / n
    M2    = M2_a + M2_b + delta^2 * n_a * n_b / n

so the result is the mean and variance of all the values at once, whatever
the batching: the ``delta^2`` term adds exactly the spread *between* batch
means that averaging per-batch variances would miss. Every term is a sum of
non-negative numbers or a small correction, so the update is numerically
stable, unlike accumulating sum(x) and sum(x^2) (which cancels
catastrophically when |mean| >> std). Sums are kept in float64 whatever the
data's type.
"""
from __future__ import annotations

import numpy as np

from ..functional.batch_norm import batch_statistics, values_per_channel


class PooledMoments:
    """Running count, mean and M2 per channel; ``add`` batches, read ``mean`` and ``variance()``.

    Args:
        num_channels: C, the size of axis 1 of every batch.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> data = rng.normal(3.0, 2.0, size=(10, 4))
        >>> pooled = PooledMoments(4)
        >>> for part in (data[:3], data[3:4], data[4:]):   # batches of 3, 1 and 6
        ...     pooled.add(part)
        >>> bool(np.allclose(pooled.mean, data.mean(axis=0)) and np.allclose(pooled.variance(), data.var(axis=0)))
        True
    """

    def __init__(self, num_channels: int) -> None:
        self.count = 0
        self.mean = np.zeros(num_channels, dtype=np.float64)
        self.m2 = np.zeros(num_channels, dtype=np.float64)

    def add(self, x: np.ndarray) -> None:
        """Merge one batch ``(N, C)`` or ``(N, C, *spatial)``: N * prod(spatial) values per channel."""
        if x.ndim < 2 or x.shape[1] != self.mean.size:
            raise ValueError(f"expected a batch of shape (N, {self.mean.size}, ...), got {tuple(x.shape)}")
        count = values_per_channel(x.shape)
        if count == 0:
            return
        batch_mean, batch_var = batch_statistics(np.asarray(x, dtype=np.float64))
        self.merge(count, batch_mean, batch_var * count)

    def merge(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Merge a summary (count, mean, M2) of other values: the pairwise update above."""
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * count / total)
        self.count = total

    def variance(self) -> np.ndarray:
        """The biased variance M2 / n of every value merged so far (the data are the population)."""
        if self.count == 0:
            raise ValueError("no values were added: the variance of nothing is undefined")
        return self.m2 / self.count
