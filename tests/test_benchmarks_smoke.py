"""The benchmark suite's quick mode runs end to end, so ``python -m benchmarks`` never rots.

Nothing here looks at a time: only that every case ran, that bnnet and
PyTorch agreed on every case (the suite's own checks), that the report has
its sections, and that ``import bnnet`` left numba alone. About 15 s (it
starts worker processes that import PyTorch).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


def _environment() -> dict:
    source = str(REPO_ROOT / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


def test_quick_suite_runs_and_every_case_agrees_with_pytorch(tmp_path, torch):
    report, raw = tmp_path / "benchmarks.md", tmp_path / "raw.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--output", str(report), "--json", str(raw)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=_environment(), timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    text = report.read_text()
    for heading in ("## Against the targets", "### 1. Batch-norm kernel", "### 2. Training step",
                    "### 3. Single-example inference", "## 4. Whole jobs", "## Method"):
        assert heading in text
    results = json.loads(raw.read_text())
    rows = [row for workers in results["workers"].values() for worker in workers for row in worker["rows"]]
    assert {row["group"] for row in rows} == {"kernel", "step", "inference"}
    assert all(row["check"] == "ok" for row in rows), [row["check"] for row in rows]
    assert all(row["bnnet"]["seconds"] > 0 and row["torch"]["seconds"] > 0 for row in rows)
    assert results["jobs"]["import"]["bnnet"]["numba_imported"] is False


def test_worker_refuses_a_mismatched_thread_environment(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from benchmarks import worker

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with pytest.raises(SystemExit, match=r"benchmarks.worker expected OMP_NUM_THREADS.* = 1 in the environment"):
        worker.main(["--threads", "1"])


def test_streaming_rows_study_kernels_write_twice_the_source():
    """The study's two kernels (``python -m benchmarks.streaming_rows``) compute the same rows at any start."""
    import numpy as np

    pytest.importorskip("numba")
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from benchmarks.streaming_rows import _kernels
    finally:
        sys.path.remove(str(REPO_ROOT))
    source = np.random.default_rng(0).random(100 * 128, dtype=np.float32)
    for width in (100, 128):
        for offset in (0, 16, 48):
            raw = np.empty(source.nbytes + 128, np.uint8)
            for name, kernel in _kernels().items():
                target = raw[-raw.ctypes.data % 64 + offset:][:source.nbytes].view(np.float32)
                target[:] = -1.0
                kernel(source, target, width)
                np.testing.assert_array_equal(target, 2 * source, err_msg=f"{name}, rows of {width}, offset {offset}")
