"""The `bnnet train` job: data -> model -> optimizer -> fit -> test in eval mode -> save."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..checkpoint import save
from ..losses import LOSSES
from ..nn.batch_norm import BatchNorm
from ..nn.builder import mlp
from ..nn.sequential import Sequential
from ..optim import OPTIMIZERS
from ..schedules import LRSchedule
from .config import TrainConfig
from .evaluate import evaluate
from .loop import History, fit


class BatchSizeWarning(UserWarning):
    """Batch norm would normalise over too few examples for its statistics to be stable."""


# Below 16 examples per normalisation batch, batch norm degrades fast: the batch
# mean is off by 1/sqrt(m) >= 0.25 std and the batch variance by sqrt(2/(m-1))
# >= 37 % (relative), and ImageNet error rises steeply below 16 per batch
# (Wu & He 2018, "Group Normalization", Fig. 1). The default batch of 60 is well above.
MIN_STABLE_BATCH = 16


def check_batch_size(config: TrainConfig, num_train: int) -> None:
    """Warn (BatchSizeWarning) when batch norm would see fewer than MIN_STABLE_BATCH examples per batch.

    The normalisation batch is the mini-batch (the whole set for gd, never more
    than the training set), or the ghost batch when ghost batch norm is on. No
    warning without batch norm, or with batch renorm, which is the remedy.
    """
    if not config.batch_norm or config.renorm:
        return
    batch = num_train if config.optimizer == "gd" else min(config.batch_size, num_train)
    ghost = config.ghost_batch_size is not None and config.ghost_batch_size < batch
    normalized = config.ghost_batch_size if ghost else batch
    if normalized < MIN_STABLE_BATCH:
        source = f"ghost_batch_size={config.ghost_batch_size}" if ghost else \
            f"batch_size={config.batch_size} on {num_train} training examples"
        warnings.warn(
            f"batch norm will normalise over batches of {normalized} examples ({source}), fewer than "
            f"{MIN_STABLE_BATCH}: the batch mean and variance are then noisy (the variance is off by about "
            f"{100 * (2 / max(normalized - 1, 1)) ** 0.5:.0f}% relative), so training is unstable and eval mode "
            f"(running statistics) falls behind training mode. Remedies: --batch-size {MIN_STABLE_BATCH * 2} or "
            f"more{', or a larger --ghost-batch-size' if ghost else ''}; --renorm (Batch Renormalization, made "
            f"for small batches).",
            BatchSizeWarning,
            stacklevel=2,
        )


@dataclass
class TrainResult:
    model: Sequential
    history: History
    summary: dict[str, Any]


def load_data(config: TrainConfig):
    from ..data import load_dataset  # imported on use: the loaders are only needed by jobs

    return load_dataset(config.dataset, data_dir=config.data_dir, path=config.data_path,
                        dtype=np.dtype(config.dtype), seed=config.seed, limit_train=config.limit_train)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(train, validation) pairs: a seeded random `fraction` of the examples is held out."""
    if fraction <= 0:
        return (x, y), None
    order = np.random.default_rng([seed, 1]).permutation(len(x))
    held = max(1, int(round(fraction * len(x))))
    val, train = order[:held], order[held:]
    return (x[train], y[train]), (x[val], y[val])


def build_model(config: TrainConfig, num_features: int, num_classes: int) -> Sequential:
    bn_options = {
        "eps": config.bn_eps,
        "new_batch_weight": config.bn_new_batch_weight,
        "running_average": config.bn_running_average,
        "unbiased_running_var": not config.bn_biased_running_var,
        "ghost_batch_size": config.ghost_batch_size,
        "renorm": config.renorm,
        "renorm_rmax": config.renorm_rmax,
        "renorm_dmax": config.renorm_dmax,
        "renorm_warmup_steps": config.renorm_warmup_steps,
    }
    return mlp([num_features, *config.hidden_sizes(), num_classes], activation=config.activation,
               batch_norm=config.batch_norm, init=config.init, init_std=config.init_std,
               rng=np.random.default_rng([config.seed, 0]), dtype=np.dtype(config.dtype),
               batch_norm_options=bn_options)


def build_optimizer(config: TrainConfig, model: Sequential):
    kwargs: dict[str, Any] = {"lr": config.resolved_lr(), "weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        kwargs.update(momentum=0.9 if config.momentum is None else config.momentum, nesterov=config.nesterov)
    elif config.optimizer == "rmsprop":
        kwargs.update(momentum=config.momentum or 0.0)
    return OPTIMIZERS[config.optimizer](model.parameters(), **kwargs)


def freeze_statistics_from(first_frozen_epoch: int) -> Callable[[int, Sequential], None]:
    """An epoch hook that, from the given epoch on, makes every BatchNorm normalise with
    its running statistics and stop updating them (Wu & Johnson 2021, train/test consistency)."""

    def hook(epoch: int, model: Sequential) -> None:
        if epoch == first_frozen_epoch:
            for layer in model.modules():
                if isinstance(layer, BatchNorm):
                    layer.update_running_stats = False
                    layer.normalize_with = "running"

    return hook


def unfreeze_statistics(model: Sequential) -> None:
    """Undo :func:`freeze_statistics_from`, so the saved model has the default switches."""
    for layer in model.modules():
        if isinstance(layer, BatchNorm):
            layer.update_running_stats = True
            layer.normalize_with = "auto"


def run_training(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train as configured, evaluate on the test set in eval mode, save; returns model, history, summary."""
    config.validate()
    started = time.perf_counter()
    data = load_data(config)
    log(f"data: {data.describe()}")
    (x_train, y_train), validation = split_validation(data.x_train, data.y_train, config.val_fraction, config.seed)
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model)
    loss_fn = LOSSES[config.loss]()
    batch_size = len(x_train) if config.optimizer == "gd" else config.batch_size
    check_batch_size(config, len(x_train))
    hook = freeze_statistics_from(config.epochs - config.freeze_bn_last_epochs) if config.freeze_bn_last_epochs else None
    shuffle_rng = np.random.default_rng([config.seed, 2])
    history = fit(model, loss_fn, optimizer, x_train, y_train, epochs=config.epochs, batch_size=batch_size,
                  rng=shuffle_rng, validation=validation,
                  schedule=LRSchedule(config.lr_schedule, config.lr_step_epochs, config.lr_gamma),
                  on_epoch_start=hook, progress=config.progress, log=log)
    if hook is not None:
        unfreeze_statistics(model)
    train_loss, train_accuracy = evaluate(model, loss_fn, data.x_train, data.y_train)
    test_loss, test_accuracy = evaluate(model, loss_fn, data.x_test, data.y_test)
    save(config.out, model, optimizer=optimizer, config=config.as_dict(),
         metadata={"dataset": data.name, "num_classes": data.num_classes, "history": history.as_dict(),
                   "rng_state": shuffle_rng.bit_generator.state})
    summary = {
        "command": "train", "dataset": data.name, "train_loss": train_loss, "train_accuracy": train_accuracy,
        "test_loss": test_loss, "test_accuracy": test_accuracy, "epochs": len(history.epochs),
        "steps": history.steps, "seconds": history.seconds, "total_seconds": time.perf_counter() - started,
        "out": str(config.out), "stopped": history.stopped,
    }
    return TrainResult(model=model, history=history, summary=summary)
