"""What the toolbox commands (precise-bn, fold, recalibrate, inspect) share: load, evaluate, save."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import add_data_flags, dataset_for_model


@dataclass
class Loaded:
    source: str  # the model file
    checkpoint: Any  # bnnet.checkpoint.Checkpoint
    data: Any  # bnnet.data.Dataset

    @property
    def model(self):
        return self.checkpoint.model


def add_model_flags(parser, *, out_help: str | None) -> None:
    """MODEL, the data flags, --out (when the command writes a model) and --json."""
    parser.add_argument("model", help="model file written by bnnet train (or another bnnet command)")
    add_data_flags(parser)
    if out_help is not None:
        parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary last")


def add_statistics_flags(parser, *, batch_help: str, default_batch: int | None = 1000) -> None:
    parser.add_argument("--batch-size", type=int, default=default_batch, help=batch_help)
    parser.add_argument("--max-batches", type=int, default=None,
                        help="use only this many batches of the (shuffled) data (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle that picks the batches")


def load_model_and_data(args) -> Loaded:
    from ..checkpoint import load

    checkpoint = load(args.model)
    return Loaded(str(args.model), checkpoint, dataset_for_model(args, checkpoint.config))


def examples_used(num_examples: int, batch_size: int, max_batches: int | None) -> int:
    """How many examples --batch-size and --max-batches take from num_examples."""
    return num_examples if max_batches is None else min(num_examples, max_batches * batch_size)


def shuffled(x: np.ndarray, seed: int) -> np.ndarray:
    """x in a seeded random order, so that --max-batches takes a random sample."""
    return x[np.random.default_rng(seed).permutation(len(x))]


def accuracy(loaded: Loaded, model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) in eval mode with the loss the model was trained with."""
    from ..losses import LOSSES
    from ..training.evaluate import evaluate

    return evaluate(model, LOSSES[loaded.checkpoint.config.get("loss", "cross_entropy")](), x, y)


def save_result(path: str | None, model, loaded: Loaded, command: str, *, keep_optimizer: bool,
                **facts: Any) -> str | None:
    """Save ``model`` with the source's config and metadata plus what this command did.

    ``keep_optimizer``: also save the source's optimizer state (only when the
    parameters are the same ones, so that training can resume from the result).
    """
    if path is None:
        print("not saved (give --out FILE to save the result)")
        return None
    from ..checkpoint import save

    metadata = dict(loaded.checkpoint.metadata)
    # A list, so that a chain (recalibrate, then fold) stays readable in the file.
    metadata["toolbox"] = [*metadata.get("toolbox", []), {"command": command, "source": loaded.source, **facts}]
    optimizer = loaded.checkpoint.optimizer if keep_optimizer else None
    save(path, model, optimizer=optimizer, config=loaded.checkpoint.config, metadata=metadata)
    print(f"saved model to {path}")
    return str(path)
