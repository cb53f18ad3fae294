"""The `Dataset` container, the data layer's error type and the train/test split.

Every loader in `bnnet.data` returns a `Dataset`: flattened float features and
int64 labels, already split into a training and a test part. The rest of the
library codes against this one shape and never against a file format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class DatasetError(ValueError):
    """A dataset could not be found, read or validated.

    The message names the file or argument, what was expected, what was
    received and, where there is one, the remedy.
    """


# eq=False: the generated __eq__ would compare arrays element-wise and fail with
# "truth value of an array is ambiguous"; identity equality and hashing work.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into training and test examples.

    Attributes:
        name: The registry name the data came from, e.g. ``"mnist"``.
        x_train: Training features, one flattened example per row. Pixel
            datasets are scaled to ``[0, 1]``; user arrays are kept as given.
        y_train: Training class labels in ``0 .. num_classes - 1``.
        x_test: Test features, same number of columns as ``x_train``.
        y_test: Test class labels.
        num_classes: Number of classes; labels index the classifier outputs.

    Shape:
        - x_train: ``(N, D)``, floating point, C-contiguous.
        - y_train: ``(N,)``, int64.
        - x_test: ``(M, D)``, same dtype as ``x_train``, C-contiguous.
        - y_test: ``(M,)``, int64.

    Raises:
        DatasetError: If the arrays do not have these shapes and dtypes, or a
            label lies outside ``0 .. num_classes - 1``.

    Example:
        >>> import numpy as np
        >>> data = Dataset("toy", np.zeros((4, 3)), np.array([0, 1, 0, 1]),
        ...                np.zeros((2, 3)), np.array([1, 0]), num_classes=2)
        >>> data.num_features
        3
        >>> data.describe()
        'toy: 4 train / 2 test examples, 3 features, 2 classes, float64'
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        # Checked once here so that every consumer (layers, training loop,
        # checkpoints) can rely on the documented shapes without re-checking.
        is_int = isinstance(self.num_classes, (int, np.integer))
        if isinstance(self.num_classes, bool) or not is_int:
            raise DatasetError(
                f"Dataset {self.name!r}: expected num_classes to be an int, "
                f"received {type(self.num_classes).__name__}"
            )
        if self.num_classes < 1:
            raise DatasetError(
                f"Dataset {self.name!r}: expected num_classes >= 1, received {self.num_classes}"
            )
        for split in ("train", "test"):
            features = getattr(self, f"x_{split}")
            labels = getattr(self, f"y_{split}")
            _check_split(self.name, split, features, labels, self.num_classes)
        if self.x_train.shape[0] == 0:
            raise DatasetError(
                f"Dataset {self.name!r}: expected at least one training example, received 0"
            )
        if self.x_test.shape[1] != self.x_train.shape[1] or self.x_test.dtype != self.x_train.dtype:
            raise DatasetError(
                f"Dataset {self.name!r}: expected x_test to match x_train's "
                f"{self.x_train.shape[1]} features and dtype {self.x_train.dtype}, received "
                f"{self.x_test.shape[1]} features and dtype {self.x_test.dtype}"
            )

    @property
    def num_features(self) -> int:
        """Number of features per example (the ``D`` in ``(N, D)``)."""
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        """One line for logs: name, split sizes, features, classes and dtype.

        Returns:
            A string such as
            ``"mnist: 60000 train / 10000 test examples, 784 features, 10 classes, float32"``.
        """
        return (
            f"{self.name}: {self.x_train.shape[0]} train / {self.x_test.shape[0]} test examples, "
            f"{self.num_features} features, {self.num_classes} classes, {self.x_train.dtype}"
        )


def _check_split(name: str, split: str, features, labels, num_classes: int) -> None:
    """Raise a `DatasetError` if one split breaks the `Dataset` contract."""
    where = f"Dataset {name!r}: x_{split}"
    if not isinstance(features, np.ndarray) or features.ndim != 2:
        raise DatasetError(
            f"{where}: expected a 2-D numpy array (N, D), received {_describe_array(features)}"
        )
    if features.dtype.kind != "f":
        raise DatasetError(f"{where}: expected a floating dtype, received {features.dtype}")
    if not features.flags.c_contiguous:
        raise DatasetError(
            f"{where}: expected a C-contiguous array, received a strided view; "
            "help: pass np.ascontiguousarray(x)"
        )
    where = f"Dataset {name!r}: y_{split}"
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype != np.int64:
        raise DatasetError(
            f"{where}: expected a 1-D int64 numpy array, received {_describe_array(labels)}"
        )
    if labels.shape[0] != features.shape[0]:
        raise DatasetError(
            f"Dataset {name!r}: expected as many {split} labels as {split} examples "
            f"({features.shape[0]}), received {labels.shape[0]} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{where}: expected labels in 0..{num_classes - 1}, received values from "
            f"{labels.min()} to {labels.max()}"
        )


def _describe_array(value) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    return type(value).__name__


def split_train_test(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    test_fraction: float,
    seed: int,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split examples into train and test sets, stratified by class.

    The test set has ``ceil(N * test_fraction)`` examples (the same rounding as
    scikit-learn's ``train_test_split``, so 1797 digits give 360 test examples).
    Each class contributes test examples in proportion to its size; the slots
    left over by rounding go to the classes with the largest remainders. Which
    examples of a class are picked is drawn from ``np.random.default_rng(seed)``.
    Both parts keep the original order of the examples.

    Args:
        features: Examples, one per row.
        labels: Integer class labels, one per example.
        test_fraction: Share of examples for the test set, in ``(0, 1)``.
        seed: Seed of the generator that picks the test examples.
        source: Where the data came from, named in error messages.

    Shape:
        - features: ``(N, D)``; labels: ``(N,)``.
        - Returns ``(x_train (N - T, D), y_train (N - T,), x_test (T, D), y_test (T,))``.

    Returns:
        ``(x_train, y_train, x_test, y_test)``.

    Raises:
        DatasetError: If ``test_fraction`` is not a number in ``(0, 1)`` or
            leaves the training or test set empty, or ``seed`` is not an int >= 0.

    Example:
        >>> x = np.arange(10.0).reshape(5, 2)
        >>> y = np.array([0, 0, 1, 1, 1])
        >>> x_train, y_train, x_test, y_test = split_train_test(
        ...     x, y, test_fraction=0.4, seed=0, source="toy")
        >>> sorted(y_test.tolist())
        [0, 1]
    """
    is_number = isinstance(test_fraction, (int, float, np.integer, np.floating)) and not isinstance(
        test_fraction, bool
    )
    # `not 0 < f < 1` is also true for NaN, which would break math.ceil below.
    if not is_number or not 0.0 < test_fraction < 1.0:
        raise DatasetError(
            f"{source}: expected test_fraction strictly between 0 and 1, received {test_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"{source}: expected seed to be an int >= 0, received {seed!r}")
    count = labels.shape[0]
    # Rounded first so that float noise cannot add an example: 100 * 0.07 is
    # 7.000000000000001, which must give 7 test examples, not 8.
    test_count = math.ceil(round(count * test_fraction, 9))
    if not 1 <= test_count <= count - 1:
        raise DatasetError(
            f"{source}: test_fraction={test_fraction} gives {test_count} test and "
            f"{count - test_count} training examples out of {count}; expected at least one of "
            "each. help: choose a test_fraction between 1/N and 1 - 1/N, or provide a test set"
        )
    classes, class_counts = np.unique(labels, return_counts=True)
    # Integer arithmetic for the proportional quotas: floats could round 72.0
    # down to 71.999... and move a slot to the wrong class.
    quotas = class_counts * test_count // count
    remainders = class_counts * test_count % count
    leftover = test_count - int(quotas.sum())
    quotas[np.argsort(-remainders, kind="stable")[:leftover]] += 1

    rng = np.random.default_rng(seed)
    is_test = np.zeros(count, dtype=bool)
    for label, quota in zip(classes, quotas):
        members = np.flatnonzero(labels == label)
        is_test[rng.permutation(members)[:quota]] = True
    return features[~is_test], labels[~is_test], features[is_test], labels[is_test]


def float_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a numpy dtype, checking that it is floating point.

    Args:
        dtype: Anything ``np.dtype`` accepts, e.g. ``np.float32`` or ``"float64"``.

    Returns:
        The numpy dtype.

    Raises:
        DatasetError: If ``dtype`` is not a floating-point dtype.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise DatasetError(
            f"expected a floating dtype such as np.float32 or np.float64, received {dtype!r}"
        ) from error
    if resolved.kind != "f":
        raise DatasetError(
            f"expected a floating dtype such as np.float32 or np.float64, received {resolved}"
        )
    return resolved
