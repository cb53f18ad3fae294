"""Optional download of MNIST / Fashion-MNIST, verified against the published MD5s.

Nothing in bnnet calls this: loading never touches the network. A user runs
it once, e.g. ``python -c "from bnnet.data.download import download_mnist;
download_mnist('mnist', 'data')"``, then loads with ``data_dir='data'``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .dataset import DatasetError
from .mnist import MNIST_NAMES

# Tried in order. yann.lecun.com often refuses downloads, hence PyTorch's mirror
# first; Fashion-MNIST's S3 website endpoint serves plain HTTP only, which the
# MD5 check below makes safe against corruption (not against a determined attacker).
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# Published checksums of the .gz files (torchvision; Fashion-MNIST's README).
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

TIMEOUT_SECONDS = 60


def file_md5(path: str | os.PathLike) -> str:
    """Return the hex MD5 of a file, read in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        32 lowercase hex digits.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_mnist(name: str, data_dir: str | os.PathLike) -> Path:
    """Download the four files of ``name`` into ``data_dir/<name>/`` and verify them.

    Files already present with the right MD5 are kept. Each download goes to a
    ``.part`` file that is renamed only after its MD5 matches, so an
    interrupted run never leaves a file that looks complete.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: Parent directory; created if needed.

    Returns:
        The directory holding the files, ``data_dir/<name>``; pass ``data_dir``
        to `load_dataset`.

    Raises:
        DatasetError: For an unknown name, or when no mirror delivers a file
            with the published MD5 (the message lists each attempt).
    """
    # Imported here: urllib is only needed by this opt-in function.
    import urllib.error
    import urllib.request

    if name not in MNIST_NAMES:
        raise DatasetError(f"expected a name in {MNIST_NAMES}, received {name!r}")
    target = Path(data_dir).expanduser() / name
    target.mkdir(parents=True, exist_ok=True)
    for file_name, expected_md5 in MD5[name].items():
        destination = target / file_name
        if destination.is_file() and file_md5(destination) == expected_md5:
            continue
        partial = destination.with_name(destination.name + ".part")
        failures = []
        for mirror in MIRRORS[name]:
            url = mirror + file_name
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                        open(partial, "wb") as file:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        file.write(chunk)
            except (urllib.error.URLError, OSError) as error:
                failures.append(f"{url}: {error}")
                continue
            received_md5 = file_md5(partial)
            if received_md5 == expected_md5:
                os.replace(partial, destination)
                break
            failures.append(f"{url}: expected MD5 {expected_md5}, received {received_md5}")
        else:
            partial.unlink(missing_ok=True)
            raise DatasetError(
                f"{name}: could not download {file_name} with MD5 {expected_md5}; tried:\n  "
                + "\n  ".join(failures)
                + f"\nhelp: download it by hand into {str(target)!r}"
            )
    return target
