"""Save and load models without pickle: one ``.npz`` of arrays plus a JSON description.

Layout of the file (a NumPy ``.npz``, i.e. a zip of ``.npy`` arrays):

- ``__meta__``: UTF-8 JSON as a uint8 array: format name and version, the
  model's architecture (layer types and constructor arguments), the optimizer's
  name, hyperparameters and step count, and free-form config/metadata;
- ``param:<name>``, ``buffer:<name>``: every parameter and buffer of the model;
- ``optim:<param>/<slot>``: the optimizer's per-parameter state.

Loading reads arrays with ``allow_pickle=False`` and rebuilds layers from a
fixed registry of types, so a model file can never execute code. Writing goes
to a temporary file in the same directory, flushed to disk, then renamed over
the target, so a crash mid-write never leaves a half-written model behind.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .nn.module import Module
from .nn.registry import build_layer
from .optim import OPTIMIZERS
from .optim.base import Optimizer

FORMAT = "bnnet-model"
VERSION = 1


class CheckpointError(ValueError):
    """A model file is missing, not a bnnet model, or inconsistent."""


@dataclass
class Checkpoint:
    model: Module
    optimizer: Optimizer | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def save(
    path: str | os.PathLike,
    model: Module,
    *,
    optimizer: Optimizer | None = None,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write model (and optimizer state) to ``path`` atomically; returns the path."""
    path = Path(path)
    arrays = {f"param:{k}": v for k, v in model.parameters().items()}
    arrays.update({f"buffer:{k}": v for k, v in model.named_buffers().items()})
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"type": type(model).__name__, **model.config()},
        "config": config or {},
        "metadata": metadata or {},
        "optimizer": None,
    }
    if optimizer is not None:
        name = next((k for k, cls in OPTIMIZERS.items() if type(optimizer) is cls), None)
        if name is None:
            raise CheckpointError(f"cannot save optimizer of unknown type {type(optimizer).__name__}")
        meta["optimizer"] = {"name": name, "hyperparameters": optimizer.hyperparameters(), "steps": optimizer.steps}
        arrays.update({f"optim:{k}": v for k, v in optimizer.state_arrays().items()})
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _write_atomically(path, arrays)
    return path


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CheckpointError(f"cannot save model to {path}: directory {directory} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a model file written by :func:`save`; never executes code from it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise CheckpointError(
            f"{path} is not a bnnet model file (expected a .npz written by bnnet save): {error}"
        ) from None
    if "__meta__" not in arrays:
        raise CheckpointError(f"{path} is a .npz but not a bnnet model file: it has no __meta__ entry")
    meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: expected format {FORMAT} version {VERSION}, got {meta.get('format')} version {meta.get('version')}"
        )
    model = build_layer(meta["model"])
    _fill(path, "param", model.parameters(), arrays)
    _fill(path, "buffer", model.named_buffers(), arrays)
    optimizer = None
    if meta.get("optimizer"):
        spec = meta["optimizer"]
        optimizer = OPTIMIZERS[spec["name"]](model.parameters(), **spec["hyperparameters"])
        prefix = "optim:"
        optimizer.load_state(spec["steps"], {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
    return Checkpoint(model=model, optimizer=optimizer, config=meta.get("config", {}), metadata=meta.get("metadata", {}))


def _fill(path: Path, kind: str, targets: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    for name, target in targets.items():
        key = f"{kind}:{name}"
        if key not in arrays:
            raise CheckpointError(f"{path}: missing {kind} {name!r}")
        value = arrays[key]
        if value.shape != target.shape or value.dtype != target.dtype:
            raise CheckpointError(
                f"{path}: {kind} {name!r} expected shape {target.shape} and dtype {target.dtype}, "
                f"got shape {value.shape} and dtype {value.dtype}"
            )
        target[...] = value
