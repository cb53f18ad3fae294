"""Case 4: whole jobs, each in fresh processes at one thread.

- ``import bnnet`` against ``import torch``: seconds and peak resident memory
  after the import (median of several fresh interpreters).
- One epoch of MNIST for the paper's network: the ``seconds`` that
  ``bnnet train --json`` reports (the training loop), against the same loop in
  PyTorch (:mod:`benchmarks.torch_epoch`).
- The Figure-1 experiment (``bnnet experiment fig1``: two networks, 50,000
  steps each at batch 60), wall-clock seconds.
- Compile time of the fast engine: a first step with an empty numba cache
  (compiles), then the same with the cache filled (loads).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .worker import thread_environment

REPO = Path(__file__).resolve().parents[1]
IMPORT_PROBE = (
    "import time, sys, resource, json; started = time.perf_counter(); import {module}; "
    "seconds = time.perf_counter() - started; "
    "print(json.dumps({{'seconds': seconds, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
    "'numba_imported': 'numba' in sys.modules}}))"
)
FIRST_STEP = (
    "import time; started = time.perf_counter(); import numpy as np, bnnet; "
    "model = bnnet.mlp([784, 100, 100, 100, 10], activation='sigmoid'); loss = bnnet.SoftmaxCrossEntropy(); "
    "opt = bnnet.SGD(model.parameters(), lr=0.1, momentum=0.9); x = np.zeros((60, 784), np.float32); "
    "y = np.arange(60) % 10; loss.forward(model.forward(x), y); model.backward(loss.backward()); "
    "opt.step(model.gradients()); model.predict(x[0]); print(time.perf_counter() - started)"
)


def _python(code_or_args, env: dict | None = None, timeout: float = 900) -> str:
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    environment = thread_environment(1) if env is None else env
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO),
                                                              environment.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment,
                          cwd=REPO, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:120]} failed with exit {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def import_cost(module: str, repeats: int) -> dict:
    runs = [json.loads(_python(IMPORT_PROBE.format(module=module)).strip().splitlines()[-1]) for _ in range(repeats)]
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "numba_imported": any(r["numba_imported"] for r in runs)}


def compile_time() -> dict:
    """First step of the paper network with an empty numba cache, then with it filled."""
    with tempfile.TemporaryDirectory() as cache:
        env = thread_environment(1)
        env["NUMBA_CACHE_DIR"] = cache
        first = float(_python(FIRST_STEP, env).strip().splitlines()[-1])
        later = statistics.median(float(_python(FIRST_STEP, env).strip().splitlines()[-1]) for _ in range(3))
    env = thread_environment(1)
    env["BNNET_ENGINE"] = "reference"
    reference = statistics.median(float(_python(FIRST_STEP, env).strip().splitlines()[-1]) for _ in range(3))
    return {"first_run_seconds": first, "cached_run_seconds": later, "reference_run_seconds": reference}


def epoch(quick: bool, data_dir: str | None) -> dict:
    """One epoch of the paper network: ``bnnet train --json`` against the PyTorch loop."""
    data = ["--dataset", "digits"] if quick or data_dir is None else ["--dataset", "mnist", "--data-dir", data_dir]
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        ours = json.loads(_python(["-m", "bnnet", "train", *data, "--activation", "sigmoid", "--hidden", "100,100,100",
                                   "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--batch-size", "60",
                                   "--epochs", "1", "--lr-schedule", "constant", "--val-fraction", "0",
                                   "--no-progress", "--json", "--out", str(Path(directory) / "model.npz")]
                                  ).strip().splitlines()[-1])
        ours["process_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    theirs = json.loads(_python(["-m", "benchmarks.torch_epoch", *data]).strip().splitlines()[-1])
    theirs["process_seconds"] = time.perf_counter() - started
    gap = abs(ours["test_accuracy"] - theirs["test_accuracy"])
    check = "ok" if gap < 0.03 else f"MISMATCH: test accuracy {ours['test_accuracy']:.4f} vs {theirs['test_accuracy']:.4f}"
    return {"dataset": data[1], "check": check, "torch": theirs,
            "bnnet": {key: ours[key] for key in ("seconds", "test_accuracy", "process_seconds")}}


def figure1(quick: bool, data_dir: str | None) -> dict:
    """Wall-clock seconds of ``bnnet experiment fig1`` (in quick mode a 200-step stand-in)."""
    steps = 200 if quick or data_dir is None else 50_000
    data = ["--dataset", "digits"] if quick or data_dir is None else ["--dataset", "mnist", "--data-dir", data_dir]
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        summary = json.loads(_python(["-m", "bnnet", "experiment", "fig1", *data, "--steps", str(steps),
                                      "--out-dir", directory, "--no-plot", "--no-progress", "--json"]
                                     ).strip().splitlines()[-1])
        wall = time.perf_counter() - started
    return {"steps": steps, "dataset": data[1], "wall_seconds": wall, "reported_seconds": summary.get("seconds"),
            "final_test_accuracy": summary.get("final_test_accuracy")}


def run(quick: bool, data_dir: str | None) -> dict:
    repeats = 2 if quick else 5
    result = {"import": {"bnnet": import_cost("bnnet", repeats), "torch": import_cost("torch", repeats)},
              "epoch": epoch(quick, data_dir), "figure1": figure1(quick, data_dir)}
    if not quick:
        result["compile"] = compile_time()
    return result
