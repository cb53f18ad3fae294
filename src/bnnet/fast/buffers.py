"""Large output arrays, handed out again once nobody holds them: fresh memory is slow.

A new array of a few MB or more comes from the operating system as untouched
pages. The first write to each page faults, and the kernel zeroes the page
before the kernel we wrote can fill it: for a 64 MB batch-norm output that
costs about 5 ms, as much as half the batch-norm forward itself. glibc hands
such blocks back to the system when they are freed (always above 32 MB, and
often below when two large arrays are alive at once), so a training loop, or
any loop calling batch norm on the same shapes, would pay that on every call.
PyTorch's CPU build pays it too.

The pool keeps the large arrays it handed out and gives one out again when its
shape and dtype match and nobody else holds it. CPython's reference count
tells that exactly: a view keeps its base alive by a reference, so a buffer
that any live array still looks into is never reused. Only the compiled
kernels' outputs come from here, and the kernels overwrite every element, so
stale contents never show (the same contract as ``np.empty``).

Memory held is bounded: ``BNNET_BUFFER_POOL_MB`` (default 512; 0 turns the
pool off) caps the bytes the pool keeps, the oldest entries are forgotten first
(an array still in use stays valid: the pool only drops its own reference), and
:func:`release` forgets them all.
"""
from __future__ import annotations

import contextlib
import math
import mmap
import os
import sys
import threading
from typing import Iterator

import numpy as np

ENV_VAR = "BNNET_BUFFER_POOL_MB"
DEFAULT_LIMIT_MB = 512
# Below this, malloc's own free lists reuse memory without page faults, and the
# pool's bookkeeping (about a microsecond) would only add to small kernels.
MIN_BYTES = 1 << 20
# References to a pooled array while the pool inspects it: the pool's list,
# the local variable, and sys.getrefcount's own argument.
_UNUSED_REFCOUNT = 3
# References to its memory's owner (see _aligned_empty): the pooled array's
# ``base`` and sys.getrefcount's argument. A view of the pooled array refers
# to the owner directly (NumPy points every view at the array owning the data).
_UNUSED_OWNER_REFCOUNT = 2
ALIGN_BYTES = 64  # a cache line: rows of whole lines can be streamed out (streaming.py)
PAGE_BYTES = 4096  # arrays are placed at a chosen offset within a page of this size
HUGE_PAGE_BYTES = 2 << 20  # arrays this large get their own mapping, backed by huge pages where possible
_HUGE_PAGES_ADVISABLE = sys.platform.startswith("linux") and hasattr(mmap, "MADV_HUGEPAGE")

_lock = threading.Lock()
_buffers: list[np.ndarray] = []  # oldest first
_page_offsets: list[int] = []  # where each of _buffers starts within its page (ctypes.data costs a microsecond)
_limit_bytes: int | None = None  # read from the environment on first use
_bypass = False  # inside bypassed(): every request gets a fresh array


def _limit() -> int:
    global _limit_bytes
    if _limit_bytes is None:
        text = os.environ.get(ENV_VAR, str(DEFAULT_LIMIT_MB))
        try:
            megabytes = float(text)
        except ValueError:
            raise ValueError(f"{ENV_VAR} expected a number of megabytes (0 turns the pool off), got {text!r}") from None
        if megabytes < 0:
            raise ValueError(f"{ENV_VAR} expected a number of megabytes >= 0, got {text!r}")
        _limit_bytes = int(megabytes * 2**20)
    return _limit_bytes


def set_limit(megabytes: float) -> None:
    """Cap the memory the pool keeps (0 turns it off and forgets every buffer)."""
    global _limit_bytes
    if megabytes < 0:
        raise ValueError(f"set_limit expected megabytes >= 0, got {megabytes}")
    with _lock:
        _limit_bytes = int(megabytes * 2**20)
        _trim(0)


def release() -> None:
    """Forget every pooled buffer (memory no live array uses goes back to the system)."""
    with _lock:
        _buffers.clear()
        _page_offsets.clear()


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """Run a block with fresh arrays from NumPy, leaving the pool as it is (to measure what it saves)."""
    global _bypass
    previous, _bypass = _bypass, True
    try:
        yield
    finally:
        _bypass = previous


def held_bytes() -> int:
    """Bytes the pool refers to now (in use or free)."""
    with _lock:
        return sum(buffer.nbytes for buffer in _buffers)


def _trim(incoming: int) -> None:
    """Drop the oldest entries until ``incoming`` more bytes fit under the limit (lock held)."""
    total = sum(buffer.nbytes for buffer in _buffers) + incoming
    while _buffers and total > _limit_bytes:
        total -= _buffers.pop(0).nbytes
        _page_offsets.pop(0)


def empty(shape: tuple[int, ...], dtype: np.dtype, page_offset: int = 0) -> np.ndarray:
    """An uninitialised C-contiguous array, reused from the pool when one is free.

    Large arrays (MIN_BYTES or more) start ``page_offset`` bytes past a
    PAGE_BYTES boundary (a multiple of the item size; see
    :func:`output_page_offset` for why a kernel's output wants a chosen one).
    The caller must overwrite every element before anyone reads it.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    if _bypass or _limit() == 0:
        return _aligned_empty(shape, dtype, nbytes, page_offset)
    with _lock:
        for index in range(len(_buffers)):  # not enumerate: its tuple would hold one more reference
            buffer = _buffers[index]
            if (buffer.shape == shape and buffer.dtype == dtype and _page_offsets[index] == page_offset
                    and sys.getrefcount(buffer) == _UNUSED_REFCOUNT
                    and sys.getrefcount(buffer.base) == _UNUSED_OWNER_REFCOUNT):
                del _buffers[index], _page_offsets[index]
                _buffers.append(buffer)  # most recently used last: trimmed last
                _page_offsets.append(page_offset)
                return buffer
        if nbytes > _limit_bytes:
            return _aligned_empty(shape, dtype, nbytes, page_offset)
        _trim(nbytes)
        buffer = _aligned_empty(shape, dtype, nbytes, page_offset)
        _buffers.append(buffer)
        _page_offsets.append(page_offset)
        return buffer


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype, nbytes: int, page_offset: int = 0) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting ``page_offset`` bytes past a PAGE_BYTES boundary,
    HUGE_PAGE_BYTES for large arrays where huge pages can be advised (its ``base`` owns the memory).

    malloc puts a large block 16 bytes past a page boundary, so a row that is
    a whole number of cache lines long would still straddle lines, and the
    streaming stores need whole lines (streaming.py): a (4096, 1024) forward
    took 1.6 ms there against 1.2 ms aligned.
    """
    raw = _huge_page_bytes(nbytes + page_offset) if nbytes >= HUGE_PAGE_BYTES else None
    if raw is None:
        raw = _from_boundary(np.empty(nbytes + page_offset + PAGE_BYTES, np.uint8), nbytes + page_offset, PAGE_BYTES)
    return raw[page_offset:].view(dtype).reshape(shape)


def _from_boundary(raw: np.ndarray, nbytes: int, boundary: int) -> np.ndarray:
    """The first ``nbytes`` of the bytes ``raw`` that start on a multiple of ``boundary``."""
    start = -raw.ctypes.data % boundary
    return raw[start:start + nbytes]


def _huge_page_bytes(nbytes: int) -> np.ndarray | None:
    """``nbytes`` of fresh memory on a HUGE_PAGE_BYTES boundary, marked for huge pages; None where unsupported.

    Once PyTorch (or anything) has freed large blocks, glibc serves the next
    ones from its heap: memory already mapped in 4 KB pages, which the
    transparent-huge-page advice NumPy gives its large arrays can no longer
    change. A pass over such an output misses the TLB every 4 KB; from its own
    mapping, advised before the first touch, the kernel backs it with 2 MB
    pages (Linux, where transparent huge pages are "always" or "madvise"). The
    (4096, 1024) forward kernel took 1.56-1.62 ms writing there against
    1.63-1.64 ms writing into heap memory, timed in turn after PyTorch's call.
    The price: 2 MB more address space per array, and, where the array ends
    inside a huge page, the rest of that page resident too.
    """
    if not _HUGE_PAGES_ADVISABLE:
        return None
    try:
        mapping = mmap.mmap(-1, nbytes + HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        mapping.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):  # no memory for the mapping, or advice the kernel refuses
        return None
    # The array keeps the mapping alive; it is unmapped with the array.
    return _from_boundary(np.frombuffer(mapping, np.uint8), nbytes, HUGE_PAGE_BYTES)


def empty_like(array: np.ndarray, page_offset: int = 0) -> np.ndarray:
    """:func:`empty` with ``array``'s shape and dtype (C order)."""
    if array.nbytes < MIN_BYTES:  # the common small case without empty()'s bookkeeping
        return np.empty(array.shape, array.dtype)
    return empty(array.shape, array.dtype, page_offset)


def output_page_offset(source: np.ndarray, same_line_offset: bool) -> int:
    """Where in its page a kernel's output of ``source``'s size should start: half a page from ``source``.

    Within the line: where ``source`` starts (``same_line_offset``; a pass
    streaming the whole array then loads and stores the same lines), or on a
    line boundary (passes streaming rows of whole lines). Half a page apart,
    because a load that shares its address's low 12 bits with a store still
    in flight waits for it ("4K aliasing"), and streaming stores stay in flight
    long. (4096, 1024) float32, normalising pass, 60 rounds in random order:
    with x 16 bytes into a page, y at 16 + 2048 took 0.76-0.85 ms; at 16,
    0.83-0.88; at 2048, 0.81-0.88; at 0, 0.86-0.92.
    """
    start = source.ctypes.data
    line = start % ALIGN_BYTES
    if not same_line_offset or line % source.itemsize:
        line = 0
    return (start - start % ALIGN_BYTES + line + PAGE_BYTES // 2) % PAGE_BYTES
