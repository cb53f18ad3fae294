"""The built-in 8x8 handwritten digits: 1797 examples that ship inside the package.

Data: "Optical Recognition of Handwritten Digits", E. Alpaydin and C. Kaynak,
UCI Machine Learning Repository, 1998 (DOI 10.24432/C50P49), licensed CC BY
4.0. The file ``digits.csv.gz`` is the copy of the UCI test set bundled with
scikit-learn (BSD-3-Clause), unchanged; see ``DIGITS_LICENSE.txt``. It is read
with gzip and numpy, so scikit-learn is not needed.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from .dataset import Dataset, DatasetError, float_dtype, split_train_test

DIGITS_FILE = "digits.csv.gz"
NUM_EXAMPLES = 1797
NUM_PIXELS = 64
MAX_PIXEL = 16.0
NUM_CLASSES = 10


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Read the bundled digits file.

    Shape:
        Returns ``(pixels (1797, 64), labels (1797,))``.

    Returns:
        ``(pixels, labels)``: int64 pixel counts in ``0..16`` and int64 labels
        in ``0..9``, in file order.

    Raises:
        DatasetError: If the file is missing from the installed package or
            does not hold 1797 rows of 65 integers.
    """
    resource = resources.files(__package__).joinpath(DIGITS_FILE)
    try:
        text = gzip.decompress(resource.read_bytes()).decode("ascii")
    except FileNotFoundError as error:
        raise DatasetError(
            f"expected the package data file bnnet/data/{DIGITS_FILE}, not found; "
            "help: reinstall bnnet (the package data must include *.csv.gz)"
        ) from error
    table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != (NUM_EXAMPLES, NUM_PIXELS + 1):
        raise DatasetError(
            f"bnnet/data/{DIGITS_FILE}: expected {NUM_EXAMPLES} rows of {NUM_PIXELS} pixels and "
            f"a label, received shape {table.shape}; help: reinstall bnnet"
        )
    return table[:, :NUM_PIXELS], table[:, NUM_PIXELS]


def load_digits(*, dtype=np.float32, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load the 8x8 digits, scaled to ``[0, 1]`` and split by class.

    Pixel counts (0..16) are divided by 16. The split is stratified and
    reproducible: see `split_train_test`. The default 0.2 gives 1437 training
    and 360 test examples.

    Args:
        dtype: Floating dtype of the features.
        test_fraction: Share of examples in the test set, in ``(0, 1)``.
        seed: Seed of the split; the same seed gives the same split.

    Shape:
        ``x_train (1797 - T, 64)``, ``x_test (T, 64)`` with
        ``T = ceil(1797 * test_fraction)``.

    Returns:
        The `Dataset`, named ``"digits"``, with 10 classes.

    Raises:
        DatasetError: If ``dtype`` is not floating point or ``test_fraction``
            leaves a split empty.

    Example:
        >>> data = load_digits()
        >>> data.x_train.shape, data.x_test.shape
        ((1437, 64), (360, 64))
    """
    dtype = float_dtype(dtype)
    pixels, labels = read_digits()
    features = pixels.astype(dtype) / dtype.type(MAX_PIXEL)
    x_train, y_train, x_test, y_test = split_train_test(
        features, labels, test_fraction=test_fraction, seed=seed, source="digits"
    )
    return Dataset("digits", x_train, y_train, x_test, y_test, num_classes=NUM_CLASSES)
