"""User data from a ``.npz`` archive or CSV files.

Features are used as given (no scaling), flattened to ``(N, D)`` and cast to
the requested float dtype. Labels must be non-negative integers; the number of
classes is the largest label plus one.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError, float_dtype, split_train_test

NPZ_TRAIN_KEYS = ("x_train", "y_train")
NPZ_TEST_KEYS = ("x_test", "y_test")


def load_npz(
    path: str | os.PathLike, *, dtype=np.float32, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Load a dataset from a ``.npz`` archive saved with ``np.savez``.

    The archive holds ``x_train`` and ``y_train`` and, optionally, both
    ``x_test`` and ``y_test``. Without a test set, the training arrays are
    split with ``test_fraction`` and ``seed`` (stratified, see
    `split_train_test`). Pickled object arrays are refused.

    Args:
        path: The ``.npz`` file.
        dtype: Floating dtype of the features.
        test_fraction: Share of examples for the test set when the archive has none.
        seed: Seed of that split.

    Shape:
        ``x_*`` may be ``(N, ...)``; it is reshaped to ``(N, D)``. ``y_*`` is ``(N,)``.

    Returns:
        The `Dataset`, named ``"npz"``.

    Raises:
        DatasetError: If the file does not exist or is not a ``.npz`` that
            loads without pickle, keys are missing, or the arrays fail `check_arrays`.
    """
    dtype = float_dtype(dtype)
    path = _existing_file(path, "a .npz archive")
    source = str(path)
    # Our own file object: np.load leaks the handle it opens when the zip is damaged.
    with open(path, "rb") as file:
        arrays = _read_npz(file, source)
    if "x_test" in arrays:
        return _make_dataset("npz", source, arrays, dtype)
    return _split_dataset("npz", source, arrays["x_train"], arrays["y_train"], dtype,
                          test_fraction, seed)


def _read_npz(file, source: str) -> dict[str, np.ndarray]:
    """Read the arrays of an open ``.npz`` file into memory, checking the keys."""
    try:
        loaded = np.load(file, allow_pickle=False)
    # ValueError: numpy refuses files it could only unpickle; BadZipFile: a
    # damaged archive; neither is an OSError.
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(
            f"{source}: expected a .npz archive of numeric arrays written by np.savez, received "
            f"a file numpy cannot load without pickle ({error})"
        ) from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{source}: expected a .npz archive (np.savez), received a single .npy array of "
            f"shape {loaded.shape}; help: np.savez(path, x_train=..., y_train=...)"
        )
    with loaded as archive:
        keys = set(archive.files)
        missing = [key for key in NPZ_TRAIN_KEYS if key not in keys]
        has_test = [key in keys for key in NPZ_TEST_KEYS]
        if missing or any(has_test) != all(has_test):
            raise DatasetError(
                f"{source}: expected arrays x_train, y_train and optionally both x_test and "
                f"y_test, received {sorted(keys)}; help: np.savez(path, x_train=..., "
                "y_train=..., x_test=..., y_test=...)"
            )
        try:
            arrays = {key: archive[key] for key in NPZ_TRAIN_KEYS + NPZ_TEST_KEYS if key in keys}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            raise DatasetError(
                f"{source}: expected numeric arrays readable without pickle, received one "
                f"numpy cannot load ({error}); help: save numeric arrays, e.g. "
                "np.asarray(x, dtype=np.float32)"
            ) from error
    return arrays


def load_csv(
    path: str | os.PathLike, *, dtype=np.float32, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Load a dataset from CSV: the label in the first column, features after it.

    A first row that does not parse as numbers is taken as a header and
    skipped. ``path`` is either one file, split with ``test_fraction`` and
    ``seed``, or two files ``"train.csv,test.csv"`` separated by a comma, used
    as the training and test set. A path that exists as a file is never split
    at its commas.

    Args:
        path: One CSV file, or ``"train.csv,test.csv"``.
        dtype: Floating dtype of the features.
        test_fraction: Share of examples for the test set (single file only).
        seed: Seed of that split.

    Shape:
        Each row is ``label, feature_1, ..., feature_D``.

    Returns:
        The `Dataset`, named ``"csv"``.

    Raises:
        DatasetError: If a file does not exist or cannot be parsed, has fewer
            than 2 columns, or the arrays fail `check_arrays`.
    """
    dtype = float_dtype(dtype)
    paths = _csv_paths(path)
    tables = [_read_csv(csv_path) for csv_path in paths]
    if len(tables) == 1:
        table = tables[0]
        return _split_dataset("csv", str(paths[0]), table[:, 1:], table[:, 0], dtype,
                              test_fraction, seed)
    (train, test), source = tables, f"{paths[0]},{paths[1]}"
    arrays = {"x_train": train[:, 1:], "y_train": train[:, 0],
              "x_test": test[:, 1:], "y_test": test[:, 0]}
    return _make_dataset("csv", source, arrays, dtype)


def check_arrays(
    features: np.ndarray, labels: np.ndarray, *, source: str, split: str, dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split of user data and convert it to the `Dataset` layout.

    Args:
        features: Numeric features with one example per leading index.
        labels: Class labels, integers or integral floats, ``>= 0``.
        source: File name for error messages.
        split: ``"train"`` or ``"test"``, for error messages.
        dtype: Floating dtype of the returned features.

    Shape:
        - features: ``(N, ...)`` with at least 2 dimensions -> returns ``(N, D)``.
        - labels: ``(N,)``.

    Returns:
        ``(features, labels)`` as C-contiguous ``dtype`` and int64 arrays.

    Raises:
        DatasetError: If features are not numeric, not at least 2-D, empty,
            or hold NaN or inf once cast to ``dtype``; if labels are not 1-D, not integral, or
            negative; or if the counts differ. The message gives both values.
    """
    where = f"{source}: x_{split}"
    if features.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: expected numeric features, received dtype {features.dtype}")
    if features.ndim < 2 or features.shape[0] == 0 or features[0].size == 0:
        raise DatasetError(
            f"{where}: expected shape (N, D) or (N, ...) with N, D >= 1, received shape "
            f"{features.shape}; help: for one feature per example use x.reshape(-1, 1)"
        )
    # Checked after the cast: 1e300 is finite in float64 but inf in float32. The
    # overflow warning is silenced because the check below reports it as an error.
    with np.errstate(over="ignore"):
        flat = np.ascontiguousarray(features.reshape(features.shape[0], -1), dtype=dtype)
    if not np.isfinite(flat).all():
        bad_rows = np.flatnonzero(~np.isfinite(flat).all(axis=1))
        raise DatasetError(
            f"{where}: expected finite features in {dtype}, received NaN or inf in "
            f"{bad_rows.size} examples (first at index {bad_rows[0]}, counting from 0); "
            "help: drop or impute missing values; rescale values beyond the dtype's range"
        )
    where = f"{source}: y_{split}"
    if labels.ndim != 1:
        raise DatasetError(
            f"{where}: expected labels of shape (N,), received shape {labels.shape}; "
            "help: y.ravel() if there is one label per example"
        )
    if labels.shape[0] != flat.shape[0]:
        raise DatasetError(
            f"{source}: expected as many {split} labels as {split} examples ({flat.shape[0]}), "
            f"received {labels.shape[0]} labels"
        )
    integral = labels.dtype.kind in "biu" or (
        labels.dtype.kind == "f"
        and np.isfinite(labels).all()
        and (labels == np.round(labels)).all()
    )
    if not integral:
        raise DatasetError(
            f"{where}: expected integer class labels, received dtype {labels.dtype} with "
            f"values such as {_non_integral(labels)}"
        )
    if labels.size and labels.min() < 0:
        raise DatasetError(
            f"{where}: expected class labels >= 0, received {labels.min()}; "
            "help: map labels to 0..num_classes-1"
        )
    return flat, labels.astype(np.int64)


def _non_integral(labels: np.ndarray) -> list:
    if labels.dtype.kind != "f":
        return labels[:3].tolist()
    bad = labels[~np.isfinite(labels) | (labels != np.round(labels))]
    return bad[:3].tolist()


def _make_dataset(name: str, source: str, arrays: dict, dtype) -> Dataset:
    x_train, y_train = check_arrays(arrays["x_train"], arrays["y_train"], source=source,
                                    split="train", dtype=dtype)
    x_test, y_test = check_arrays(arrays["x_test"], arrays["y_test"], source=source,
                                  split="test", dtype=dtype)
    if x_test.shape[1] != x_train.shape[1]:
        raise DatasetError(
            f"{source}: expected x_test with the {x_train.shape[1]} features of x_train, "
            f"received {x_test.shape[1]} (shape {arrays['x_test'].shape})"
        )
    return Dataset(name, x_train, y_train, x_test, y_test,
                   num_classes=_num_classes(source, y_train, y_test))


def _split_dataset(name, source, features, labels, dtype, test_fraction, seed) -> Dataset:
    features, labels = check_arrays(features, labels, source=source, split="train", dtype=dtype)
    num_classes = _num_classes(source, labels)
    x_train, y_train, x_test, y_test = split_train_test(
        features, labels, test_fraction=test_fraction, seed=seed, source=source
    )
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes=num_classes)


def _num_classes(source: str, y_train: np.ndarray, y_test: np.ndarray | None = None) -> int:
    present = np.unique(y_train)
    if present.size < 2:
        raise DatasetError(
            f"{source}: expected at least 2 classes in the training labels, received only "
            f"{present.tolist()}"
        )
    largest = int(y_train.max())
    if y_test is not None and y_test.size:
        largest = max(largest, int(y_test.max()))
    return largest + 1


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"expected {what} at path, received {str(path)!r}, which is not a file")
    return path


def _csv_paths(path: str | os.PathLike) -> list[Path]:
    # A comma is legal in file names, so an existing file wins over the pair syntax.
    if isinstance(path, str) and "," in path and not Path(path).is_file():
        parts = [part.strip() for part in path.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DatasetError(
                f"expected path to be one CSV file or two separated by a comma "
                f"('train.csv,test.csv'), received {path!r}"
            )
        return [_existing_file(part, "a CSV file") for part in parts]
    return [_existing_file(path, "a CSV file")]


def _read_csv(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8-sig") as file:  # -sig drops a BOM from spreadsheet exports
        lines = [line for line in file.read().splitlines() if line.strip()]
    if lines and not _is_numeric_row(lines[0]):
        lines = lines[1:]  # a header row
    if not lines:
        # Checked here because np.loadtxt only warns about empty input.
        raise DatasetError(
            f"{path}: expected rows 'label,feature,...', received no data rows"
        )
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError as error:
        raise DatasetError(
            f"{path}: expected numeric rows 'label,feature,...' of equal length, received "
            f"{error}"
        ) from error
    if table.shape[1] < 2:
        raise DatasetError(
            f"{path}: expected a label column and at least 1 feature column, received "
            f"{table.shape[1]} column"
        )
    return table


def _is_numeric_row(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True
