"""One place for the compiler settings every kernel uses, and the thread policy.

- ``cache=True``: compiled machine code is written next to the sources (or to
  numba's user cache directory when that is read-only), so only the first run
  after installation pays the compile time. numba keys that cache on the
  source file of the compiled function alone: after editing a module whose
  code is compiled into others (the intrinsics of lanes.py, streaming.py,
  line_sums.py, bits.py, or an inlined helper), delete
  ``src/bnnet/fast/__pycache__``, or tests run the old machine code (touching
  the kernel module was not always enough here).
  An installed upgrade replaces every file, so users never meet this.
- ``fastmath=False``: no reassociation, so a kernel's float results are fixed
  by its source order and stay within float rounding of the reference.
- ``error_model="numpy"``: division by zero gives inf/nan as in NumPy, instead
  of Python's ZeroDivisionError check, whose branch stops loops vectorising.
"""
from __future__ import annotations

import numba

jit = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
parallel_jit = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True, parallel=True)
# Fused multiply-add allowed, nothing else: one rounding where the source has
# two, so results can differ by a unit in the last place between CPUs with and
# without FMA. Only for kernels whose contract is an accuracy bound rather than
# the reference's exact roundings (the float32 sigmoid's own exp).
contract_jit = numba.njit(cache=True, fastmath={"contract"}, error_model="numpy", nogil=True)
# Inlined into the caller by numba itself. A call between two compiled functions
# updates the arrays' reference counts with locked instructions, and on x86 a
# locked instruction waits for every streaming store in flight (streaming.py):
# one call per row made a streaming pass five times slower.
inline_jit = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True, inline="always")

# Below this many elements a kernel runs on one thread: starting the thread
# pool costs a few microseconds, more than the work it would share.
PARALLEL_MIN_ELEMENTS = 1 << 18


def use_threads(size: int) -> bool:
    """Whether a kernel over ``size`` elements should use the parallel variant."""
    return size >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1
