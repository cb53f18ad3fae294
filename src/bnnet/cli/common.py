"""Small pieces every command shares: the JSON summary line and error reporting."""
from __future__ import annotations

import json
import math
import sys
from typing import Any


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/Infinity; strict parsers reject them
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_json_summary(summary: dict[str, Any]) -> None:
    """The machine-readable summary: one line of strict JSON, the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(_finite(summary), sort_keys=True), flush=True)


def add_data_flags(parser) -> None:
    """Dataset selection flags shared by every command that reads data."""
    parser.add_argument("--dataset", choices=("digits", "mnist", "fashion-mnist", "npz", "csv"), default=None,
                        help="dataset (default: the one the model was trained on)")
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST/Fashion-MNIST IDX files")
    parser.add_argument("--data-path", default=None, help="the .npz/.csv file for --dataset npz|csv")


def dataset_for_model(args, saved_config: dict[str, Any]):
    """Load the dataset named by the flags, falling back to the model's training config."""
    import numpy as np

    from ..data import load_dataset

    name = args.dataset or saved_config.get("dataset", "digits")
    same = name == saved_config.get("dataset")
    return load_dataset(
        name,
        data_dir=args.data_dir or (saved_config.get("data_dir") if same else None),
        path=args.data_path or (saved_config.get("data_path") if same else None),
        dtype=np.dtype(saved_config.get("dtype", "float32")),
        seed=saved_config.get("seed", 0) if same else 0,
    )
