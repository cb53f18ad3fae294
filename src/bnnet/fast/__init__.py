"""The fast engine: compiled kernels (numba) that compute what :mod:`bnnet.functional` computes.

The readable NumPy functions in :mod:`bnnet.functional` are the reference: they
are what a learner reads, and every test checks the kernels here against them
(forward and gradients, float32 and float64). The kernels only fuse passes and
drop temporaries; results agree with the reference to float rounding.

Which engine runs is decided once, on first use, from the environment variable
``BNNET_ENGINE``:

=============  =================================================================
``auto``       (default) the fast engine if numba imports, else the reference
               engine with a one-line notice on the ``bnnet.fast`` logger
``fast``       the fast engine; an error if numba cannot be imported
``reference``  the NumPy reference engine; numba is never imported
=============  =================================================================

``import bnnet`` never imports numba: layers ask :func:`ops` at call time, and
the first call loads (or, the first time after installation, compiles and
caches) the kernels.

>>> from bnnet import fast
>>> with fast.use_engine("reference"):
...     fast.engine()
'reference'
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
from types import ModuleType
from typing import Iterator

from ..functional import batch_norm as reference_batch_norm

ENGINES = ("auto", "fast", "reference")
ENV_VAR = "BNNET_ENGINE"

logger = logging.getLogger(__name__)

_requested: str | None = None  # None: not decided yet (read BNNET_ENGINE on first use)
_ops: ModuleType | None = None  # the kernel namespace when the fast engine is on
_noticed = False  # the fallback notice is logged once per process


def _check_name(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in ENGINES:
        raise ValueError(
            f"{source} expected one of {', '.join(ENGINES)}, got {name!r}; "
            f"use 'reference' for the NumPy code or 'fast' for the compiled kernels"
        )
    return name


def _load_ops() -> tuple[ModuleType | None, str | None]:
    """(kernel namespace, None), or (None, why numba is unavailable)."""
    try:
        importlib.import_module("numba")
    except Exception as error:  # ImportError, or a broken install (llvmlite mismatch)
        return None, f"{type(error).__name__}: {error}"
    return importlib.import_module("bnnet.fast.compiled"), None


def _activate(requested: str) -> None:
    global _requested, _ops, _noticed
    if requested == "reference":
        _requested, _ops = requested, None
        return
    ops_module, why = _load_ops()
    if ops_module is None:
        if requested == "fast":
            raise RuntimeError(
                f"{ENV_VAR}=fast asked for the compiled engine, but numba cannot be imported ({why}); "
                f"install it with `pip install numba`, or set {ENV_VAR}=reference"
            )
        if not _noticed:
            logger.warning(
                "bnnet: numba is unavailable (%s), so the slower NumPy reference engine runs; "
                "`pip install numba` for the fast one, or set %s=reference to silence this", why, ENV_VAR,
            )
            _noticed = True
    _requested, _ops = requested, ops_module


def ops() -> ModuleType | None:
    """The compiled kernels (:mod:`bnnet.fast.compiled`) when the fast engine is on, else None.

    Layers call this on every forward, so it is one global lookup after the first call.

    Raises:
        ValueError: ``BNNET_ENGINE`` holds an unknown name.
        RuntimeError: ``BNNET_ENGINE=fast`` but numba cannot be imported.
    """
    if _requested is None:
        _activate(_check_name(os.environ.get(ENV_VAR, "auto"), ENV_VAR))
    return _ops


def engine() -> str:
    """``"fast"`` or ``"reference"``: the engine that runs now."""
    return "reference" if ops() is None else "fast"


def set_engine(name: str) -> None:
    """Switch engines for the rest of the process (``"auto"``, ``"fast"`` or ``"reference"``)."""
    _activate(_check_name(name, "set_engine"))


@contextlib.contextmanager
def use_engine(name: str) -> Iterator[None]:
    """Run a block with the given engine, then restore the previous one (tests, benchmarks)."""
    global _requested, _ops
    previous = (_requested, _ops)
    set_engine(name)
    try:
        yield
    finally:
        _requested, _ops = previous


def warm_up(model) -> None:
    """Load (or compile) the kernels a training step of ``model`` uses; nothing on the reference engine.

    :func:`bnnet.training.fit` calls this before it starts its clock, so that
    the one-off start-up (about half a second: LLVM, then each kernel from
    numba's cache) is not counted as training time.
    """
    kernels = ops()
    if kernels is None:
        return
    names = {type(module).__name__ for module in model.modules()}
    for value in model.parameters().values():
        kernels.warm_up(value.dtype, names)
        return


def batch_norm_math() -> ModuleType:
    """The module whose batch-norm functions run now: fast kernels or :mod:`bnnet.functional.batch_norm`.

    Both offer ``batch_norm_forward``, ``batch_norm_backward``,
    ``fixed_statistics_forward`` and ``fixed_statistics_backward`` with the
    same signatures; a forward's cache only goes to the backward returned with it.
    """
    kernels = ops()
    return reference_batch_norm if kernels is None else kernels
