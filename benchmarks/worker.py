"""One benchmark process at a fixed thread count: ``python -m benchmarks.worker --threads N``.

The thread count must be fixed before NumPy, numba and PyTorch start their
thread pools, so ``benchmarks.__main__`` runs this module in a fresh process
with OMP/MKL/OpenBLAS/NUMBA_NUM_THREADS set, and it sets PyTorch's count too.
It prints one JSON object: the machine facts it measured and the result rows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def thread_environment(threads: int) -> dict[str, str]:
    """os.environ with every thread-pool size set to ``threads``.

    OpenMP threads (PyTorch's, and numba's pool) are told to sleep when idle
    instead of spinning: both runtimes share one process, sampled in turn, and
    on a small shared machine the idle spinning of one steals the cores the
    other is timed on (measured here: 100x slowdowns of either at 2 threads).
    """
    environment = dict(os.environ)
    environment.update({name: str(threads) for name in THREAD_VARIABLES})
    environment["OMP_WAIT_POLICY"] = "PASSIVE"
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per case")
    parser.add_argument("--no-reference", action="store_true", help="skip the NumPy reference columns")
    args = parser.parse_args(argv)
    wrong = {name: os.environ.get(name) for name in THREAD_VARIABLES if os.environ.get(name) != str(args.threads)}
    if wrong:
        raise SystemExit(f"benchmarks.worker expected {', '.join(wrong)} = {args.threads} in the environment, "
                         f"got {wrong}; run it through `python -m benchmarks`")

    import numpy as np
    import torch

    import bnnet
    import bnnet.fast

    torch.set_num_threads(args.threads)
    from . import cases_inference, cases_kernel, cases_step
    from .timing import copy_bandwidth

    started = time.perf_counter()
    engine = bnnet.fast.engine()
    numba_threads = None
    if engine == "fast":
        import numba

        numba_threads = numba.get_num_threads()
    with_reference = not args.no_reference
    rows = []
    rows += cases_kernel.run(torch, args.quick, args.budget, with_reference)
    rows += cases_step.run(torch, args.quick, args.budget, with_reference)
    rows += cases_inference.run(torch, args.quick, args.budget, args.threads)
    result = {
        "threads": args.threads, "engine": engine, "numba_threads": numba_threads,
        "torch_threads": torch.get_num_threads(),
        "copy_bandwidth": copy_bandwidth(32 if args.quick else 256, args.budget),
        "numpy": np.__version__, "torch": torch.__version__, "bnnet": bnnet.__version__,
        "seconds": time.perf_counter() - started, "rows": rows,
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
