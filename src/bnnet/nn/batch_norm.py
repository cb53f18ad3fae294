"""The batch-norm layer: holds gamma, beta and the running statistics, calls the pure math.

Which statistics normalise, and whether the running ones move, are three
independent switches that survive ``train()`` / ``eval()``:

===================  ==========================  ==========================================
switch               values                      meaning
===================  ==========================  ==========================================
normalize_with       "auto" (default)            batch statistics in training, running in eval
                     "batch"                     batch statistics in both modes
                     "running"                   running statistics in both modes
update_running_stats True (default) / False      fold training batches into the running stats
train_affine         True (default) / False      gamma and beta get gradients (are trained)
===================  ==========================  ==========================================

Eval mode never changes anything: running statistics are only updated in training mode.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import fast
from ..fast import batch_norm_math
from ..functional import batch_norm as F
from ..functional.batch_renorm import batch_renorm_backward, batch_renorm_forward
from ..functional.ghost_batch_norm import ghost_batch_norm_backward, ghost_batch_norm_forward
from .module import Module
from .running_stats import RUNNING_AVERAGES, update_running_statistics, update_weight

NORMALIZE_WITH = ("auto", "batch", "running")
SINGLE_VALUE_POLICIES = ("error", "running")


class BatchNorm(Module):
    """Batch normalization over the channel axis (axis 1) of ``(N, C)`` or ``(N, C, *spatial)``.

    Training mode: ``y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta`` with the
    batch mean and *biased* batch variance per channel, over N and every spatial
    position. The running estimates then move towards the batch's, by
    ``running += weight * (batch - running)`` (see :mod:`bnnet.nn.running_stats`).

    Eval mode: the same formula with the running mean and variance, so each
    example's output depends on that example alone (a single example works).

    Args:
        num_features: C, the number of channels.
        eps: added to the variance inside the square root (PyTorch and Flax: 1e-5; Keras: 1e-3).
        new_batch_weight: the weight on the *new* batch in the running average,
            0.1 by default. This is PyTorch's ``momentum=0.1``; Keras and Flax
            call the weight on the *old* average ``momentum`` (0.99), which is
            ``1 - new_batch_weight``.
        running_average: ``"ema"``, ``"ema_debiased"`` (start-up bias
            corrected) or ``"cumulative"`` (equal weight to every batch).
        unbiased_running_var: store the unbiased batch variance m/(m-1) var_B in
            the running variance (paper, PyTorch); False stores the biased one (Keras, Flax).
        affine: learn gamma (scale; some texts call it alpha) and beta (shift).
        normalize_with: ``"auto"``, ``"batch"`` or ``"running"`` (table above).
        update_running_stats: whether training batches update the running statistics.
        train_affine: whether gamma and beta receive gradients.
        single_value_policy: what a training batch with one value per channel
            does: ``"error"`` (default) or ``"running"`` (normalise it with the
            running statistics and leave them unchanged).
        ghost_batch_size: normalise training batches in sub-batches of this size
            (ghost batch norm); None for whole batches.
        renorm: use Batch Renormalization in training.
        renorm_rmax, renorm_dmax: the clipping limits r in [1/rmax, rmax], d in [-dmax, dmax].
        renorm_warmup_steps: raise the limits linearly from (1, 0), plain batch
            norm, to (rmax, dmax) over this many training updates.
        dtype: float32 or float64 for parameters and buffers.

    Shape:
        input and output ``(N, C)`` or ``(N, C, *spatial)``.

    Raises:
        ValueError: wrong input shape, or one value per channel in training
            mode with ``single_value_policy="error"``.

    Example:
        >>> bn = BatchNorm(3, dtype=np.float64)
        >>> x = np.random.default_rng(0).normal(5.0, 2.0, size=(8, 3))
        >>> y = bn(x)                      # training mode: batch statistics
        >>> bool(np.allclose(y.mean(axis=0), 0.0))
        True
        >>> bool(np.all(bn.buffers["running_mean"] != 0.0))   # the running mean moved
        True
        >>> before = bn.buffers["running_mean"].copy()
        >>> _ = bn.eval()(x)               # eval mode: running statistics, nothing moves
        >>> bool(np.array_equal(before, bn.buffers["running_mean"]))
        True
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        new_batch_weight: float = 0.1,
        running_average: str = "ema",
        unbiased_running_var: bool = True,
        affine: bool = True,
        normalize_with: str = "auto",
        update_running_stats: bool = True,
        train_affine: bool = True,
        single_value_policy: str = "error",
        ghost_batch_size: int | None = None,
        renorm: bool = False,
        renorm_rmax: float = 3.0,
        renorm_dmax: float = 5.0,
        renorm_warmup_steps: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        _check_choice("running_average", running_average, RUNNING_AVERAGES)
        _check_choice("normalize_with", normalize_with, NORMALIZE_WITH)
        _check_choice("single_value_policy", single_value_policy, SINGLE_VALUE_POLICIES)
        if num_features < 1:
            raise ValueError(f"BatchNorm expected num_features >= 1, got {num_features}")
        if eps <= 0:
            raise ValueError(f"BatchNorm expected eps > 0, got {eps}")
        if not 0.0 < new_batch_weight <= 1.0:
            raise ValueError(
                f"BatchNorm expected 0 < new_batch_weight <= 1 (the weight on the new batch, "
                f"PyTorch's momentum), got {new_batch_weight}; for a Keras/Flax momentum of "
                f"0.99 pass new_batch_weight=0.01"
            )
        if ghost_batch_size is not None and ghost_batch_size < 2:
            raise ValueError(f"BatchNorm expected ghost_batch_size >= 2 or None, got {ghost_batch_size}")
        if renorm and ghost_batch_size is not None:
            raise ValueError("BatchNorm: renorm and ghost_batch_size cannot be combined; choose one")
        if renorm and (renorm_rmax < 1.0 or renorm_dmax < 0.0):
            raise ValueError(
                f"BatchNorm expected renorm_rmax >= 1 and renorm_dmax >= 0, got {renorm_rmax}, {renorm_dmax}"
            )
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.new_batch_weight = float(new_batch_weight)
        self.running_average = running_average
        self.unbiased_running_var = bool(unbiased_running_var)
        self.affine = bool(affine)
        self.normalize_with = normalize_with
        self.update_running_stats = bool(update_running_stats)
        self.train_affine = bool(train_affine)
        self.single_value_policy = single_value_policy
        self.ghost_batch_size = ghost_batch_size
        self.renorm = bool(renorm)
        self.renorm_rmax = float(renorm_rmax)
        self.renorm_dmax = float(renorm_dmax)
        self.renorm_warmup_steps = int(renorm_warmup_steps)
        self.dtype = np.dtype(dtype)
        if self.affine:
            self.params["gamma"] = np.ones(num_features, dtype=self.dtype)
            self.params["beta"] = np.zeros(num_features, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(num_features, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=self.dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)
        self._backward_fn = None
        self._cache: Any = None

    # -- switches ----------------------------------------------------------
    def trainable(self, name: str) -> bool:
        return self.train_affine

    def uses_batch_statistics(self) -> bool:
        """Whether the next forward normalises with the batch's own statistics."""
        if self.normalize_with == "auto":
            return self.training
        return self.normalize_with == "batch"

    def renorm_limits(self) -> tuple[float, float]:
        """(rmax, dmax) now: ramped linearly from (1, 0) over the warm-up updates."""
        steps = int(self.buffers["num_batches_tracked"])
        progress = 1.0 if self.renorm_warmup_steps <= 0 else min(1.0, steps / self.renorm_warmup_steps)
        return 1.0 + (self.renorm_rmax - 1.0) * progress, self.renorm_dmax * progress

    # -- forward / backward ------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        if not self.uses_batch_statistics():
            y = self._forward_fixed(x, gamma, beta)
            if self.training and self.update_running_stats and F.values_per_channel(x.shape) > 1:
                self._update_running(*F.batch_statistics(x), F.values_per_channel(x.shape))
            return y
        count = F.values_per_channel(x.shape)
        if count < 2:
            if self.single_value_policy == "running":
                return self._forward_fixed(x, gamma, beta)
            raise ValueError(self._single_value_message(x.shape))
        if self.ghost_batch_size is not None and self.training:  # a training-only method
            y, caches = ghost_batch_norm_forward(x, gamma, beta, self.eps, self.ghost_batch_size)
            self._backward_fn, self._cache = ghost_batch_norm_backward, caches
            for part, cache in caches:
                self._maybe_update_running(cache.mean, cache.var, F.values_per_channel(x[part].shape))
            return y
        if self.renorm and self.training:  # a training-only method
            rmax, dmax = self.renorm_limits()
            y, cache = batch_renorm_forward(
                x, gamma, beta, self.eps,
                self.buffers["running_mean"], self.buffers["running_var"], rmax, dmax,
            )
            self._backward_fn, self._cache = batch_renorm_backward, cache
        else:
            engine = batch_norm_math()  # the fast kernels, or F (the reference) on that engine
            y, cache = engine.batch_norm_forward(x, gamma, beta, self.eps)
            self._backward_fn, self._cache = engine.batch_norm_backward, cache
        self._maybe_update_running(cache.mean, cache.var, count)
        return y

    def _forward_fixed(self, x: np.ndarray, gamma, beta) -> np.ndarray:
        engine = batch_norm_math()  # the fast kernels, or F (the reference) on that engine
        y, cache = engine.fixed_statistics_forward(
            x, self.buffers["running_mean"], self.buffers["running_var"], gamma, beta, self.eps
        )
        self._backward_fn, self._cache = engine.fixed_statistics_backward, cache
        return y

    def _maybe_update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        if self.training and self.update_running_stats:
            self._update_running(mean, var, count)

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        tracked = self.buffers["num_batches_tracked"]
        weight = update_weight(self.running_average, self.new_batch_weight, int(tracked) + 1)
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        kernels = fast.ops()  # the same update in one compiled call, when it covers the arrays
        if kernels is not None and kernels.fold_running_statistics(
                running_mean, running_var, tracked, mean, var, count, weight, self.unbiased_running_var):
            return
        tracked += 1
        update_running_statistics(running_mean, running_var, mean, var, count, weight, self.unbiased_running_var)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._backward_fn is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        dx, dgamma, dbeta = self._backward_fn(grad_output, self._cache)
        self.grads = {}
        if self.affine and self.train_affine:
            self.grads["gamma"] = np.asarray(dgamma, dtype=self.dtype)
            self.grads["beta"] = np.asarray(dbeta, dtype=self.dtype)
        return dx

    # -- checks ------------------------------------------------------------
    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, *spatial), got {tuple(x.shape)}"
            )

    def _single_value_message(self, shape: tuple[int, ...]) -> str:
        return (
            f"BatchNorm expected more than 1 value per channel in training mode, got input of "
            f"shape {tuple(shape)}: the batch variance of a single value is 0, so it cannot be "
            f"normalised. Remedies: (1) train with batches of at least 2 examples; "
            f"(2) call model.eval() to predict with the running statistics (a single example "
            f"works in eval mode); (3) build the layer with single_value_policy='running' to "
            f"normalise such batches with the running statistics without updating them."
        )

    def config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "new_batch_weight": self.new_batch_weight,
            "running_average": self.running_average,
            "unbiased_running_var": self.unbiased_running_var,
            "affine": self.affine,
            "normalize_with": self.normalize_with,
            "update_running_stats": self.update_running_stats,
            "train_affine": self.train_affine,
            "single_value_policy": self.single_value_policy,
            "ghost_batch_size": self.ghost_batch_size,
            "renorm": self.renorm,
            "renorm_rmax": self.renorm_rmax,
            "renorm_dmax": self.renorm_dmax,
            "renorm_warmup_steps": self.renorm_warmup_steps,
            "dtype": self.dtype.name,
        }


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"BatchNorm expected {name} in {choices}, got {value!r}")
