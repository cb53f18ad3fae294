"""``python -m benchmarks.streaming_rows``: when do streaming stores pay? A study, not a case.

Writes 2 * x to a 64 MB float32 array a row at a time, for several row
lengths and start offsets within a cache line, two ways:

- ``streamed``: the whole lines of each row written a line at a time with
  ``bnnet.fast.streaming.line_writer`` (non-temporal stores), the partial
  lines at either end with ordinary stores;
- ``plain``: ordinary stores.

Source and target start at the same offset within a 4 KB page. They must: a
load that partly overlaps, in its address's low 12 bits, a store issued just
before it waits for that store ("4K aliasing"), and a streaming store takes
long to leave. With the target 64 bytes into a page and the source 16, so
that each line's load overlapped the previous line's store, streaming 4 KB
rows took 6.3 ms against 3.3 ms at equal offsets (plain stores: 4.6 ms both).

On the machine of docs/benchmarks.md (AMD EPYC, Zen 4 flags) streaming won
only when every row was whole cache lines (2.9-3.5 ms against 4.0-5.2 ms
plain) and lost otherwise: 400-byte rows 8.8-9.3 ms against 3.7-4.5 ms,
1 KB rows starting 16 bytes into a line 5.8-6.0 ms against 4.0-4.1 ms (4 KB
rows so started: a tie, 3.7-3.9 ms against 3.7-4.1 ms). That is why the kernels
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

    from bnnet.fast.streaming import line_length, line_span, line_writer, store_fence

    write_doubled_line = line_writer(lambda value, two: value * two)

    @numba.njit(error_model="numpy")
    def streamed(src, dst, width):
        two = np.float32(2)
        inputs = (src,)
        parameters = (two,)
        for i in range(dst.shape[0] // width):
            start = i * width
            head, end = line_span(dst, start, width)
            for j in range(start, start + head):  # up to the first line boundary: ordinary stores
                dst[j] = src[j] * two
            for j in range(start + head, start + end, line_length(dst)):
                write_doubled_line(dst, j, inputs, 0, parameters)
            for k in range(start + end, start + width):  # the last partial line: ordinary stores
                dst[k] = src[k] * two
        store_fence()

    @numba.njit(error_model="numpy")
    def plain(src, dst, width):
        for i in range(dst.shape[0] // width):
            for j in range(width):
                dst[i * width + j] = src[i * width + j] * np.float32(2)

    return {"streamed": streamed, "plain": plain}


def _array_at(offset: int) -> np.ndarray:
    """SIZE float32 values starting ``offset`` bytes into a 4 KB page (see the module's note on aliasing)."""
    raw = np.empty(SIZE * 4 + 8192, np.uint8)
    start = -raw.ctypes.data % 4096 + offset
    array = raw[start:start + SIZE * 4].view(np.float32)
    array[:] = 0.0  # touch every page before timing
    return array


def main() -> None:
    kernels = _kernels()
    print("| row (floats) | start offset (bytes) | streamed (ms) | plain (ms) |")
    print("|---:|---:|---:|---:|")
    for width in WIDTHS:
        for offset in OFFSETS:
            source, target = _array_at(offset), _array_at(offset)
            source[:] = np.random.default_rng(0).random(SIZE, dtype=np.float32)
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
