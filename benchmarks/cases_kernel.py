"""Case 1: the batch-norm kernel, float32 training mode, forward and forward+backward.

bnnet runs the functions its BatchNorm layer calls (``bnnet.fast.batch_norm_math()``:
the compiled kernels on the fast engine); PyTorch runs
``torch.nn.functional.batch_norm(training=True)`` without running statistics,
and its backward through autograd (``torch.autograd.grad`` of dx, dgamma, dbeta).
Outputs of 1 MB or more come from bnnet's buffer pool (``bnnet.fast.buffers``);
the "fresh" candidate times the same call with new arrays from NumPy, to show
what the pool saves (page faults on memory the system hands out anew).
bnnet and PyTorch are sampled in turn; the NumPy reference and "fresh" are
timed in a second round, so that their memory churn does not land on either.
Bandwidth counts the bytes the operation must move at least: forward reads x
and writes y (8 bytes per element); forward+backward also reads dy and x and
writes dx (20 bytes per element).
"""
from __future__ import annotations

import numpy as np

import bnnet.fast
from bnnet.fast import buffers
from bnnet.functional import batch_norm as reference

from .networks import assert_close
from .timing import compare

FULL_SHAPES = [(60, 100), (256, 1024), (4096, 1024), (65536, 256), (64, 64, 32, 32)]
QUICK_SHAPES = [(60, 100), (256, 64), (4, 8, 8, 8)]
LARGE_ELEMENTS = 4 * 2**20  # shapes with at least this many elements are "large" (bandwidth target)
EPS = 1e-5
BYTES_PER_ELEMENT = {"forward": 8, "forward+backward": 20}


def run(torch, quick: bool, budget: float, with_reference: bool = True) -> list[dict]:
    rows = []
    engine = bnnet.fast.batch_norm_math()
    functional = torch.nn.functional
    for shape in QUICK_SHAPES if quick else FULL_SHAPES:
        rng = np.random.default_rng(0)
        channels = shape[1]
        x = rng.normal(0.5, 2.0, size=shape).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        gamma = rng.normal(1.0, 0.1, size=channels).astype(np.float32)
        beta = rng.normal(0.0, 0.1, size=channels).astype(np.float32)
        tx, tdy, tgamma, tbeta = (torch.from_numpy(a) for a in (x, dy, gamma, beta))
        gx, ggamma, gbeta = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, gamma, beta))

        def torch_forward():
            with torch.no_grad():
                return functional.batch_norm(tx, None, None, tgamma, tbeta, True, 0.1, EPS)

        def torch_forward_backward():
            y = functional.batch_norm(gx, None, None, ggamma, gbeta, True, 0.1, EPS)
            return torch.autograd.grad(y, (gx, ggamma, gbeta), tdy)

        def ours_forward(math=engine):
            return math.batch_norm_forward(x, gamma, beta, EPS)[0]

        def ours_forward_backward(math=engine):
            y, cache = math.batch_norm_forward(x, gamma, beta, EPS)
            return math.batch_norm_backward(dy, cache)

        def fresh_outputs(function):
            with buffers.bypassed():
                return function()

        check = _check(ours_forward(), ours_forward_backward(), torch_forward(), torch_forward_backward())
        size = int(np.prod(shape))
        for mode, ours, theirs in (("forward", ours_forward, torch_forward),
                                   ("forward+backward", ours_forward_backward, torch_forward_backward)):
            timings = compare({"bnnet": ours, "torch": theirs}, budget)
            # The extras are timed apart: the reference and fresh arrays churn memory (page faults,
            # dirty cache lines), which would slow whichever candidate ran next.
            extras = {}
            if with_reference:
                extras["reference"] = (lambda f=ours: f(reference))
            if size * x.itemsize >= buffers.MIN_BYTES:
                extras["fresh"] = (lambda f=ours: fresh_outputs(f))
            if extras:
                timings.update(compare(extras, budget / 2))
            rows.append({
                "group": "kernel", "case": f"{mode} {shape}", "mode": mode, "shape": list(shape),
                "large": size >= LARGE_ELEMENTS, "check": check,
                "gbps": BYTES_PER_ELEMENT[mode] * size / timings["bnnet"].seconds / 1e9,
                **{name: vars(t) for name, t in timings.items()},
            })
    return rows


def _check(y, grads, y_torch, grads_torch) -> str:
    try:
        assert_close(y, y_torch.numpy(), "y")
        for name, ours, theirs in zip(("dx", "dgamma", "dbeta"), grads, grads_torch):
            assert_close(ours, theirs.numpy(), name, rtol=1e-3, atol=1e-4)
    except AssertionError as error:
        return f"MISMATCH: {str(error).strip().splitlines()[0]}"
    return "ok"
