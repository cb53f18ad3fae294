"""``python -m benchmarks``: bnnet against PyTorch (and onnxruntime) on this machine's CPU.

Runs each thread count in fresh worker processes (thread pools are sized at
start-up), then the whole-job measurements, prints the Markdown report and,
with ``--output``, writes it (``--output docs/benchmarks.md`` regenerates the
whole page). ``--quick`` shrinks every case so that the suite runs in seconds;
the test suite runs it so the benchmarks never rot (it checks results, never
times). The exit status is 1 if bnnet and PyTorch disagreed on any case.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from . import jobs, report
from .worker import thread_environment

REPO = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny cases, one process, no timing value (CI)")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default: 1 2)")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes per thread count (default: 2 at 1 thread, 3 at more; quick: 1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timing per case (default 1.5; quick 0.02)")
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: $BNNET_DATA_DIR or ../shared/data)")
    parser.add_argument("--skip-jobs", action="store_true", help="leave out the whole-job measurements")
    parser.add_argument("--no-reference", action="store_true", help="leave out the NumPy reference columns")
    parser.add_argument("--output", default=None, help="write the Markdown report here")
    parser.add_argument("--json", default=None, help="write the raw results here")
    return parser


def _data_dir(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("BNNET_DATA_DIR"), str(REPO.parent / "shared" / "data")):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return candidate
    return None


def _worker(threads: int, quick: bool, budget: float, no_reference: bool) -> dict:
    environment = thread_environment(threads)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO),
                                                              environment.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks.worker", "--threads", str(threads), "--budget", str(budget)]
    command += ["--quick"] * quick + ["--no-reference"] * no_reference
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker at {threads} thread(s) failed with exit {done.returncode}:\n"
                         f"{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _versions() -> str:
    names = {}
    for module in ("numpy", "torch", "numba", "onnxruntime", "onnx"):
        try:
            names[module] = __import__(module).__version__
        except ImportError:
            names[module] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO)
    revision = (commit.stdout.strip() or "unknown") + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return (f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in names.items())
            + f"; bnnet at git {revision}")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    thread_counts = args.threads or ([1] if args.quick else [1, 2])
    budget = args.budget if args.budget is not None else (0.02 if args.quick else 1.5)
    load_before = _load()
    by_threads: dict[int, list[dict]] = {}
    for threads in thread_counts:
        processes = args.processes or (1 if args.quick else (2 if threads == 1 else 3))
        by_threads[threads] = [_worker(threads, args.quick, budget, args.no_reference) for _ in range(processes)]
        print(f"... {threads} thread(s): {processes} process(es) done", file=sys.stderr)
    job_results = None if args.skip_jobs else jobs.run(args.quick, _data_dir(args.data_dir))
    first = next(iter(by_threads.values()))[0]
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    meta = {
        "command": command.strip(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": [f"CPU: {_cpu()}, {os.cpu_count()} logical cores visible", _versions(),
                    f"engine: {first['engine']} (BNNET_ENGINE={os.environ.get('BNNET_ENGINE', 'auto')})",
                    f"load average (1 / 5 / 15 min) before the run: {load_before}; after: {_load()}",
                    "quick mode: tiny shapes and budgets, the figures say nothing about speed" if args.quick else
                    f"timing budget per case: {budget} s"],
        "method": [
            "Each thread count runs in fresh processes with OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS "
            "and NUMBA_NUM_THREADS set, and `torch.set_num_threads`; onnxruntime gets the same intra-op count. "
            "OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep rather than spin, since PyTorch and bnnet share "
            "the process and the machine.",
            "Before timing, every case checks that bnnet and PyTorch compute the same result (the `check` column).",
            "A sample is at least 2 ms of back-to-back calls of one candidate, then the other candidate's sample "
            "follows: a short call is timed as it runs in a loop, the first call of each sample starting with "
            "the caches the other candidate left. (With 0.2 ms samples, until git 79b0c04, a training step "
            "at batch 60 was timed one call at a time, every call cold: about 80 us more for both runtimes, "
            "and a ratio of 1.88 instead of 2.03 at git 5cb0483.)",
            "The NumPy reference column runs the readable functions in `bnnet.functional` (`BNNET_ENGINE=reference`); "
            "it is timed in a round of its own after bnnet and PyTorch, so that its allocations do not slow either.",
            "At 2 threads NumPy's OpenBLAS splits even the small matrix products of a training step between "
            "both threads and then waits for both: on a 2-core machine where other processes hold a core, "
            "bnnet's step can take many times its 1-thread time (PyTorch's runtime suffers less). bnnet's own "
            "kernels use threads only for arrays of 2^18 elements or more.",
            "Ratios differ between processes mostly through load from other work on the machine; the medians of "
            "several processes are shown with their range. Figures from a busy machine understate both runtimes' "
            "speed, and the ratios of long cases most.",
        ],
    }
    text = report.render(meta, by_threads, job_results)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "workers": by_threads, "jobs": job_results}, indent=1))
    checks = [row["check"] for workers in by_threads.values() for w in workers for row in w["rows"]]
    if job_results and not args.quick:
        checks.append(job_results["epoch"]["check"])
    failed = [c for c in checks if c != "ok"]
    if failed:
        print(f"bnnet and PyTorch disagreed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
