"""The Figure 1 network, its optimizer and its training run, shared by every experiment.

Ioffe & Szegedy (2015), section 4.1: "a simple fully-connected network with 3
hidden layers with 100 activations each. Each hidden layer computes
y = g(Wu + b) with sigmoid nonlinearity, and the weights W initialized to small
random Gaussian values. The last hidden layer is followed by a fully-connected
layer with 10 activations (one per class) and cross-entropy loss. We trained
the network for 50000 steps, with 60 examples per mini-batch." With batch norm,
each sigmoid's input is batch-normalised and the Linear in front has no bias.

The paper gives neither the Gaussian's std nor the optimizer. The defaults
here, and why (the short runs behind them are in docs/experiments.md):

- ``init_std = 0.01``: the usual "small Gaussian" of the time (Krizhevsky et al.
  2012). It is 5-10x below the variance-preserving scale of these layers
  (Xavier: 0.048 for 784->100, 0.1 for 100->100), so without batch norm the
  sigmoid inputs start squeezed around 0 and must spread out as the weights
  grow: the drift the paper's Figure 1(b) shows.
- plain SGD (no momentum), as in the paper's era, with ``lr = 3.0`` for *both*
  networks: of 0.3, 1 and 3, trained the full 50,000 steps and scored on 10,000
  held-out training images, 3 is the best for the network *without* batch norm
  (0.9737; 10 fails it in short runs). So batch norm is compared with a tuned
  baseline and gets no learning rate chosen for it (its own best is 1.0).
  Momentum and Adam do a little better for it in 5,000-step runs (0.9668 and
  0.9673 against 0.9620); the paper's era and simplicity decide for plain SGD.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, ClassVar

import numpy as np

from ..losses import SoftmaxCrossEntropy
from ..nn import Sequential, mlp
from ..optim import OPTIMIZERS
from ..training.loop import History, batch_slices, fit

NETWORKS = {"without_bn": False, "with_bn": True}  # name -> batch_norm


@dataclass
class TrainingSettings:
    """How each network of an experiment is built and trained (one field per CLI flag).

    Attributes:
        steps: optimizer steps per network (the paper: 50,000).
        batch_size: examples per mini-batch (the paper: 60).
        hidden: hidden layer sizes (the paper: 100, 100, 100).
        init_std: std of the Gaussian the weights are drawn from.
        optimizer: a name in :data:`bnnet.optim.OPTIMIZERS`.
        lr: learning rate, the same for both networks.
        momentum: SGD momentum (0: plain SGD).
        new_batch_weight: weight of the new batch in batch norm's running averages.
        seed: seeds the weights (both networks start from the same draw) and the batch order.
    """

    steps: int = 50_000
    batch_size: int = 60
    hidden: tuple[int, ...] = (100, 100, 100)
    init_std: float = 0.01
    optimizer: str = "sgd"
    lr: float = 3.0
    momentum: float = 0.0
    new_batch_weight: float = 0.1
    seed: int = 0

    # Fields an experiment sets itself: left out of its flags and its saved settings.
    unused: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        if self.steps < 1:
            raise ValueError(f"expected steps >= 1, got {self.steps}")
        if self.batch_size < 2:
            raise ValueError(f"expected batch_size >= 2 (batch norm needs two examples), got {self.batch_size}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"expected at least one positive hidden size, got {self.hidden}")
        if not self.init_std > 0:
            raise ValueError(f"expected init_std > 0, got {self.init_std}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer in {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"expected a finite lr > 0, got {self.lr}")
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum is an SGD setting, got momentum={self.momentum} with "
                             f"optimizer={self.optimizer!r}; pass --optimizer sgd or leave --momentum out")

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (tuples as lists), without the unused fields."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in asdict(self).items() if name not in self.unused}

    @classmethod
    def field_names(cls) -> list[str]:
        """The settings a user can set: every field but the unused ones."""
        return [spec.name for spec in fields(cls) if spec.name not in cls.unused]


def build_network(settings: TrainingSettings, num_features: int, num_classes: int, batch_norm: bool) -> Sequential:
    """The Figure 1 network: (Linear -> [BatchNorm] -> Sigmoid) per hidden layer, then Linear.

    The weights are drawn from ``N(0, init_std^2)`` with ``default_rng(seed)``;
    bias-free Linears draw the same numbers, so with one seed both networks
    start from identical weights.

    >>> net = build_network(TrainingSettings(), 784, 10, batch_norm=True)
    >>> [type(layer).__name__ for layer in net.layers][:3], len(net.layers)
    (['Linear', 'BatchNorm', 'Sigmoid'], 10)
    """
    return mlp(
        [num_features, *settings.hidden, num_classes],
        activation="sigmoid",
        batch_norm=batch_norm,
        init="small_gaussian",
        init_std=settings.init_std,
        rng=np.random.default_rng(settings.seed),
        batch_norm_options={"new_batch_weight": settings.new_batch_weight},
    )


def build_optimizer(settings: TrainingSettings, model: Sequential):
    """The optimizer named in the settings, over the model's parameters."""
    extra = {"momentum": settings.momentum} if settings.optimizer == "sgd" else {}
    return OPTIMIZERS[settings.optimizer](model.parameters(), lr=settings.lr, **extra)


def train(
    model: Sequential,
    settings: TrainingSettings,
    x: np.ndarray,
    y: np.ndarray,
    on_step: Callable[[int, Sequential], None] | None = None,
) -> History:
    """``settings.steps`` steps of :func:`bnnet.training.fit`: shuffled epochs, cross-entropy.

    The batch order comes from ``default_rng(seed)``, so both networks of an
    experiment see the same batches. ``history.stopped`` says why training
    ended early (a non-finite loss), if it did.
    """
    steps_per_epoch = len(batch_slices(len(x), settings.batch_size))
    return fit(
        model, SoftmaxCrossEntropy(), build_optimizer(settings, model), x, y,
        epochs=math.ceil(settings.steps / steps_per_epoch),
        batch_size=settings.batch_size,
        rng=np.random.default_rng(settings.seed),
        max_steps=settings.steps,
        on_step=on_step,
        progress=False,  # the experiment shows one bar over all its runs
        log=None,
    )


def diverged(model: Sequential, history: History) -> bool:
    """Whether training blew up: a non-finite loss stopped it, or a parameter is NaN/inf."""
    return bool(history.stopped) or not all(np.all(np.isfinite(p)) for p in model.parameters().values())
