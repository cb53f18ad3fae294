"""Case 2: one training step of the paper's network, bnnet's public API against PyTorch's.

bnnet::

    outputs = model.forward(x); loss_fn.forward(outputs, y)
    model.backward(loss_fn.backward()); optimizer.step(model.gradients())

with ``model[0].needs_input_grad = False`` (training needs no gradient for the
data; ``bnnet.training.fit`` sets the same, and PyTorch skips it because the
data tensor does not require grad). PyTorch::

    optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()

Both use SGD with momentum 0.9, learning rate 0.1, on the same uniform
random batch, from the same weights; one step of each is compared first.
"""
from __future__ import annotations

import numpy as np

import bnnet

from .networks import LEARNING_RATE, MOMENTUM, assert_close, bnnet_network, bnnet_parameters, torch_twin
from .timing import compare

FULL_BATCHES = (60, 1024)
QUICK_BATCHES = (60,)


def run(torch, quick: bool, budget: float, with_reference: bool = True) -> list[dict]:
    rows = []
    for batch in QUICK_BATCHES if quick else FULL_BATCHES:
        rng = np.random.default_rng(batch)
        x = rng.random((batch, 784), dtype=np.float32)
        y = rng.integers(0, 10, size=batch)
        model = bnnet_network()
        model[0].needs_input_grad = False
        loss_fn = bnnet.SoftmaxCrossEntropy()
        optimizer = bnnet.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        twin = torch_twin(model, torch)
        twin_optimizer = torch.optim.SGD(twin.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        twin_loss = torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def ours() -> float:
            loss = loss_fn.forward(model.forward(x), y)
            model.backward(loss_fn.backward())
            optimizer.step(model.gradients())
            return loss

        def theirs() -> float:
            twin_optimizer.zero_grad()
            loss = twin_loss(twin(tx), ty)
            loss.backward()
            twin_optimizer.step()
            return loss

        check = _check(model, twin, ours, theirs)
        timings = compare({"bnnet": ours, "torch": theirs}, budget)
        if with_reference:  # a round of its own: its temporaries would slow whichever ran next
            def on_reference() -> float:
                with bnnet.fast.use_engine("reference"):
                    return ours()
            timings.update(compare({"reference": on_reference}, budget / 2))
        rows.append({"group": "step", "case": f"training step, batch {batch}", "batch": batch, "check": check,
                     **{name: vars(t) for name, t in timings.items()}})
    return rows


def _check(model, twin, ours, theirs) -> str:
    try:
        for step in range(2):  # the second step also exercises the momentum buffers
            loss, loss_torch = ours(), float(theirs().detach())
            assert_close(loss, loss_torch, f"loss at step {step}", rtol=1e-5)
        for index, (mine, other) in enumerate(zip(bnnet_parameters(model), twin.parameters())):
            assert_close(mine, other.detach().numpy(), f"parameter {index} after 2 steps")
    except AssertionError as error:
        return f"MISMATCH: {str(error).strip().splitlines()[0]}"
    return "ok"
