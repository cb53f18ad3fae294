"""Tests of the IDX reader: round trips, gzip detection by magic bytes, and every corruption."""

from __future__ import annotations

import gzip
import re
import struct

import numpy as np
import pytest
from data_fixtures import idx_bytes, write_bytes, write_idx

from bnnet.data import DatasetError, read_idx
from bnnet.data.idx import read_idx_images, read_idx_labels

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def random_array(rng: np.random.Generator, dtype, shape) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.normal(scale=1e3, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    # Extremes included: they catch sign and byte-order mistakes.
    values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    values.flat[:2] = (info.min, info.max)
    return values


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)], ids=["1d", "3d", "4d"])
def test_round_trip(tmp_path, compress, dtype, shape):
    rng = np.random.default_rng(sum(shape) + np.dtype(dtype).itemsize)
    expected = random_array(rng, dtype, shape)
    path = write_idx(tmp_path / "array-idx", expected, compress=compress)

    array = read_idx(path)

    assert array.dtype == np.dtype(dtype)  # native byte order, not ">i2"
    assert array.dtype.isnative
    assert array.shape == shape
    np.testing.assert_array_equal(array, expected)
    assert array.flags.writeable and array.flags.c_contiguous


def test_known_bytes_decode_big_endian(tmp_path):
    # Hand-written file: int16 values 1, -2 stored big-endian as 00 01, ff fe.
    content = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x00, 0x01, 0xFF, 0xFE])
    path = write_bytes(tmp_path / "known", content, compress=False)
    np.testing.assert_array_equal(read_idx(path), np.array([1, -2], dtype=np.int16))


def test_accepts_str_path(tmp_path):
    path = write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8), compress=True)
    np.testing.assert_array_equal(read_idx(str(path)), np.arange(5))


def test_zero_length_dimension(tmp_path):
    path = write_idx(tmp_path / "empty", np.zeros((0, 28, 28), np.uint8), compress=True)
    assert read_idx(path).shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("file_name", "compress"),
    [("images.gz", False), ("images", True), ("images.idx", True), ("images.gz", True)],
)
def test_gzip_detected_by_magic_not_suffix(tmp_path, file_name, compress):
    expected = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / file_name, expected, compress=compress)
    np.testing.assert_array_equal(read_idx(path), expected)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


# --- corruption: each case names the file, what was expected and what was received


def header(type_code: int, *dims: int) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, type_code, len(dims), *dims)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncated_payload(tmp_path, compress):
    content = idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3]
    path = write_bytes(tmp_path / "short-idx", content, compress=compress)
    message = r"short-idx: file truncated: expected 16 payload bytes for shape \(4, 2, 2\) of uint8, received 13"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_trailing_bytes(tmp_path, compress):
    content = idx_bytes(np.zeros(3, np.int32)) + b"\x00\x01"
    path = write_bytes(tmp_path / "long-idx", content, compress=compress)
    message = r"long-idx: file has trailing bytes: expected 12 payload bytes for shape \(3,\) of int32, received 14"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_payload_size_counts_item_size(tmp_path):
    # 6 bytes would be right for uint8 but float64 needs 48.
    path = write_bytes(tmp_path / "f8", header(0x0E, 2, 3) + bytes(6), compress=False)
    with pytest.raises(DatasetError, match=r"expected 48 payload bytes .* of float64, received 6"):
        read_idx(path)


@pytest.mark.parametrize(
    ("magic", "received"),
    [
        (b"\x01\x00\x08\x01", "01 00 08 01"),  # first byte not zero
        (b"\x00\x07\x08\x01", "00 07 08 01"),  # second byte not zero
        (b"\x00\x00\x0a\x01", "00 00 0a 01"),  # 0x0A is not an IDX type code
        (b"PK\x03\x04", "50 4b 03 04"),  # a zip file, say
    ],
)
def test_bad_magic(tmp_path, magic, received):
    path = write_bytes(tmp_path / "bad-magic", magic + bytes(8), compress=False)
    message = (
        r"bad-magic: expected IDX magic 00 00 <type code in 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E> "
        rf"<ndim>, received {received}; help: is this an IDX file\?"
    )
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_bad_magic_inside_gzip(tmp_path):
    path = write_bytes(tmp_path / "text.gz", b"hello, world", compress=True)
    with pytest.raises(DatasetError, match=r"text.gz: expected IDX magic .* received 68 65 6c 6c"):
        read_idx(path)


def test_zero_dimensions(tmp_path):
    path = write_bytes(tmp_path / "scalar", b"\x00\x00\x08\x00\x05", compress=False)
    with pytest.raises(DatasetError, match="scalar: expected at least 1 dimension .* received 0"):
        read_idx(path)


@pytest.mark.parametrize("size", [0, 3])
def test_file_shorter_than_magic(tmp_path, size):
    path = write_bytes(tmp_path / "tiny", bytes(size), compress=False)
    message = f"tiny: expected an IDX header of at least 4 bytes, received {size} bytes"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_header_cut_inside_dimensions(tmp_path):
    path = write_bytes(tmp_path / "cut", header(0x08, 60000, 28, 28)[:10], compress=True)
    message = "cut: expected a 16-byte header for 3 dimensions, received only 10 bytes"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_absurd_header_in_raw_file_fails_before_allocating(tmp_path):
    # 2**32-1 cubed bytes cannot be allocated; the size check must come first.
    path = write_bytes(tmp_path / "huge", header(0x08, *(3 * [2**32 - 1])) + bytes(4), compress=False)
    message = f"huge: file truncated: expected {(2**32 - 1) ** 3} payload bytes"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_absurd_header_in_gzip_file(tmp_path):
    path = write_bytes(tmp_path / "huge.gz", header(0x0E, *(3 * [2**32 - 1])), compress=True)
    with pytest.raises(DatasetError, match=r"huge.gz: expected a header whose shape fits in memory"):
        read_idx(path)


GZIP_PREFIX = r"expected a complete gzip stream \(file starts with 1f 8b\), received a corrupt or truncated one"


def test_truncated_gzip_stream(tmp_path):
    rng = np.random.default_rng(0)
    compressed = gzip.compress(idx_bytes(random_array(rng, np.uint8, (50, 28, 28))))
    path = write_bytes(tmp_path / "cut.gz", compressed[: len(compressed) // 2], compress=False)
    with pytest.raises(DatasetError, match=f"cut.gz: {GZIP_PREFIX} \\(EOFError: .*help: download"):
        read_idx(path)


def test_corrupt_deflate_data(tmp_path):
    # Values 0..3 get Huffman-coded (random bytes would be stored verbatim and
    # only fail the CRC); the damage sits in the middle, after the IDX header.
    rng = np.random.default_rng(1)
    images = rng.integers(0, 4, size=(50, 28, 28), dtype=np.uint8)
    compressed = bytearray(gzip.compress(idx_bytes(images), mtime=0))
    middle = len(compressed) // 2
    compressed[middle : middle + 8] = b"\xff" * 8
    path = write_bytes(tmp_path / "garbled.gz", bytes(compressed), compress=False)
    with pytest.raises(DatasetError, match=f"garbled.gz: {GZIP_PREFIX} \\(zlib.error: Error -3"):
        read_idx(path)


def test_bad_gzip_crc(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8))))
    compressed[-8] ^= 0xFF  # the CRC32 is in the last 8 bytes, before the length
    path = write_bytes(tmp_path / "crc.gz", bytes(compressed), compress=False)
    with pytest.raises(DatasetError, match=f"crc.gz: {GZIP_PREFIX} \\(BadGzipFile: CRC check failed"):
        read_idx(path)


def test_gzip_magic_only(tmp_path):
    path = write_bytes(tmp_path / "magic-only", b"\x1f\x8b", compress=False)
    with pytest.raises(DatasetError, match=f"magic-only: {GZIP_PREFIX}"):
        read_idx(path)


# --- the image and label checks used by the MNIST loader


def test_read_idx_images_and_labels(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 9], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx_images(write_idx(tmp_path / "i", images, compress=True)), images)
    np.testing.assert_array_equal(read_idx_labels(write_idx(tmp_path / "l", labels, compress=True)), labels)


@pytest.mark.parametrize(
    ("array", "received"),
    [
        (np.zeros((2, 27, 28), np.uint8), r"dtype uint8 shape \(2, 27, 28\)"),
        (np.zeros((2, 784), np.uint8), r"dtype uint8 shape \(2, 784\)"),
        (np.zeros((2, 28, 28), np.int16), r"dtype int16 shape \(2, 28, 28\)"),
        (np.zeros(5, np.uint8), r"dtype uint8 shape \(5,\)"),
    ],
)
def test_read_idx_images_rejects_wrong_shape(tmp_path, array, received):
    path = write_idx(tmp_path / "not-images", array, compress=False)
    message = rf"not-images: expected uint8 images of shape \(count, 28, 28\), received {received}; help: check"
    with pytest.raises(DatasetError, match=message):
        read_idx_images(path)


def test_read_idx_images_other_size(tmp_path):
    images = np.zeros((3, 8, 8), np.uint8)
    path = write_idx(tmp_path / "small", images, compress=False)
    assert read_idx_images(path, height=8, width=8).shape == (3, 8, 8)


def test_read_idx_labels_rejects_images(tmp_path):
    path = write_idx(tmp_path / "images-not-labels", np.zeros((2, 28, 28), np.uint8), compress=True)
    message = re.escape(
        "images-not-labels: expected 1-D uint8 labels of shape (count,), received dtype uint8 "
        "shape (2, 28, 28)"
    )
    with pytest.raises(DatasetError, match=message):
        read_idx_labels(path)
