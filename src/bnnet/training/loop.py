"""The training loop: epochs of shuffled mini-batches, a validation pass after each epoch."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .. import fast
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.sequential import Sequential
from ..optim.base import Optimizer
from ..schedules import LRSchedule
from .evaluate import evaluate
from .progress import progress_bar


@dataclass
class EpochRecord:
    """Metrics of one epoch: training ones averaged over its batches (train mode),
    validation ones from a full pass in eval mode (None without validation data)."""

    epoch: int
    steps: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class History:
    epochs: list[EpochRecord] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why training ended early, if it did

    def as_dict(self) -> dict:
        return {"epochs": [asdict(e) for e in self.epochs], "steps": self.steps,
                "seconds": self.seconds, "stopped": self.stopped}


def batch_slices(num_examples: int, batch_size: int) -> list[slice]:
    """Consecutive slices of at most batch_size; a last batch of one example is
    merged into the one before, so batch norm never sees a batch of one.

    >>> batch_slices(7, 3)
    [slice(0, 3, None), slice(3, 7, None)]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    slices = [slice(s, min(s + batch_size, num_examples)) for s in range(0, num_examples, batch_size)]
    if len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices[-2:] = [slice(slices[-2].start, num_examples)]
    return slices


StepCallback = Callable[[int, Module], None]
EpochCallback = Callable[[int, Module], None]


def fit(
    model: Module,
    loss_fn,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    schedule: LRSchedule | None = None,
    max_steps: int | None = None,
    on_step: StepCallback | None = None,
    on_epoch_start: EpochCallback | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = print,
) -> History:
    """Train ``model`` in place and return its history.

    Each epoch shuffles the training set with ``rng`` and takes one optimizer
    step per mini-batch. Training stops early, with ``history.stopped`` set and
    a message logged, when the loss becomes NaN or infinite.

    Args:
        on_step: called after every step with (steps so far, model).
        on_epoch_start: called before each epoch with (epoch index, model).
        progress: show a progress bar (None: only on a terminal).
        max_steps: stop after this many steps even mid-epoch.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(x) != len(y):
        raise ValueError(f"expected as many labels as examples, got {len(x)} examples and {len(y)} labels")
    schedule = schedule or LRSchedule()
    base_lr = optimizer.lr
    slices = batch_slices(len(x), batch_size)
    total = epochs * len(slices) if max_steps is None else min(max_steps, epochs * len(slices))
    history = History()
    fast.warm_up(model)  # load the compiled kernels before the clock starts (bnnet.fast.warm_up)
    started = time.perf_counter()
    bar = progress_bar(total, "train", progress)
    # A diverging run overflows before its loss turns non-finite; the loop reports
    # that itself (below), so NumPy's overflow/invalid warnings would only be noise.
    saved_errors = np.seterr(over="ignore", invalid="ignore")
    # Training never uses d loss / d input, so the first Linear skips dx = dy W
    # (the largest product of a step); the flag is restored below.
    first = model.layers[0] if isinstance(model, Sequential) and len(model) else None
    skip_input_grad = isinstance(first, Linear) and first.needs_input_grad
    try:
        if skip_input_grad:
            first.needs_input_grad = False
        for epoch in range(epochs):
            if on_epoch_start is not None:
                on_epoch_start(epoch, model)
            epoch_started = time.perf_counter()
            model.train()
            order = rng.permutation(len(x))
            loss_sum = correct = seen = 0.0
            for part in slices:
                if history.steps >= total:
                    break
                index = order[part]
                xb, yb = x[index], y[index]
                optimizer.lr = base_lr * schedule.factor(history.steps, len(slices), total)
                outputs = model.forward(xb)
                loss = loss_fn.forward(outputs, yb)
                if not math.isfinite(loss):
                    history.stopped = (
                        f"stopped at epoch {epoch + 1}, step {history.steps + 1}: the training loss is "
                        f"{loss}; lower the learning rate (now {optimizer.lr:g}) or use batch norm"
                    )
                    break
                model.backward(loss_fn.backward())
                optimizer.step(model.gradients())
                history.steps += 1
                loss_sum += loss * len(index)
                correct += float(np.sum(outputs.argmax(axis=1) == yb))
                seen += len(index)
                bar.update(1)
                if history.steps % 20 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if on_step is not None:
                    on_step(history.steps, model)
            if seen:
                val_loss = val_acc = None
                if validation is not None:
                    val_loss, val_acc = evaluate(model, loss_fn, *validation)
                record = EpochRecord(epoch + 1, history.steps, optimizer.lr, loss_sum / seen,
                                     correct / seen, val_loss, val_acc, time.perf_counter() - epoch_started)
                history.epochs.append(record)
                if log is not None:
                    bar.write(_epoch_line(record, epochs), log)
            if history.stopped or history.steps >= total:
                break
    finally:
        if skip_input_grad:
            first.needs_input_grad = True
        np.seterr(**saved_errors)
        bar.close()
        optimizer.lr = base_lr
    if history.stopped and log is not None:
        log(history.stopped)
    history.seconds = time.perf_counter() - started
    return history


def _epoch_line(record: EpochRecord, epochs: int) -> str:
    line = (f"epoch {record.epoch}/{epochs}  step {record.steps}  lr {record.lr:.3g}  "
            f"train_loss {record.train_loss:.4f}  train_acc {record.train_accuracy:.4f}")
    if record.val_loss is not None:
        line += f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    return line
