"""Shared test fixtures: seeded randomness, the shared data directory, and PyTorch as an oracle.

PyTorch parity tests must run in CI, never be skipped: the ``torch`` fixture
fails when PyTorch is missing, unless BNNET_ALLOW_NO_TORCH=1 is set (for a
quick local run without the test extras).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch():
    try:
        import torch as torch_module
    except ImportError:
        if os.environ.get("BNNET_ALLOW_NO_TORCH") == "1":
            pytest.skip("PyTorch not installed and BNNET_ALLOW_NO_TORCH=1")
        pytest.fail("PyTorch parity tests need torch (pip install -e '.[test]'); they must not be skipped")
    torch_module.set_num_threads(1)
    return torch_module


def shared_data_dir() -> Path | None:
    """The read-only MNIST/Fashion-MNIST directory: $BNNET_DATA_DIR, else <repo>/../shared/data."""
    candidates = [os.environ.get("BNNET_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("MNIST files not found in $BNNET_DATA_DIR or ../shared/data")
    return found


_skipped_torch_tests: list[str] = []


def pytest_collection_modifyitems(items):
    """Every test that uses the torch fixture is a parity test: mark it `torch`."""
    for item in items:
        if "torch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.torch)


def pytest_runtest_logreport(report):
    if report.skipped and "torch" in report.keywords:
        _skipped_torch_tests.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """CI must prove parity with PyTorch: a skipped parity test fails the run."""
    if _skipped_torch_tests and os.environ.get("BNNET_ALLOW_NO_TORCH") != "1":
        print(f"\n{len(_skipped_torch_tests)} PyTorch parity test(s) were skipped; they must run:")
        for nodeid in _skipped_torch_tests[:20]:
            print(f"  {nodeid}")
        session.exitstatus = 1
