"""Batch-norm settings and state across frameworks: PyTorch, Keras and Flax, one call each way.

The same layer is described differently by each framework:

==================  ======================  ====================  =========================  =======================
what                bnnet                   PyTorch BatchNorm1d   Keras BatchNormalization   Flax nn.BatchNorm
==================  ======================  ====================  =========================  =======================
averaging weight    new_batch_weight = w    momentum = w (0.1)    momentum = 1 - w (0.99)    momentum = 1 - w (0.99)
equal-weight avg    "cumulative"            momentum = None       (none)                     (none)
eps                 eps (1e-5)              eps (1e-5)            epsilon (1e-3)             epsilon (1e-5)
variance averaged   unbiased_running_var    unbiased (True)       biased (False)             biased (False)
affine              affine                  affine                center and scale           use_bias and use_scale
scale               params gamma            weight                gamma                      params/scale
shift               params beta             bias                  beta                       params/bias
running mean        running_mean            running_mean          moving_mean                batch_stats/mean
running variance    running_var             running_var           moving_variance            batch_stats/var
update counter      num_batches_tracked     num_batches_tracked   (none)                     (none)
==================  ======================  ====================  =========================  =======================

"variance averaged" is which batch variance enters the running average: the
unbiased m/(m-1) var_B or the biased var_B. The stored running variance is
copied unchanged in both directions, because every framework normalises with
it the same way in eval mode, ``(x - mean) / sqrt(var + eps)``: converting it
would change the eval outputs. The convention flag only changes how later
training batches are folded in.

Eval-mode behaviour always converts exactly. bnnet's training-only options
that a framework lacks (bias-corrected or cumulative averages, the variance
convention, ghost batches, batch renorm, freezing switches) are listed in the
result's ``notes``, or refused with ``strict=True``; never dropped silently.
Framework settings bnnet cannot express are refused with the setting named:
PyTorch's ``track_running_stats=False``, Keras's ``renorm`` and
``virtual_batch_size``, a shift without a scale or the reverse. Other keys of a
framework config (names, initialisers, axis, dtype) do not change the
statistics and are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn.batch_norm import BatchNorm

FRAMEWORKS = ("pytorch", "keras", "flax")

# Each framework's defaults, used when a key is absent from a config.
DEFAULTS = {
    "pytorch": {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True},
    "keras": {"epsilon": 1e-3, "momentum": 0.99, "center": True, "scale": True, "renorm": False,
              "virtual_batch_size": None},
    "flax": {"epsilon": 1e-5, "momentum": 0.99, "use_bias": True, "use_scale": True},
}


@dataclass(frozen=True)
class FrameworkBatchNorm:
    """A batch-norm layer in one framework's own names.

    Attributes:
        framework: ``"pytorch"``, ``"keras"`` or ``"flax"``.
        config: constructor arguments (PyTorch ``BatchNorm1d(**config)``,
            Keras ``BatchNormalization(**config)``, Flax ``nn.BatchNorm(**config)``).
        state: PyTorch: the ``state_dict``; Keras: ``{"gamma", "beta", "moving_mean",
            "moving_variance"}`` (``set_weights`` takes them in that order, without
            gamma/beta when ``scale``/``center`` is off); Flax: the variables
            ``{"params": {"scale", "bias"}, "batch_stats": {"mean", "var"}}``.
        notes: training-time settings of the bnnet layer the framework cannot
            express (empty when the conversion is exact for training too).
    """

    framework: str
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def to_framework(layer: BatchNorm, framework: str, *, strict: bool = False) -> FrameworkBatchNorm:
    """Describe a bnnet BatchNorm in another framework's conventions (settings and state).

    The eval-mode computation always converts exactly. Training-time settings
    the framework lacks (bias-corrected or cumulative averages, the variance
    convention, ghost batches, renorm, freezing switches) are listed in
    ``notes``, or refused with ``strict=True``.

    Args:
        layer: the bnnet layer.
        framework: ``"pytorch"``, ``"keras"`` or ``"flax"``.
        strict: raise instead of noting a training-time difference.

    Raises:
        ValueError: an unknown framework; ``normalize_with`` other than
            ``"auto"`` (it changes what the layer computes); with ``strict``,
            any training-time difference.

    Example:
        >>> keras = to_framework(BatchNorm(4, new_batch_weight=0.01, eps=1e-3, unbiased_running_var=False), "keras")
        >>> keras.config
        {'epsilon': 0.001, 'momentum': 0.99, 'center': True, 'scale': True}
    """
    _check_framework(framework)
    if layer.normalize_with != "auto":
        raise ValueError(
            f"to_framework({framework!r}) expected normalize_with='auto' (batch statistics in training, running "
            f"in eval, as every framework does), got {layer.normalize_with!r}; set it back on the layer first"
        )
    notes = tuple(_differences(layer, framework))
    if strict and notes:
        raise ValueError(f"to_framework({framework!r}, strict=True) cannot express: " + "; ".join(notes))
    mean, var = layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy()
    gamma, beta = (layer.params["gamma"].copy(), layer.params["beta"].copy()) if layer.affine else (None, None)
    old_weight = complement(layer.new_batch_weight)
    if framework == "pytorch":
        momentum = None if layer.running_average == "cumulative" else layer.new_batch_weight
        config = {"num_features": layer.num_features, "eps": layer.eps, "momentum": momentum,
                  "affine": layer.affine, "track_running_stats": True}
        state = {"running_mean": mean, "running_var": var,
                 "num_batches_tracked": layer.buffers["num_batches_tracked"].copy()}
        if layer.affine:
            state = {"weight": gamma, "bias": beta, **state}
        return FrameworkBatchNorm(framework, config, state, notes)
    if framework == "keras":
        config = {"epsilon": layer.eps, "momentum": old_weight, "center": layer.affine, "scale": layer.affine}
        state = {"gamma": gamma, "beta": beta} if layer.affine else {}
        state.update({"moving_mean": mean, "moving_variance": var})
        return FrameworkBatchNorm(framework, config, state, notes)
    config = {"epsilon": layer.eps, "momentum": old_weight, "use_bias": layer.affine, "use_scale": layer.affine}
    state: dict[str, Any] = {"batch_stats": {"mean": mean, "var": var}}
    if layer.affine:
        state = {"params": {"scale": gamma, "bias": beta}, **state}
    return FrameworkBatchNorm(framework, config, state, notes)


def from_framework(
    framework: str,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    num_features: int | None = None,
    dtype: Any = np.float32,
) -> BatchNorm:
    """Build a bnnet BatchNorm from another framework's settings and (optionally) state.

    Args:
        framework: ``"pytorch"``, ``"keras"`` or ``"flax"``.
        config: that framework's constructor arguments (absent keys take its defaults).
        state: that framework's arrays, as described in :class:`FrameworkBatchNorm`.
        num_features: the number of channels, when neither the config (PyTorch's
            ``num_features``) nor the state says it.
        dtype: the bnnet layer's floating type.

    Raises:
        ValueError: an unknown framework, a setting bnnet cannot express, or
            state arrays missing or of the wrong shape.

    Example:
        >>> layer = from_framework("keras", {"momentum": 0.99}, num_features=3)
        >>> layer.new_batch_weight, layer.eps, layer.unbiased_running_var
        (0.01, 0.001, False)
    """
    _check_framework(framework)
    settings = {**DEFAULTS[framework], **config}
    state = dict(state or {})
    if framework == "pytorch":
        if settings["track_running_stats"] is not True:
            raise ValueError(
                "from_framework('pytorch') expected track_running_stats=True, got "
                f"{settings['track_running_stats']!r}: without running statistics PyTorch normalises with batch "
                "statistics in eval mode too; build BatchNorm(normalize_with='batch', update_running_stats=False)"
            )
        momentum = settings["momentum"]
        size = _size(settings.get("num_features", num_features), state.get("running_mean"), framework)
        layer = BatchNorm(size, eps=settings["eps"],
                          new_batch_weight=0.1 if momentum is None else momentum,
                          running_average="cumulative" if momentum is None else "ema",
                          unbiased_running_var=True, affine=bool(settings["affine"]), dtype=dtype)
        names = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}
        _fill(layer, framework, state, names, optional=("num_batches_tracked",))
        if "num_batches_tracked" in state:
            layer.buffers["num_batches_tracked"][...] = np.asarray(state["num_batches_tracked"])
        return layer
    if framework == "keras":
        for key in ("renorm", "virtual_batch_size"):
            if settings[key] != DEFAULTS["keras"][key]:
                raise ValueError(
                    f"from_framework('keras') does not convert {key}={settings[key]!r}: Keras's version updates "
                    f"its statistics by different rules than bnnet's renorm / ghost_batch_size. Convert the "
                    f"config without it, then set renorm=... or ghost_batch_size=... on the bnnet layer"
                )
        affine = _both(settings, "center", "scale", framework)
        names = {"gamma": "gamma", "beta": "beta", "moving_mean": "running_mean", "moving_variance": "running_var"}
        size = _size(num_features, state.get("moving_mean"), framework)
    else:
        affine = _both(settings, "use_bias", "use_scale", framework)
        params, stats = state.get("params", {}), state.get("batch_stats", {})
        state = {**{f"params/{k}": v for k, v in params.items()}, **{f"batch_stats/{k}": v for k, v in stats.items()}}
        names = {"params/scale": "gamma", "params/bias": "beta", "batch_stats/mean": "running_mean",
                 "batch_stats/var": "running_var"}
        size = _size(num_features, state.get("batch_stats/mean"), framework)
    layer = BatchNorm(size, eps=settings["epsilon"], new_batch_weight=complement(settings["momentum"]),
                      unbiased_running_var=False, affine=affine, dtype=dtype)
    _fill(layer, framework, state, names)
    return layer


def complement(weight: float) -> float:
    """1 - weight, the other direction of the averaging weight, rounded to 12 decimals.

    The rounding only removes float noise: 1 - 0.99 is 0.010000000000000009 in
    binary floating point, and a user who wrote momentum=0.99 means 0.01.
    """
    return round(1.0 - float(weight), 12)


def _fill(layer: BatchNorm, framework: str, state: dict[str, Any], names: dict[str, str],
          optional: tuple[str, ...] = ()) -> None:
    if not state:
        return
    wanted = {key: target for key, target in names.items() if target in layer.params or target in layer.buffers}
    missing = sorted(set(wanted) - set(state))
    unknown = sorted(set(state) - set(wanted) - set(optional))
    if missing or unknown:
        raise ValueError(f"from_framework({framework!r}) expected state keys {sorted(wanted)}, "
                         f"got {sorted(state)} (missing {missing}, unexpected {unknown})")
    for key, target in wanted.items():
        value = np.asarray(state[key])
        if value.shape != (layer.num_features,):
            raise ValueError(f"from_framework({framework!r}) expected {key} of shape ({layer.num_features},), "
                             f"got {value.shape}")
        (layer.params if target in layer.params else layer.buffers)[target][...] = value


def _both(settings: dict[str, Any], shift: str, scale: str, framework: str) -> bool:
    if bool(settings[shift]) != bool(settings[scale]):
        raise ValueError(f"from_framework({framework!r}) expected {shift} and {scale} both on or both off "
                         f"(bnnet's affine covers both), got {shift}={settings[shift]}, {scale}={settings[scale]}")
    return bool(settings[shift])


def _size(num_features: int | None, mean: Any, framework: str) -> int:
    if num_features is not None:
        return int(num_features)
    if mean is not None:
        return int(np.asarray(mean).shape[0])
    raise ValueError(f"from_framework({framework!r}) needs num_features=... when no state is given "
                     f"(its config does not say how many channels there are)")


def _differences(layer: BatchNorm, framework: str) -> list[str]:
    """Training-time settings of ``layer`` that ``framework`` cannot express (eval is unaffected)."""
    notes = []
    if layer.running_average == "ema_debiased":
        notes.append("running_average='ema_debiased': the framework has no start-up bias correction; "
                     "later updates are a plain exponential average")
    if layer.running_average == "cumulative" and framework != "pytorch":
        notes.append("running_average='cumulative': the framework has no equal-weight average; "
                     "later updates are exponential with the given momentum")
    if layer.unbiased_running_var != (framework == "pytorch"):
        stored = "unbiased" if layer.unbiased_running_var else "biased"
        theirs = "unbiased" if framework == "pytorch" else "biased"
        notes.append(f"unbiased_running_var={layer.unbiased_running_var}: this layer averaged the {stored} "
                     f"batch variance, {framework} averages the {theirs} one from now on (the stored "
                     f"variance is copied unchanged, so eval outputs are identical)")
    defaults = {"update_running_stats": True, "train_affine": True, "single_value_policy": "error",
                "ghost_batch_size": None, "renorm": False}
    notes += [f"{name}={getattr(layer, name)!r}: a bnnet training option with no {framework} setting"
              for name, default in defaults.items() if getattr(layer, name) != default]
    return notes


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"expected framework in {FRAMEWORKS}, got {framework!r}")
