"""Tests of the dataset loaders: Dataset, digits, MNIST (fake and real), npz, csv, load_dataset."""

from __future__ import annotations

import dataclasses
import doctest
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from data_fixtures import (
    MNIST_STEMS,
    readme_md5_table,
    shared_data_candidates,
    shared_data_dir,
    write_fake_mnist,
    write_idx,
)

import bnnet.data
from bnnet.data import DATASET_NAMES, Dataset, DatasetError, default_data_dir, load_dataset
from bnnet.data import arrays, dataset, digits, download, idx, mnist, registry
from bnnet.data.dataset import split_train_test


def make_dataset(**overrides) -> Dataset:
    fields = dict(
        name="toy",
        x_train=np.zeros((4, 3)),
        y_train=np.array([0, 1, 2, 1]),
        x_test=np.zeros((2, 3)),
        y_test=np.array([1, 0]),
        num_classes=3,
    )
    fields.update(overrides)
    return Dataset(**fields)


# --- Dataset


def test_dataset_properties():
    data = make_dataset()
    assert data.num_features == 3
    assert data.describe() == "toy: 4 train / 2 test examples, 3 features, 3 classes, float64"
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.num_classes = 4


def test_dataset_compares_by_identity():
    # A generated __eq__ would compare arrays and raise "truth value ... ambiguous".
    data = make_dataset()
    assert data == data and data != make_dataset()
    assert len({data, make_dataset()}) == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x_train": np.zeros(4)}, r"x_train: expected a 2-D numpy array \(N, D\), received shape \(4,\)"),
        ({"x_train": [[0.0]]}, r"x_train: expected a 2-D numpy array \(N, D\), received list"),
        ({"x_train": np.zeros((4, 3), np.int64)}, "x_train: expected a floating dtype, received int64"),
        ({"x_train": np.zeros((3, 4)).T}, "x_train: expected a C-contiguous array, received a strided view"),
        ({"y_train": np.zeros(4)}, r"y_train: expected a 1-D int64 numpy array, received shape \(4,\) dtype float64"),
        ({"y_train": np.zeros(3, np.int64)}, r"expected as many train labels as train examples \(4\), received 3"),
        ({"y_test": np.array([0, 3])}, "y_test: expected labels in 0..2, received values from 0 to 3"),
        ({"y_test": np.array([-1, 0])}, "y_test: expected labels in 0..2, received values from -1 to 0"),
        ({"x_test": np.zeros((2, 5))}, "expected x_test to match x_train's 3 features and dtype float64, received 5"),
        ({"x_test": np.zeros((2, 3), np.float32)}, "received 3 features and dtype float32"),
        ({"num_classes": 0}, "expected num_classes >= 1, received 0"),
        ({"num_classes": 3.0}, "expected num_classes to be an int, received float"),
        ({"x_train": np.zeros((0, 3)), "y_train": np.zeros(0, np.int64)}, "expected at least one training example"),
    ],
)
def test_dataset_validation(overrides, message):
    with pytest.raises(DatasetError, match=message):
        make_dataset(**overrides)


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)


# --- split_train_test


def test_split_is_stratified_and_sized():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    features = np.arange(100.0)[:, None]
    x_train, y_train, x_test, y_test = split_train_test(
        features, labels, test_fraction=0.25, seed=3, source="toy"
    )
    assert len(y_test) == 25 and len(y_train) == 75
    np.testing.assert_array_equal(np.bincount(y_test), [13, 7, 5])  # 12.5, 7.5, 5 rounded to 25
    # Rows stay paired with their labels and each example lands in exactly one part.
    np.testing.assert_array_equal(labels[x_train[:, 0].astype(int)], y_train)
    np.testing.assert_array_equal(np.sort(np.concatenate([x_train, x_test])[:, 0]), features[:, 0])
    assert np.all(np.diff(x_train[:, 0]) > 0), "original order is kept"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.0}, "expected test_fraction strictly between 0 and 1, received 0.0"),
        ({"test_fraction": 1}, "expected test_fraction strictly between 0 and 1, received 1"),
        ({"test_fraction": float("nan")}, "received nan"),
        ({"test_fraction": "0.2"}, "received '0.2'"),
        ({"test_fraction": True}, "received True"),
        ({"test_fraction": 0.5j}, "received 0.5j"),
        ({"test_fraction": 0.99}, r"toy: test_fraction=0.99 gives 5 test and 0 training examples out of 5; expected at least one of each"),
        ({"seed": -1}, "expected seed to be an int >= 0, received -1"),
        ({"seed": 1.5}, "expected seed to be an int >= 0, received 1.5"),
    ],
)
def test_split_validation(kwargs, message):
    arguments = {"test_fraction": 0.2, "seed": 0, **kwargs}
    with pytest.raises(DatasetError, match=message):
        split_train_test(np.zeros((5, 1)), np.array([0, 1, 0, 1, 0]), source="toy", **arguments)


def test_split_ignores_float_noise():
    labels = np.arange(100) % 2
    _, _, x_test, _ = split_train_test(
        np.zeros((100, 1)), labels, test_fraction=0.07, seed=0, source="toy"
    )
    assert x_test.shape == (7, 1)  # 100 * 0.07 == 7.000000000000001 in floating point


def test_split_rounds_test_count_up():
    # ceil(5 * 0.01) = 1: a tiny fraction still gives one test example.
    _, _, x_test, _ = split_train_test(
        np.zeros((5, 1)), np.array([0, 1, 0, 1, 0]), test_fraction=0.01, seed=0, source="toy"
    )
    assert x_test.shape == (1, 1)


# --- digits


def test_digits_default_split():
    data = load_dataset("digits")
    assert data.name == "digits"
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.y_train.shape == (1437,) and data.y_test.shape == (360,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.flags.c_contiguous and data.x_test.flags.c_contiguous
    assert data.num_classes == 10 and data.num_features == 64
    all_x = np.concatenate([data.x_train, data.x_test])
    assert all_x.min() == 0.0 and all_x.max() == 1.0
    # Pixel counts 0..16 divided by 16: exact multiples of 1/16.
    np.testing.assert_array_equal(all_x * 16, np.round(all_x * 16))
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]))
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    # Stratified: each class gives ~20% of its examples to the test set.
    assert np.all(np.abs(np.bincount(data.y_test) - 0.2 * counts) <= 1)


def test_digits_split_is_a_partition_of_the_file():
    pixels, labels = digits.read_digits()
    assert pixels.shape == (1797, 64) and labels.shape == (1797,)
    assert pixels.min() == 0 and pixels.max() == 16
    data = load_dataset("digits", dtype=np.float64)
    rows = np.concatenate([data.x_train, data.x_test]) * 16
    rows_with_labels = np.column_stack([rows, np.concatenate([data.y_train, data.y_test])])
    expected = np.column_stack([pixels, labels]).astype(np.float64)
    np.testing.assert_array_equal(np.unique(rows_with_labels, axis=0), np.unique(expected, axis=0))


def test_digits_deterministic_per_seed():
    first, second = load_dataset("digits", seed=5), load_dataset("digits", seed=5)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    other = load_dataset("digits", seed=6)
    assert not np.array_equal(first.x_test, other.x_test)


def test_digits_test_fraction_and_dtype():
    data = load_dataset("digits", test_fraction=0.5, dtype="float64")
    assert data.x_test.shape == (899, 64) and data.x_train.shape == (898, 64)
    assert data.x_train.dtype == np.float64


def test_digits_limit_train_keeps_test_set():
    full, limited = load_dataset("digits"), load_dataset("digits", limit_train=100)
    np.testing.assert_array_equal(limited.x_train, full.x_train[:100])
    np.testing.assert_array_equal(limited.x_test, full.x_test)
    assert limited.num_classes == 10
    assert limited.x_train.base is None, "a copy, so the full array can be freed"


# --- MNIST from a fake directory


@pytest.fixture
def data_rng():
    # Local, not conftest's `rng`: these tests own their seed.
    return np.random.default_rng(2024)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("nested", [True, False], ids=["data_dir/name", "data_dir"])
@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_fake_mnist_layouts(tmp_path, data_rng, name, nested, compress):
    directory = tmp_path / name if nested else tmp_path
    written = write_fake_mnist(directory, data_rng, compress=compress)

    data = load_dataset(name, data_dir=tmp_path)

    assert data.name == name and data.num_classes == 10
    assert data.x_train.shape == (50, 784) and data.x_test.shape == (20, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.flags.c_contiguous
    expected = (written["train_images"].reshape(50, 784) / np.float32(255)).astype(np.float32)
    np.testing.assert_array_equal(data.x_train, expected)
    np.testing.assert_array_equal(data.y_test, written["test_labels"])
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0


def test_fake_mnist_dtype_and_limit(tmp_path, data_rng):
    written = write_fake_mnist(tmp_path / "mnist", data_rng)
    data = load_dataset("mnist", data_dir=str(tmp_path), dtype=np.float64, limit_train=7)
    assert data.x_train.shape == (7, 784) and data.x_test.shape == (20, 784)
    assert data.x_train.dtype == np.float64
    np.testing.assert_array_equal(data.x_train, written["train_images"][:7].reshape(7, 784) / 255.0)
    np.testing.assert_array_equal(data.y_train, written["train_labels"][:7])


def test_nested_directory_wins_over_flat(tmp_path, data_rng):
    write_fake_mnist(tmp_path, data_rng, train_count=5)
    write_fake_mnist(tmp_path / "mnist", data_rng, train_count=6)
    assert load_dataset("mnist", data_dir=tmp_path).x_train.shape[0] == 6


def test_data_dir_from_environment(tmp_path, data_rng, monkeypatch):
    write_fake_mnist(tmp_path / "fashion-mnist", data_rng)
    monkeypatch.setenv("BNNET_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert load_dataset("fashion-mnist").x_test.shape == (20, 784)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_default_data_dir_unset(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("BNNET_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("BNNET_DATA_DIR", value)
    assert default_data_dir() is None


def test_mnist_without_data_dir(monkeypatch):
    monkeypatch.delenv("BNNET_DATA_DIR", raising=False)
    message = "mnist: expected a data directory, received none; help: pass --data-dir .* set BNNET_DATA_DIR"
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist")


def test_mnist_data_dir_does_not_exist(tmp_path):
    with pytest.raises(DatasetError, match="expected data_dir to be an existing directory, received '.*nowhere'"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_mnist_no_files_lists_both_directories(tmp_path):
    message = re.escape(
        f"fashion-mnist: expected train-images-idx3-ubyte.gz (or uncompressed) in "
        f"'{tmp_path / 'fashion-mnist'}' and '{tmp_path}', found neither"
    )
    with pytest.raises(DatasetError, match=message + ".*download_mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


@pytest.mark.parametrize("missing", ["train_labels", "test_images", "test_labels"])
def test_mnist_missing_file_names_file_and_directory(tmp_path, data_rng, missing):
    write_fake_mnist(tmp_path / "mnist", data_rng)
    (tmp_path / "mnist" / f"{MNIST_STEMS[missing]}.gz").unlink()
    message = re.escape(
        f"mnist: expected {MNIST_STEMS[missing]}.gz (or uncompressed {MNIST_STEMS[missing]}) "
        f"in '{tmp_path / 'mnist'}', not found"
    )
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_count_mismatch(tmp_path, data_rng, split):
    write_fake_mnist(tmp_path, data_rng)
    write_idx(tmp_path / f"{MNIST_STEMS[f'{split}_labels']}.gz", np.zeros(9, np.uint8), compress=True)
    count = 50 if split == "train" else 20
    message = rf"expected as many labels as images, received {count} images in .*'.* and 9 labels in"
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_label_out_of_range(tmp_path, data_rng):
    write_fake_mnist(tmp_path, data_rng)
    labels = np.zeros(20, np.uint8)
    labels[[3, 4]] = (10, 200)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, compress=True)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz': expected labels in 0..9, received \[10, 200\]"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_wrong_image_size(tmp_path, data_rng):
    write_fake_mnist(tmp_path, data_rng)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 32, 32), np.uint8), compress=True)
    with pytest.raises(DatasetError, match=r"expected uint8 images of shape \(count, 28, 28\), received dtype uint8 shape \(50, 32, 32\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_limit_larger_than_training_set(tmp_path, data_rng):
    write_fake_mnist(tmp_path, data_rng)
    with pytest.raises(DatasetError, match=r"mnist: expected limit_train <= 50 \(the training examples in .*\), received 51"):
        load_dataset("mnist", data_dir=tmp_path, limit_train=51)


# --- the real MNIST and Fashion-MNIST (skipped when the shared data is absent)

REAL_DATA = shared_data_dir()
SKIP_REASON = (
    f"real MNIST and Fashion-MNIST not found in {[str(path) for path in shared_data_candidates()]}: "
    "set BNNET_DATA_DIR or provide <repo>/../shared/data"
)
needs_real_data = pytest.mark.skipif(REAL_DATA is None, reason=SKIP_REASON)
# Well-known facts: the first labels, and the pixel mean behind the usual
# Normalize((0.1307,), ...) for MNIST and 0.2860 for Fashion-MNIST.
FIRST_LABELS = {
    "mnist": ([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
    "fashion-mnist": ([9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]),
}
TRAIN_MEAN = {"mnist": 0.1307, "fashion-mnist": 0.2860}
LABEL_COUNTS = {
    "mnist": (
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ),
    "fashion-mnist": ([6000] * 10, [1000] * 10),
}


@pytest.fixture(scope="module", params=["mnist", "fashion-mnist"])
def real_dataset(request):
    if REAL_DATA is None:
        pytest.skip(SKIP_REASON)
    return load_dataset(request.param, data_dir=REAL_DATA)


def test_real_mnist_shapes_and_ranges(real_dataset):
    data = real_dataset
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.flags.c_contiguous and data.x_test.flags.c_contiguous
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.x_test.min() == 0.0 and data.x_test.max() == 1.0
    train_counts, test_counts = LABEL_COUNTS[data.name]
    np.testing.assert_array_equal(np.bincount(data.y_train, minlength=10), train_counts)
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10), test_counts)
    first_train, first_test = FIRST_LABELS[data.name]
    np.testing.assert_array_equal(data.y_train[:10], first_train)
    np.testing.assert_array_equal(data.y_test[:10], first_test)
    assert abs(data.x_train.mean(dtype=np.float64) - TRAIN_MEAN[data.name]) < 1e-4
    # Every value is k/255 for an integer pixel k.
    pixels = data.x_test * 255
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)


@needs_real_data
def test_real_files_match_readme_md5():
    table = readme_md5_table(REAL_DATA)
    assert len(table) == 8, f"expected 8 rows in the README table, parsed {sorted(table)}"
    for relative, expected_md5 in table.items():
        assert download.file_md5(REAL_DATA / relative) == expected_md5, relative


@needs_real_data
def test_download_checksums_match_readme():
    table = readme_md5_table(REAL_DATA)
    constants = {f"{name}/{file}": md5 for name, files in download.MD5.items() for file, md5 in files.items()}
    assert constants == table


def test_download_table_matches_loader_file_names():
    for name in mnist.MNIST_NAMES:
        assert set(download.MD5[name]) == {f"{stem}.gz" for stem in mnist.MNIST_FILES.values()}
        assert all(url.endswith("/") for url in download.MIRRORS[name])


# --- npz


def save_npz(path, **arrays_to_save):
    np.savez(path, **arrays_to_save)
    return path


def test_npz_with_test_set(tmp_path, data_rng):
    x_train, x_test = data_rng.normal(size=(30, 2, 3)), data_rng.normal(size=(10, 2, 3))
    y_train, y_test = data_rng.integers(0, 4, size=30), np.array([5] + [0] * 9)
    path = save_npz(tmp_path / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    data = load_dataset("npz", path=path)

    assert data.name == "npz" and data.num_classes == 6  # the largest label, 5, is in the test set
    assert data.x_train.shape == (30, 6) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_test, x_test.reshape(10, 6).astype(np.float32))
    np.testing.assert_array_equal(data.y_train, y_train)


def test_npz_without_test_set_is_split(tmp_path, data_rng):
    x = data_rng.normal(size=(50, 4))
    y = np.repeat([0.0, 1.0], 25)  # integral floats are fine
    path = save_npz(tmp_path / "data.npz", x_train=x, y_train=y)
    data = load_dataset("npz", path=str(path), test_fraction=0.3, seed=1, dtype=np.float64)
    assert data.x_train.shape == (35, 4) and data.x_test.shape == (15, 4)
    np.testing.assert_array_equal(np.bincount(data.y_test), [8, 7])
    assert data.y_train.dtype == np.int64 and data.x_train.dtype == np.float64
    again = load_dataset("npz", path=path, test_fraction=0.3, seed=1, dtype=np.float64)
    np.testing.assert_array_equal(again.x_test, data.x_test)


@pytest.mark.parametrize(
    ("arrays_to_save", "message"),
    [
        ({"x": np.zeros((2, 1)), "y_train": np.zeros(2)}, r"expected arrays x_train, y_train and optionally both x_test and y_test, received \['x', 'y_train'\]"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 1))}, r"received \['x_test', 'x_train', 'y_train'\]"),
        ({"x_train": np.zeros(4), "y_train": np.arange(4) % 2}, r"x_train: expected shape \(N, D\) or \(N, ...\) with N, D >= 1, received shape \(4,\); help: .*reshape\(-1, 1\)"),
        ({"x_train": np.zeros((4, 0)), "y_train": np.arange(4) % 2}, r"received shape \(4, 0\)"),
        ({"x_train": np.array([["a"], ["b"]]), "y_train": np.arange(2)}, "x_train: expected numeric features, received dtype <U1"),
        ({"x_train": np.zeros((4, 1), complex), "y_train": np.arange(4) % 2}, "expected numeric features, received dtype complex128"),
        ({"x_train": np.array([[0.0], [np.nan], [1.0], [np.inf]]), "y_train": np.arange(4) % 2}, r"x_train: expected finite features in float32, received NaN or inf in 2 examples \(first at index 1, counting from 0\); help: drop or impute"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.zeros((4, 1))}, r"y_train: expected labels of shape \(N,\), received shape \(4, 1\); help: y.ravel\(\)"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.arange(3)}, r"expected as many train labels as train examples \(4\), received 3 labels"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.array([0, 1, 1.5, 0])}, r"y_train: expected integer class labels, received dtype float64 with values such as \[1.5\]"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.array([0, 1, np.nan, 0])}, r"values such as \[nan\]"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.array(["0", "1", "0", "1"])}, r"expected integer class labels, received dtype <U1"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.array([0, -1, 1, 0])}, r"y_train: expected class labels >= 0, received -1; help: map labels"),
        ({"x_train": np.zeros((4, 1)), "y_train": np.full(4, 2)}, r"expected at least 2 classes in the training labels, received only \[2\]"),
        ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 3)), "y_test": np.arange(2)}, r"expected x_test with the 2 features of x_train, received 3 \(shape \(2, 3\)\)"),
        ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 2)), "y_test": np.arange(3)}, r"expected as many test labels as test examples \(2\), received 3"),
    ],
)
def test_npz_validation(tmp_path, arrays_to_save, message):
    path = save_npz(tmp_path / "bad.npz", **arrays_to_save)
    with pytest.raises(DatasetError, match=message):
        load_dataset("npz", path=path)


def test_npz_refuses_pickled_objects(tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros(2), np.zeros(3)]
    path = save_npz(tmp_path / "objects.npz", x_train=objects, y_train=np.arange(2))
    with pytest.raises(DatasetError, match="objects.npz: expected numeric arrays readable without pickle"):
        load_dataset("npz", path=path)


def test_npz_given_an_npy_file(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros((3, 2)))
    with pytest.raises(DatasetError, match=r"single.npy: expected a .npz archive \(np.savez\), received a single .npy array of shape \(3, 2\)"):
        load_dataset("npz", path=path)


@pytest.mark.parametrize("content", [b"not numpy at all", b"PK\x03\x04broken zip"], ids=["text", "broken-zip"])
def test_npz_unreadable_file(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="junk.npz: expected a .npz archive of numeric arrays written by np.savez, received a file numpy cannot load"):
        load_dataset("npz", path=path)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="expected a .npz archive at path, received '.*absent.npz', which is not a file"):
        load_dataset("npz", path=tmp_path / "absent.npz")


# --- csv


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("header", ["", "label,a,b\n", "\ufeffy,f1,f2\n"], ids=["no-header", "header", "bom-header"])
def test_csv_single_file(tmp_path, header):
    rows = "".join(f"{i % 3},{i}.5,{-i}\n" for i in range(20))
    path = write_text(tmp_path / "data.csv", header + rows)
    data = load_dataset("csv", path=path, test_fraction=0.25, seed=0)
    assert data.name == "csv" and data.num_classes == 3
    assert data.x_train.shape == (15, 2) and data.x_test.shape == (5, 2)
    all_rows = np.concatenate([data.x_train, data.x_test])
    np.testing.assert_array_equal(np.sort(all_rows[:, 1]), -np.arange(20.0)[::-1])
    np.testing.assert_array_equal(data.y_train, data.x_train[:, 0].astype(int) % 3)


def test_csv_train_test_pair(tmp_path):
    write_text(tmp_path / "train.csv", "y,x\n0,1.0\n1,2.0\n1,3.0\n\n")
    write_text(tmp_path / "test.csv", "2,4.0\n")
    data = load_dataset("csv", path=f"{tmp_path / 'train.csv'}, {tmp_path / 'test.csv'}")
    np.testing.assert_array_equal(data.x_train, [[1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(data.y_test, [2])
    assert data.num_classes == 3


def test_csv_file_name_with_comma(tmp_path):
    path = write_text(tmp_path / "a,b.csv", "0,1\n1,2\n0,3\n1,4\n")
    assert load_dataset("csv", path=str(path), test_fraction=0.5).x_test.shape == (2, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "data.csv: expected rows 'label,feature,...', received no data rows"),
        ("label,x\n", "received no data rows"),
        ("0,1\n1,oops\n", r"data.csv: expected numeric rows 'label,feature,...' of equal length, received could not convert string 'oops'"),
        ("0,1,2\n1,2\n", "expected numeric rows 'label,feature,...' of equal length, received .*columns"),
        ("0\n1\n", "data.csv: expected a label column and at least 1 feature column, received 1 column"),
        ("0,1\n1,nan\n0,2\n", r"x_train: expected finite features in float32, received NaN or inf in 1 examples \(first at index 1"),
        ("0,1\n1,inf\n", "expected finite features"),
        ("0,1\n1,1e300\n", "expected finite features in float32, received NaN or inf in 1 examples"),
        ("0,1\n1.5,2\n", r"y_train: expected integer class labels, received dtype float64 with values such as \[1.5\]"),
        ("0,1\n-1,2\n", "y_train: expected class labels >= 0, received -1"),
        ("1,1\n1,2\n1,3\n", r"expected at least 2 classes in the training labels, received only \[1\]"),
    ],
)
def test_csv_validation(tmp_path, text, message):
    path = write_text(tmp_path / "data.csv", text)
    with pytest.raises(DatasetError, match=message):
        load_dataset("csv", path=path)


def test_csv_pair_feature_mismatch(tmp_path):
    write_text(tmp_path / "train.csv", "0,1,2\n1,2,3\n")
    write_text(tmp_path / "test.csv", "0,1\n")
    with pytest.raises(DatasetError, match=r"expected x_test with the 2 features of x_train, received 1"):
        load_dataset("csv", path=f"{tmp_path / 'train.csv'},{tmp_path / 'test.csv'}")


@pytest.mark.parametrize("path", ["a.csv,b.csv,c.csv", "a.csv,"], ids=["three", "empty-part"])
def test_csv_bad_pair_syntax(path):
    message = re.escape(f"expected path to be one CSV file or two separated by a comma ('train.csv,test.csv'), received {path!r}")
    with pytest.raises(DatasetError, match=message):
        load_dataset("csv", path=path)


def test_csv_missing_file(tmp_path):
    write_text(tmp_path / "train.csv", "0,1\n1,2\n")
    with pytest.raises(DatasetError, match="expected a CSV file at path, received '.*missing.csv', which is not a file"):
        load_dataset("csv", path=f"{tmp_path / 'train.csv'},{tmp_path / 'missing.csv'}")


# --- load_dataset arguments


def test_dataset_names():
    assert DATASET_NAMES == ("digits", "mnist", "fashion-mnist", "npz", "csv")


def test_name_is_case_insensitive():
    assert load_dataset(" Digits ").name == "digits"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("fashion_mnist", "; did you mean 'fashion-mnist'\\?"), ("cifar10", ""), (3, "")],
)
def test_unknown_name_lists_names(name, suggestion):
    message = re.escape(f"expected a dataset name in {DATASET_NAMES}, received {name!r}") + suggestion + "$"
    with pytest.raises(DatasetError, match=message):
        load_dataset(name)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("digits", {"path": "x.npz"}, "digits: expected path=None \\(path is for npz and csv\\), received 'x.npz'$"),
        ("mnist", {"path": "x"}, "mnist: expected path=None .* received 'x'; help: pass data_dir instead"),
        ("digits", {"data_dir": "data"}, "digits: expected data_dir=None \\(data_dir is for mnist and fashion-mnist\\), received 'data'$"),
        ("csv", {"data_dir": "data"}, "csv: expected data_dir=None .*; help: pass path instead"),
        ("npz", {}, r"npz: expected path to a .npz file, received None; help: pass --data-path \(path=...\)$"),
        ("csv", {}, r"csv: expected path to a .csv file, received None; help: .* or 'train.csv,test.csv'"),
        ("digits", {"limit_train": 0}, "expected limit_train to be None or an int >= 1, received 0"),
        ("digits", {"limit_train": 2.0}, "expected limit_train to be None or an int >= 1, received 2.0"),
        ("digits", {"limit_train": 1438}, r"digits: expected limit_train <= 1437 \(the training examples\), received 1438"),
        ("digits", {"dtype": np.int32}, "expected a floating dtype such as np.float32 or np.float64, received int32"),
        ("digits", {"dtype": "no-such-type"}, "expected a floating dtype .* received 'no-such-type'"),
        ("digits", {"test_fraction": 1.0}, "digits: expected test_fraction strictly between 0 and 1, received 1.0"),
        ("digits", {"seed": -3}, "digits: expected seed to be an int >= 0, received -3"),
    ],
)
def test_argument_errors(name, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(name, **kwargs)


def test_load_dataset_is_keyword_only():
    with pytest.raises(TypeError):
        load_dataset("digits", None)


# --- package hygiene


def test_public_exports():
    assert set(bnnet.data.__all__) == {
        "Dataset", "load_dataset", "DATASET_NAMES", "DatasetError", "read_idx", "default_data_dir",
    }


def test_import_is_light():
    code = (
        "import sys, bnnet.data; "
        "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'urllib.request', 'pandas') if m in sys.modules))"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module", [bnnet.data, dataset, idx, digits, registry, arrays], ids=lambda module: module.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
