"""``python -m benchmarks.streaming_rows``: when do streaming stores pay? A study, not a case.

Writes 2 * x to a 64 MB float32 array a row at a time, for several row
lengths and start offsets within a cache line, two ways:

- ``streamed``: each row computed into an L1 scratch and written with
  ``bnnet.fast.streaming.stream_copy`` (non-temporal stores for whole lines);
- ``plain``: ordinary stores.

On the machine of docs/benchmarks.md (AMD EPYC, Zen 4 flags) streaming won
only when every row was whole cache lines (3.0 ms against 3.9 ms plain) and
lost badly otherwise (400-byte rows 10.2 ms against 4.1 ms, 1 KB rows starting
48 bytes into a line 9.5 ms against 3.0 ms aligned). That is why the kernels
stream only rows of whole lines from 64-byte aligned buffers
(``streaming.whole_lines``, ``buffers._aligned_empty``). Variants are run in
turn, 5 rounds, and the median is printed.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

WIDTHS = (100, 128, 256, 1024)  # float32 values per row
OFFSETS = (0, 16, 48)  # bytes past a cache line where the array starts
SIZE = 16 * 2**20  # float32 values: 64 MB


def _kernels():
    import numba

    from bnnet.fast.streaming import store_fence, stream_copy

    @numba.njit(error_model="numpy")
    def streamed(src, dst, width):
        scratch = np.empty(width, dst.dtype)
        for i in range(dst.shape[0] // width):
            for j in range(width):
                scratch[j] = src[i * width + j] * np.float32(2)
            stream_copy(scratch, dst, i * width)
        store_fence()

    @numba.njit(error_model="numpy")
    def plain(src, dst, width):
        for i in range(dst.shape[0] // width):
            for j in range(width):
                dst[i * width + j] = src[i * width + j] * np.float32(2)

    return {"streamed": streamed, "plain": plain}


def _array_at(offset: int) -> np.ndarray:
    raw = np.empty(SIZE * 4 + 128, np.uint8)
    start = -raw.ctypes.data % 64 + offset
    array = raw[start:start + SIZE * 4].view(np.float32)
    array[:] = 0.0  # touch every page before timing
    return array


def main() -> None:
    kernels = _kernels()
    source = np.random.default_rng(0).random(SIZE, dtype=np.float32)
    print("| row (floats) | start offset (bytes) | streamed (ms) | plain (ms) |")
    print("|---:|---:|---:|---:|")
    for width in WIDTHS:
        for offset in OFFSETS:
            target = _array_at(offset)
            times: dict[str, list[float]] = {name: [] for name in kernels}
            for kernel in kernels.values():
                kernel(source, target, width)  # compile and warm up
            for _ in range(5):
                for name, kernel in kernels.items():
                    started = time.perf_counter()
                    kernel(source, target, width)
                    times[name].append(time.perf_counter() - started)
            medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
            print(f"| {width} | {offset} | {medians['streamed']:.1f} | {medians['plain']:.1f} |")


if __name__ == "__main__":
    main()
