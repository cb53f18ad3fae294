"""`load_dataset`: one entry point from a dataset name to a `Dataset`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .arrays import load_csv, load_npz
from .dataset import Dataset, DatasetError, float_dtype
from .digits import load_digits
from .mnist import MNIST_NAMES, load_mnist

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "npz", "csv")
FILE_NAMES = ("npz", "csv")
DATA_DIR_VARIABLE = "BNNET_DATA_DIR"


def default_data_dir() -> Path | None:
    """Return the directory named by ``$BNNET_DATA_DIR``, or None if unset or empty.

    Returns:
        The directory as a `pathlib.Path` (``~`` expanded), or None. Whether it
        exists is checked when a dataset is loaded from it.
    """
    value = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    return Path(value).expanduser() if value else None


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    dtype=np.float32,
    test_fraction: float = 0.2,
    seed: int = 0,
    limit_train: int | None = None,
) -> Dataset:
    """Load a dataset by name.

    - ``"digits"``: the 1797 bundled 8x8 digits, 64 features in ``[0, 1]``,
      split by ``test_fraction`` and ``seed``. Needs no files.
    - ``"mnist"``, ``"fashion-mnist"``: the standard 60,000 / 10,000 split,
      784 features in ``[0, 1]``, read from ``data_dir`` (or ``data_dir/<name>``).
    - ``"npz"``: arrays from the ``.npz`` at ``path``; see `load_npz`.
    - ``"csv"``: label-first CSV at ``path``, or ``"train.csv,test.csv"``; see `load_csv`.

    Args:
        name: One of `DATASET_NAMES` (case-insensitive).
        data_dir: MNIST directory. If None, ``$BNNET_DATA_DIR``. Only for
            ``mnist`` and ``fashion-mnist``.
        path: File for ``npz`` and ``csv``; required there and refused elsewhere.
        dtype: Floating dtype of the features.
        test_fraction: Share of examples held out for testing when the data
            has no test set of its own (``digits``, single-file ``npz``/``csv``).
        seed: Seed of that split.
        limit_train: If given, keep only the first ``limit_train`` training
            examples (fast experiments); the test set is unchanged.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: For an unknown name (the message lists `DATASET_NAMES`),
            a missing or misplaced ``path`` or ``data_dir``, no MNIST
            directory, invalid ``limit_train``, or any loader error.

    Example:
        >>> load_dataset("digits", limit_train=100).describe()
        'digits: 100 train / 360 test examples, 64 features, 10 classes, float32'
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in DATASET_NAMES:
        raise DatasetError(
            f"expected a dataset name in {DATASET_NAMES}, received {name!r}{_suggestion(name)}"
        )
    dtype = float_dtype(dtype)
    _check_limit(limit_train)
    # Refused rather than ignored: a path given to digits is almost surely a mistake.
    if path is not None and key not in FILE_NAMES:
        remedy = "; help: pass data_dir instead" if key in MNIST_NAMES else ""
        raise DatasetError(
            f"{key}: expected path=None (path is for {' and '.join(FILE_NAMES)}), received "
            f"{os.fspath(path)!r}{remedy}"
        )
    if data_dir is not None and key not in MNIST_NAMES:
        remedy = "; help: pass path instead" if key in FILE_NAMES else ""
        raise DatasetError(
            f"{key}: expected data_dir=None (data_dir is for {' and '.join(MNIST_NAMES)}), "
            f"received {os.fspath(data_dir)!r}{remedy}"
        )

    if key in MNIST_NAMES:
        if data_dir is None:
            data_dir = default_data_dir()
        if data_dir is None:
            raise DatasetError(
                f"{key}: expected a data directory, received none; help: pass --data-dir "
                f"(data_dir=...) or set {DATA_DIR_VARIABLE} to the folder holding {key}/"
            )
        # Slices the uint8 images before conversion, which is cheaper than below.
        return load_mnist(key, data_dir, dtype=dtype, limit_train=limit_train)
    if key == "digits":
        dataset = load_digits(dtype=dtype, test_fraction=test_fraction, seed=seed)
    else:
        if path is None:
            raise DatasetError(
                f"{key}: expected path to a .{key} file, received None; help: pass --data-path "
                f"(path=...)" + (" or 'train.csv,test.csv'" if key == "csv" else "")
            )
        loader = load_npz if key == "npz" else load_csv
        dataset = loader(path, dtype=dtype, test_fraction=test_fraction, seed=seed)
    return _limit_train(dataset, limit_train)


def _check_limit(limit_train) -> None:
    if limit_train is None:
        return
    if isinstance(limit_train, bool) or not isinstance(limit_train, (int, np.integer)) \
            or limit_train < 1:
        raise DatasetError(
            f"expected limit_train to be None or an int >= 1, received {limit_train!r}"
        )


def _limit_train(dataset: Dataset, limit_train: int | None) -> Dataset:
    if limit_train is None:
        return dataset
    available = dataset.x_train.shape[0]
    if limit_train > available:
        raise DatasetError(
            f"{dataset.name}: expected limit_train <= {available} (the training examples), "
            f"received {limit_train}"
        )
    # copy() so the full training array can be freed; num_classes stays that of
    # the full data, since the test set may hold classes the first K lack.
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train[:limit_train].copy(),
        y_train=dataset.y_train[:limit_train].copy(),
    )


def _suggestion(name) -> str:
    import difflib  # only on this error path

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name.strip().lower().replace("_", "-"), DATASET_NAMES, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
