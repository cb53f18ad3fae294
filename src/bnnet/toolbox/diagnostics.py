"""Batch-norm diagnostics: what is wrong with each layer's statistics, and what to do about it.

For every BatchNorm, from its input ``z`` (the model as it is, eval mode)
over a dataset and over one batch of it:

- **stale running statistics**: how far eval mode's normalisation is from the
  one the exact statistics of z give, per channel c, in z's own units::

      mean_offset_c = |running_mean_c - mean_c| / sqrt(var_c + eps)
      scale_error_c = sqrt((running_var_c + eps) / (var_c + eps)) - 1   (var_c in the layer's convention)

  An offset of 0.1 shifts every normalised value by a tenth of a standard
  deviation; a scale error of 0.1 shrinks them by 10 %.
- **train/eval gap**: on the same batch of m examples, the RMS difference
  between the training-mode normalised values (batch statistics) and the
  eval-mode ones (running statistics). Even perfect running statistics leave
  a gap from sampling noise: the batch mean is off by about 1/sqrt(m) standard
  deviations and the batch std by about 1/sqrt(2m) relative, so the expected
  gap is ``sqrt(1.5 / m)`` (0.16 for m = 60). A gap above twice that is flagged.
- **collapsed channels**: var_c < eps. eps then dominates the denominator, so
  the channel carries almost no signal and its normalised output is scaled down.
- **gamma near zero**: |gamma_c| < 0.01. The channel outputs about beta_c
  whatever its input: switched off.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..nn.batch_norm import BatchNorm
from ..nn.module import Module
from .precise_bn import DEFAULT_BATCH_SIZE, PopulationStatistics, input_statistics
from .walk import batch_norm_layers, eval_mode, flat_layers, model_dtype

STALE_MEAN_OFFSET = 0.1  # std units: shifts every normalised value by 1/10 of a std
STALE_SCALE_ERROR = 0.1  # 10 % too large or too small a scale
GAP_FACTOR = 2.0  # flag a train/eval gap above this multiple of the sampling-noise level
GAMMA_TOLERANCE = 0.01  # |gamma| below this: the channel is switched off


@dataclass
class LayerDiagnosis:
    """The findings for one BatchNorm; ``advice`` is empty when nothing is wrong."""

    name: str
    num_features: int
    count: int  # values per channel the exact statistics came from
    mean_offset: float  # max over channels, in std units
    mean_offset_channel: int
    scale_error: float  # max over channels of |std ratio - 1|
    scale_error_channel: int
    train_eval_gap: float  # RMS, in std units
    expected_gap: float  # sqrt(1.5 / m), the sampling-noise level
    batch_size: int
    collapsed_channels: list[int] = field(default_factory=list)
    small_gamma_channels: list[int] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def diagnose(
    model: Module,
    x: np.ndarray,
    *,
    batch_size: int = 60,
    stats_batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> list[LayerDiagnosis]:
    """Inspect every BatchNorm of ``model`` on data ``x``; the model is not changed.

    Args:
        model: a Sequential with BatchNorm layers.
        x: data the running statistics should describe (usually the training set).
        batch_size: m, the size of the batch (the first m rows of x) for the
            train/eval gap; use the training batch size.
        stats_batch_size: examples per forward pass for the exact statistics.
        max_batches: compute the exact statistics from only this many batches.

    Returns:
        One :class:`LayerDiagnosis` per BatchNorm, in forward order.

    Raises:
        ValueError: no BatchNorm, empty x, or batch_size < 2.
    """
    if batch_size < 2:
        raise ValueError(f"diagnose expected batch_size >= 2 (a batch of one has no variance), got {batch_size}")
    stats = input_statistics(model, x, stats_batch_size, max_batches)
    batch_inputs = _inputs_of_one_batch(model, x[:batch_size])
    report = []
    for _, name, layer in batch_norm_layers(model):
        report.append(_diagnose_layer(name, layer, stats[name], batch_inputs[name]))
    return report


def statistics_distance(
    layer: BatchNorm, running_mean: np.ndarray, running_var: np.ndarray, stats: PopulationStatistics
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, how far running statistics are from exact ones (formulas in the module docstring).

    Returns:
        ``(mean_offset, scale_error)``, each ``(C,)``: the mean difference in
        standard deviations, and |std ratio - 1| with the variance in the layer's convention.
    """
    exact_std = np.sqrt(stats.running_var_for(layer) + layer.eps)
    mean_offset = np.abs(np.asarray(running_mean, np.float64) - stats.mean) / np.sqrt(stats.var + layer.eps)
    scale_error = np.abs(np.sqrt(np.asarray(running_var, np.float64) + layer.eps) / exact_std - 1.0)
    return mean_offset, scale_error


def _diagnose_layer(name: str, layer: BatchNorm, stats: PopulationStatistics, batch: np.ndarray) -> LayerDiagnosis:
    running_mean = layer.buffers["running_mean"].astype(np.float64)
    running_var = layer.buffers["running_var"].astype(np.float64)
    offsets, scale_errors = statistics_distance(layer, running_mean, running_var, stats)
    batch = batch.astype(np.float64)
    axes = (0, *range(2, batch.ndim))
    shape = (1, -1) + (1,) * (batch.ndim - 2)
    trained = (batch - batch.mean(axis=axes).reshape(shape)) / np.sqrt(batch.var(axis=axes) + layer.eps).reshape(shape)
    evaluated = (batch - running_mean.reshape(shape)) / np.sqrt(running_var + layer.eps).reshape(shape)
    m = batch.size // layer.num_features
    diagnosis = LayerDiagnosis(
        name=name, num_features=layer.num_features, count=stats.count,
        mean_offset=float(offsets.max()), mean_offset_channel=int(offsets.argmax()),
        scale_error=float(scale_errors.max()), scale_error_channel=int(scale_errors.argmax()),
        train_eval_gap=float(np.sqrt(np.mean((trained - evaluated) ** 2))), expected_gap=float(np.sqrt(1.5 / m)),
        batch_size=m,
        collapsed_channels=[int(c) for c in np.flatnonzero(stats.var < layer.eps)],
        small_gamma_channels=[int(c) for c in np.flatnonzero(np.abs(layer.params["gamma"]) < GAMMA_TOLERANCE)]
        if layer.affine else [],
    )
    diagnosis.advice = _advice(diagnosis)
    return diagnosis


def _advice(d: LayerDiagnosis) -> list[str]:
    advice = []
    if d.mean_offset > STALE_MEAN_OFFSET or d.scale_error > STALE_SCALE_ERROR:
        advice.append(
            f"stale running statistics (mean off by {d.mean_offset:.3g} std in channel {d.mean_offset_channel}, "
            f"scale off by {100 * d.scale_error:.3g}% in channel {d.scale_error_channel}): eval mode normalises "
            f"with the wrong statistics. Run `bnnet precise-bn MODEL --out FIXED` to install exact ones; if the "
            f"data at hand is from a new domain, `bnnet recalibrate` does the same (AdaBN)."
        )
    if d.train_eval_gap > GAP_FACTOR * d.expected_gap:
        advice.append(
            f"train/eval gap {d.train_eval_gap:.3g} std on a batch of {d.batch_size}, over {GAP_FACTOR:g}x the "
            f"{d.expected_gap:.3g} that sampling noise explains: training and eval mode compute different "
            f"functions. Remedies: precise statistics (`bnnet precise-bn`); freeze the statistics for the last "
            f"epochs (`bnnet train --freeze-bn-last-epochs 1`); batch renorm (`--renorm`); larger batches."
        )
    if d.collapsed_channels:
        advice.append(
            f"{len(d.collapsed_channels)} channel(s) with collapsed variance (< eps): {_first(d.collapsed_channels)}. "
            f"They carry almost no signal (dead units upstream, or weights driven to zero): lower the learning "
            f"rate or re-initialise the weights feeding them; after training they can be pruned."
        )
    if d.small_gamma_channels:
        advice.append(
            f"{len(d.small_gamma_channels)} channel(s) with |gamma| < {GAMMA_TOLERANCE:g}: "
            f"{_first(d.small_gamma_channels)}. They output beta whatever the input, i.e. they are switched off; "
            f"if that is not intended, take gamma out of weight decay or lower the learning rate."
        )
    return advice


def _first(channels: list[int], shown: int = 10) -> str:
    text = ", ".join(str(c) for c in channels[:shown])
    return text + (f", ... ({len(channels) - shown} more)" if len(channels) > shown else "")


def _inputs_of_one_batch(model: Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each BatchNorm's input for one batch, eval mode (the model as it is)."""
    inputs = {}
    h = np.asarray(x, dtype=model_dtype(model))
    with eval_mode(model):
        for name, layer in flat_layers(model):
            if isinstance(layer, BatchNorm):
                inputs[name] = h
            h = layer.forward(h)
    return inputs


def format_report(report: list[LayerDiagnosis]) -> str:
    """The diagnosis as a table and one line of advice per finding."""
    lines = [f"{'layer':>6} {'C':>5} {'mean off (std)':>15} {'scale off':>10} {'train/eval gap':>15} "
             f"{'(noise)':>8} {'collapsed':>10} {'gamma~0':>8}"]
    for d in report:
        lines.append(f"{d.name:>6} {d.num_features:>5} {d.mean_offset:>15.4f} {100 * d.scale_error:>9.2f}% "
                     f"{d.train_eval_gap:>15.4f} {d.expected_gap:>8.4f} {len(d.collapsed_channels):>10} "
                     f"{len(d.small_gamma_channels):>8}")
    findings = [(d.name, advice) for d in report for advice in d.advice]
    if not findings:
        lines.append("no problems found: running statistics match the data and no channel is collapsed or off")
    lines += [f"layer {name}: {advice}" for name, advice in findings]
    return "\n".join(lines)
