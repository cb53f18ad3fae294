"""Datasets for bnnet: built-in digits, MNIST / Fashion-MNIST from IDX files, user arrays.

Everything is loaded through `load_dataset(name, ...)`, which returns a
`Dataset` of flattened float features and int64 labels split into train and
test parts. Importing this package loads only numpy and the standard library.

Example:
    >>> from bnnet.data import load_dataset
    >>> data = load_dataset("digits")
    >>> data.num_features, data.num_classes
    (64, 10)
"""

from .dataset import Dataset, DatasetError
from .idx import read_idx
from .registry import DATASET_NAMES, default_data_dir, load_dataset

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetError",
    "default_data_dir",
    "load_dataset",
    "read_idx",
]
