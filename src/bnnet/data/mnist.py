"""MNIST and Fashion-MNIST from the four standard IDX files in a directory.

Sources:
    MNIST: Yann LeCun, Corinna Cortes and Christopher J. C. Burges, "The MNIST
    database of handwritten digits" (no license file; cite the authors).
    Fashion-MNIST: Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando
    Research), arXiv:1708.07747, 2017, MIT license, Copyright (c) 2017 Zalando SE.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError, float_dtype
from .idx import read_idx_images, read_idx_labels

MNIST_NAMES = ("mnist", "fashion-mnist")
NUM_CLASSES = 10
IMAGE_SIZE = 28

# Role -> file name without ".gz"; both datasets use the same names.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_mnist_dir(name: str, data_dir: str | os.PathLike) -> Path:
    """Pick the directory that holds the IDX files of ``name``.

    ``data_dir/<name>/`` is tried first, then ``data_dir`` itself. The first
    one holding the training images (``.gz`` or uncompressed) is used for all
    four files, so MNIST and Fashion-MNIST files are never mixed.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: Directory given by the user.

    Returns:
        The directory holding ``train-images-idx3-ubyte[.gz]``.

    Raises:
        DatasetError: If neither directory holds the training images; the
            message lists both directories searched.
    """
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DatasetError(
            f"{name}: expected data_dir to be an existing directory, received {str(data_dir)!r}"
        )
    candidates = (data_dir / name, data_dir)
    for candidate in candidates:
        if _find_file(candidate, MNIST_FILES["train_images"]) is not None:
            return candidate
    searched = " and ".join(repr(str(candidate)) for candidate in candidates)
    raise DatasetError(
        f"{name}: expected {MNIST_FILES['train_images']}.gz (or uncompressed) in {searched}, "
        f"found neither; help: put the four IDX files in {str(data_dir / name)!r}, or fetch "
        f"them with bnnet.data.download.download_mnist({name!r}, {str(data_dir)!r})"
    )


def load_mnist(
    name: str,
    data_dir: str | os.PathLike,
    *,
    dtype=np.float32,
    limit_train: int | None = None,
) -> Dataset:
    """Load MNIST or Fashion-MNIST with its standard 60,000 / 10,000 split.

    Pixels are divided by 255, so features lie in ``[0, 1]``.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``; used to find the files and
            as the dataset name. Both have the same file names, so a directory
            holding the wrong dataset's files cannot be told apart.
        data_dir: Directory holding the files, directly or in ``<name>/``.
        dtype: Floating dtype of the features.
        limit_train: If given, keep only the first ``limit_train`` training
            examples (fast tests). The test set is always complete.

    Shape:
        ``x_train (N, 784)``, ``y_train (N,)``, ``x_test (10000, 784)``,
        ``y_test (10000,)`` for the standard files, with ``N = 60000`` or
        ``limit_train``.

    Returns:
        The `Dataset`, with 10 classes.

    Raises:
        DatasetError: If a file is missing (the message names it and the
            directory), is not valid IDX, holds images that are not 28x28
            uint8, holds labels outside 0..9, or the image and label counts
            differ, or ``limit_train`` exceeds the training set.
    """
    dtype = float_dtype(dtype)
    directory = find_mnist_dir(name, data_dir)
    paths = {role: _require_file(directory, stem, name) for role, stem in MNIST_FILES.items()}
    arrays = {}
    for split in ("train", "test"):
        images = read_idx_images(paths[f"{split}_images"], IMAGE_SIZE, IMAGE_SIZE)
        labels = read_idx_labels(paths[f"{split}_labels"])
        _check_pair(images, labels, paths[f"{split}_images"], paths[f"{split}_labels"])
        if split == "train" and limit_train is not None:
            if limit_train > len(labels):
                raise DatasetError(
                    f"{name}: expected limit_train <= {len(labels)} (the training examples in "
                    f"{paths['train_images']}), received {limit_train}"
                )
            # Slicing the uint8 images first converts only what is kept.
            images, labels = images[:limit_train], labels[:limit_train]
        # One pass, computed in `dtype`: the same rounding as torchvision's
        # ToTensor (float32 division by 255), and no float64 temporary.
        features = np.divide(
            images.reshape(len(images), IMAGE_SIZE * IMAGE_SIZE), dtype.type(255), dtype=dtype
        )
        arrays[f"x_{split}"] = features
        arrays[f"y_{split}"] = labels.astype(np.int64)
    return Dataset(name=name, num_classes=NUM_CLASSES, **arrays)


def _find_file(directory: Path, stem: str) -> Path | None:
    # The published .gz first: it is the file whose MD5 is documented.
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _require_file(directory: Path, stem: str, name: str) -> Path:
    path = _find_file(directory, stem)
    if path is None:
        raise DatasetError(
            f"{name}: expected {stem}.gz (or uncompressed {stem}) in {str(directory)!r}, "
            "not found; help: the directory needs all four files: "
            + ", ".join(f"{file_stem}.gz" for file_stem in MNIST_FILES.values())
        )
    return path


def _check_pair(images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path) -> None:
    if len(images) != len(labels):
        raise DatasetError(
            f"expected as many labels as images, received {len(images)} images in "
            f"{str(image_path)!r} and {len(labels)} labels in {str(label_path)!r}"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = np.unique(labels[labels >= NUM_CLASSES])
        raise DatasetError(
            f"{str(label_path)!r}: expected labels in 0..{NUM_CLASSES - 1}, received "
            f"{bad[:10].tolist()}"
        )
