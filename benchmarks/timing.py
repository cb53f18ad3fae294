"""Timing that stays fair on a busy machine: candidates sampled in turn, medians, warm-up first.

Each sample times ``number`` back-to-back calls (enough that one sample lasts
at least ``SAMPLE_SECONDS``) and divides. Two milliseconds, so that a short
call is timed as it runs in a loop (a training loop runs its steps back to
back), not only straight after the other candidate's call has pushed its data
and code out of the caches: with 0.2 ms samples a 0.5 ms training step was
timed one call at a time, every call cold, which added about 80 microseconds to
bnnet's batch-60 step and to PyTorch's alike. The first call of each sample
still starts cold, and calls longer than 2 ms are still timed one at a time.
The candidates of a case are sampled alternately (A, B, A, B, ...), so a burst
of load from other processes hits them alike; the reported figure is the
median sample. Thread CPU time is recorded too: at one thread it excludes the
time the process spent descheduled, so it repeats better on a shared machine.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

SAMPLE_SECONDS = 2e-3  # minimum length of one sample


@dataclass
class Timing:
    """Seconds per call: the median over samples (wall clock and this thread's CPU time)."""

    seconds: float
    cpu_seconds: float
    samples: int
    number: int  # calls per sample


def _calls_per_sample(function: Callable[[], object]) -> int:
    started = time.perf_counter()
    function()
    once = max(time.perf_counter() - started, 1e-7)
    return max(1, int(SAMPLE_SECONDS / once))


def compare(candidates: dict[str, Callable[[], object]], budget: float, min_samples: int = 5,
            warmup: int = 3) -> dict[str, Timing]:
    """Time every candidate for about ``budget`` seconds in all, sampling them in turn."""
    for function in candidates.values():
        for _ in range(warmup):
            function()
    numbers = {name: _calls_per_sample(function) for name, function in candidates.items()}
    walls: dict[str, list[float]] = {name: [] for name in candidates}
    cpus: dict[str, list[float]] = {name: [] for name in candidates}
    deadline = time.perf_counter() + budget
    rounds = 0
    while rounds < min_samples or time.perf_counter() < deadline:
        for name, function in candidates.items():
            number = numbers[name]
            cpu_start = time.thread_time()
            start = time.perf_counter()
            for _ in range(number):
                function()
            walls[name].append((time.perf_counter() - start) / number)
            cpus[name].append((time.thread_time() - cpu_start) / number)
        rounds += 1
        if rounds >= 10_000:
            break
    return {name: Timing(statistics.median(walls[name]), statistics.median(cpus[name]), rounds, numbers[name])
            for name in candidates}


def copy_bandwidth(megabytes: int, budget: float) -> float:
    """Bytes moved per second by ``np.copyto`` between two arrays of the given size (read + write)."""
    import numpy as np

    source = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    timing = compare({"copy": lambda: np.copyto(target, source)}, budget, min_samples=5)["copy"]
    return 2 * source.nbytes / timing.seconds
