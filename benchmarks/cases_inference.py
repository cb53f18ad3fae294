"""Case 3: single-example inference in eval mode.

bnnet: ``model.predict(x)`` for one example of shape (784,), and the same for
the model with batch norm folded into the Linear layers
(``bnnet.toolbox.fold.fold_batch_norm``, when that module exists).
PyTorch eager: ``model(x[None])`` under ``torch.inference_mode()``.
onnxruntime: ``InferenceSession.run`` on the PyTorch model exported with
``torch.onnx.export`` (when onnxruntime is installed: ``pip install -e .[bench]``).
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings

import numpy as np

import bnnet

from .networks import assert_close, bnnet_network, torch_twin
from .timing import compare


def _trained_statistics(model: bnnet.Sequential) -> None:
    """A few training forwards so the running statistics are not the initial 0 and 1."""
    rng = np.random.default_rng(1)
    for _ in range(5):
        model.forward(rng.random((60, 784), dtype=np.float32))


def _folded(model):
    if importlib.util.find_spec("bnnet.toolbox.fold") is None:
        return None
    from bnnet.toolbox.fold import fold_batch_norm

    was_training = model.training
    try:
        return fold_batch_norm(model.eval())
    finally:
        model.train(was_training)


def _onnx_session(twin, torch, threads: int, directory: str):
    if importlib.util.find_spec("onnxruntime") is None:
        return None, "onnxruntime not installed (pip install -e .[bench])"
    import onnxruntime

    path = os.path.join(directory, "paper_network.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices are not ours to act on
        torch.onnx.export(twin, (torch.zeros(1, 784),), path, input_names=["x"], output_names=["y"],
                          dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session, None


def run(torch, quick: bool, budget: float, threads: int) -> list[dict]:
    model = bnnet_network()
    _trained_statistics(model)
    twin = torch_twin(model, torch).eval()
    example = np.random.default_rng(2).random(784, dtype=np.float32)
    batch_of_one = torch.from_numpy(example[None, :])

    def torch_eager():
        with torch.inference_mode():
            return twin(batch_of_one)

    expected = torch_eager().numpy()[0]
    candidates = {"bnnet": lambda: model.predict(example), "torch": torch_eager}
    checks = {"bnnet": _agrees(candidates["bnnet"](), expected)}
    folded = _folded(model)
    if folded is not None:
        candidates["bnnet_folded"] = lambda: folded.predict(example)
        checks["bnnet_folded"] = _agrees(candidates["bnnet_folded"](), expected)
    with tempfile.TemporaryDirectory() as directory:
        session, why_not = _onnx_session(twin, torch, threads, directory)
        if session is not None:
            feed = {"x": example[None, :]}
            candidates["onnxruntime"] = lambda: session.run(None, feed)
            checks["onnxruntime"] = _agrees(session.run(None, feed)[0][0], expected)
        timings = compare(candidates, budget)
    bad = [f"{name}: {check}" for name, check in checks.items() if check != "ok"]
    return [{"group": "inference", "case": "single example, eval mode", "check": "; ".join(bad) or "ok",
             "folded_available": folded is not None, "onnxruntime_missing": why_not,
             **{name: vars(t) for name, t in timings.items()}}]


def _agrees(ours, expected) -> str:
    try:
        assert_close(ours, expected, "output")
    except AssertionError as error:
        return f"MISMATCH: {str(error).strip().splitlines()[0]}"
    return "ok"
