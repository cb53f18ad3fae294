"""Helpers shared by the data tests: an independent IDX writer and a fake MNIST directory.

The writer is written from the IDX format description with `struct`, not with
bnnet's reader, so the round-trip tests check the reader against a second
implementation.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
from pathlib import Path

import numpy as np

# numpy dtype -> IDX type code.
IDX_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}

MNIST_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX: magic, big-endian uint32 dims, big-endian items."""
    code = IDX_TYPE_CODES[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_bytes(path: Path, content: bytes, *, compress: bool) -> Path:
    """Write ``content`` to ``path``, gzip-compressed if ``compress``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


def write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed if ``compress``."""
    return write_bytes(path, idx_bytes(array), compress=compress)


def write_fake_mnist(
    directory: Path,
    rng: np.random.Generator,
    *,
    train_count: int = 50,
    test_count: int = 20,
    compress: bool = True,
) -> dict[str, np.ndarray]:
    """Write the four MNIST files with random 28x28 images into ``directory``.

    Returns:
        The arrays written, keyed like `MNIST_STEMS`.
    """
    arrays = {
        "train_images": rng.integers(0, 256, size=(train_count, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=train_count, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(test_count, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=test_count, dtype=np.uint8),
    }
    # Make sure 0 and 255 occur, so the [0, 1] end points are exercised.
    arrays["train_images"][0, 0, :2] = (0, 255)
    for role, array in arrays.items():
        name = MNIST_STEMS[role] + (".gz" if compress else "")
        write_idx(directory / name, array, compress=compress)
    return arrays


def shared_data_candidates() -> list[Path]:
    """Where the real MNIST data may be: ``$BNNET_DATA_DIR`` if set, then ``<repo>/../shared/data``."""
    from_environment = os.environ.get("BNNET_DATA_DIR", "").strip()
    candidates = [Path(from_environment).expanduser()] if from_environment else []
    return candidates + [Path(__file__).resolve().parents[1].parent / "shared" / "data"]


def shared_data_dir() -> Path | None:
    """The first of `shared_data_candidates` holding both dataset folders, else None."""
    for candidate in shared_data_candidates():
        if (candidate / "mnist").is_dir() and (candidate / "fashion-mnist").is_dir():
            return candidate
    return None


def readme_md5_table(data_dir: Path) -> dict[str, str]:
    """Parse ``relative/path -> md5`` from the table in ``data_dir/README.md``."""
    text = (data_dir / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|.*\|\s*`([0-9a-f]{32})`\s*\|\s*$", text, re.MULTILINE)
    return dict(rows)
