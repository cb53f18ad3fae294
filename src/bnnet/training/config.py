"""The configuration of a training job: one field per command-line flag, each with its reason."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def _opt(default: Any, help: str, choices: tuple | None = None, flag: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


# Default learning rate per optimizer when --lr is not given: the usual safe values.
DEFAULT_LR = {"gd": 0.5, "sgd": 0.1, "rmsprop": 1e-3, "adam": 3e-3, "adamw": 3e-3}


@dataclass
class TrainConfig:
    """Everything a `bnnet train` run depends on; printed at start and saved with the model."""

    # data
    dataset: str = _opt("digits", "digits (built in, no network), mnist, fashion-mnist, npz or csv",
                        ("digits", "mnist", "fashion-mnist", "npz", "csv"))
    data_dir: str | None = _opt(None, "directory holding the MNIST/Fashion-MNIST IDX files (default: $BNNET_DATA_DIR)")
    data_path: str | None = _opt(None, "the .npz or .csv file for --dataset npz|csv")
    limit_train: int | None = _opt(None, "use only the first N training examples (quick runs)")
    val_fraction: float = _opt(0.1, "fraction of the training set held out for the per-epoch validation pass (0: none)")
    # model
    hidden: str = _opt("100,100,100", "hidden layer sizes, comma separated")
    activation: str = _opt("relu", "hidden activation", ("sigmoid", "tanh", "relu"))
    batch_norm: bool = _opt(True, "batch norm before every hidden activation (--no-batch-norm to leave it out)")
    init: str | None = _opt(None, "weight init (default: he for relu, xavier for sigmoid/tanh)",
                            ("he", "xavier", "lecun", "small_gaussian", "uniform"))
    init_std: float | None = _opt(None, "std for --init small_gaussian")
    dtype: str = _opt("float32", "floating type of the model", ("float32", "float64"))
    loss: str = _opt("cross_entropy", "training loss", ("cross_entropy", "mse"))
    # batch norm
    bn_eps: float = _opt(1e-5, "batch norm eps (PyTorch/Flax 1e-5, Keras 1e-3)")
    bn_new_batch_weight: float = _opt(0.1, "weight of the NEW batch in the running averages (PyTorch momentum; Keras momentum 0.99 = 0.01 here)")
    bn_running_average: str = _opt("ema", "running average: ema, ema_debiased (start-up bias corrected) or cumulative",
                                   ("ema", "ema_debiased", "cumulative"))
    bn_biased_running_var: bool = _opt(False, "store the biased batch variance in the running variance (Keras/Flax) instead of the unbiased one")
    ghost_batch_size: int | None = _opt(None, "ghost batch norm: normalise training batches in sub-batches of this size")
    renorm: bool = _opt(False, "Batch Renormalization (Ioffe 2017) in training")
    renorm_rmax: float = _opt(3.0, "batch renorm: r is clipped to [1/rmax, rmax]")
    renorm_dmax: float = _opt(5.0, "batch renorm: d is clipped to [-dmax, dmax]")
    renorm_warmup_steps: int = _opt(0, "batch renorm: ramp rmax from 1 and dmax from 0 over this many steps")
    freeze_bn_last_epochs: int = _opt(0, "freeze batch-norm running statistics (normalise with them, stop updating) for the last K epochs")
    # optimisation
    optimizer: str = _opt("adam", "update rule; gd is full-batch gradient descent", ("gd", "sgd", "rmsprop", "adam", "adamw"))
    lr: float | None = _opt(None, "learning rate (default: gd 0.5, sgd 0.1, rmsprop 1e-3, adam/adamw 3e-3)")
    momentum: float | None = _opt(None, "momentum for sgd (default 0.9) and rmsprop (default 0)")
    nesterov: bool = _opt(False, "Nesterov momentum for sgd")
    weight_decay: float = _opt(0.0, "weight decay (L2 in the gradient; decoupled for adamw)")
    batch_size: int = _opt(60, "mini-batch size (ignored by gd, which uses the whole training set)")
    epochs: int = _opt(20, "passes over the training set")
    lr_schedule: str = _opt("cosine", "learning-rate schedule", ("constant", "step", "cosine"))
    lr_step_epochs: int = _opt(10, "step schedule: epochs between drops")
    lr_gamma: float = _opt(0.1, "step schedule: factor at each drop")
    seed: int = _opt(0, "seed for weights, data split and shuffling")
    # output
    out: str = _opt("bnnet-model.npz", "where to save the trained model")
    progress: bool | None = _opt(None, "progress bar (default: only on a terminal)")
    json: bool = _opt(False, "print a one-line JSON summary as the last line")

    def hidden_sizes(self) -> list[int]:
        try:
            sizes = [int(part) for part in self.hidden.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"--hidden expected comma-separated integers like 100,100,100, got {self.hidden!r}") from None
        if any(size < 1 for size in sizes):
            raise ValueError(f"--hidden expected positive sizes, got {self.hidden!r}")
        return sizes

    def resolved_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is out of range or not among its choices."""
        for spec in fields(self):
            choices = spec.metadata.get("choices")
            value = getattr(self, spec.name)
            if choices and value is not None and value not in choices:
                raise ValueError(f"{spec.name} expected one of {', '.join(choices)}, got {value!r}")
        self.hidden_sizes()
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} expected >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction expected 0 <= value < 1, got {self.val_fraction}")
        if self.freeze_bn_last_epochs < 0 or self.freeze_bn_last_epochs > self.epochs:
            raise ValueError(f"freeze_bn_last_epochs expected 0..epochs ({self.epochs}), got {self.freeze_bn_last_epochs}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | Path) -> dict[str, Any]:
        """The key/value pairs of a JSON config file (validated against the fields)."""
        values = json.loads(Path(path).read_text())
        if not isinstance(values, dict):
            raise ValueError(f"config file {path} expected a JSON object, got {type(values).__name__}")
        cls.from_dict(values)
        return values
