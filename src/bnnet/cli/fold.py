"""`bnnet fold MODEL --out FOLDED`: fold eval-mode batch norm into the Linear layers, for deployment."""
from __future__ import annotations

import statistics
import time

from .common import print_json_summary
from .toolbox_common import add_model_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fold", help="fold every BatchNorm into the Linear before it (a plain, faster model)",
        description="Algorithm 2, step 11 of Ioffe & Szegedy (2015): each eval-mode BatchNorm is a fixed "
                    "affine map, folded into the preceding Linear's weight and bias. Checks that the folded "
                    "model's test outputs equal the original's eval outputs, and optionally times both.")
    add_model_flags(parser, out_help="where to save the folded model (default: not saved)")
    parser.add_argument("--benchmark", action="store_true",
                        help="time single-example and batch inference (forward and predict), original vs folded "
                             "(medians of --repeats calls; set OPENBLAS_NUM_THREADS=1 on a busy machine)")
    parser.add_argument("--repeats", type=int, default=500, help="timed calls of each model (default: 500)")
    parser.add_argument("--benchmark-batch", type=int, default=1000,
                        help="examples in the batch timing (default: 1000)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    import numpy as np

    from ..nn.batch_norm import BatchNorm
    from ..toolbox.fold import fold_batch_norm
    from .toolbox_common import accuracy, load_model_and_data, save_result

    if args.repeats < 1 or args.benchmark_batch < 1:
        raise ValueError(f"--repeats and --benchmark-batch expected >= 1, "
                         f"got {args.repeats} and {args.benchmark_batch}")
    loaded = load_model_and_data(args)
    model, data = loaded.model.eval(), loaded.data
    folded = fold_batch_norm(model)
    x_test = data.x_test.astype(model.dtype(), copy=False)
    original_out, folded_out = model.forward(x_test), folded.forward(x_test)
    scale = float(np.max(np.abs(original_out))) or 1.0  # all-zero outputs: report the absolute difference
    difference = float(np.max(np.abs(folded_out.astype(np.float64) - original_out))) / scale
    original_acc = accuracy(loaded, model, data.x_test, data.y_test)[1]
    folded_acc = accuracy(loaded, folded, data.x_test, data.y_test)[1]
    removed = sum(isinstance(layer, BatchNorm) for layer in model.modules())
    print(f"folded {removed} BatchNorm layer(s): {len(folded)} layers left")
    print(f"{data.name} test ({len(x_test)} examples): max |folded - original| / max |original| = {difference:.3g} "
          f"({model.dtype()}); accuracy {original_acc:.4f} original, {folded_acc:.4f} folded")
    summary = {"command": "fold", "model": args.model, "dataset": data.name, "removed_batch_norms": removed,
               "max_relative_difference": difference, "accuracy_original": original_acc,
               "accuracy_folded": folded_acc}
    if args.benchmark:
        from .. import fast

        summary["engine"] = fast.engine()
        print(f"timing with the {summary['engine']} engine (BNNET_ENGINE); medians of {args.repeats} calls")
        summary["timing"] = benchmark(model, folded, x_test, args.repeats, args.benchmark_batch)
        for case, row in summary["timing"].items():
            print(f"  {case}: original {row['original_us']:.1f} us, folded {row['folded_us']:.1f} us "
                  f"(speed-up x{row['speedup']:.2f})")
    summary["out"] = save_result(args.out, folded, loaded, "fold", keep_optimizer=False,
                                 max_relative_difference=difference)
    if args.json:
        print_json_summary(summary)
    return 0


def benchmark(model, folded, x, repeats: int, batch: int) -> dict[str, dict[str, float]]:
    """Median microseconds per inference call, original vs folded, in four cases.

    ``forward``: the eval-mode layer chain, one layer at a time. ``predict``:
    what deployment calls; with the fast engine it runs a covered chain as a
    few fused calls (:mod:`bnnet.fast.inference`). Each on one example and on
    one batch. The two models' calls alternate, so that load on a shared
    machine affects both alike; five untimed rounds warm the caches first.
    """
    inputs = {"single example": x[:1], f"batch of {min(batch, len(x))}": x[:batch]}
    result = {}
    for method in ("forward", "predict"):
        for size, data in inputs.items():
            calls = {name: getattr(candidate, method) for name, candidate in (("original", model), ("folded", folded))}
            times: dict[str, list[float]] = {"original": [], "folded": []}
            for index in range(repeats + 5):
                for name, call in calls.items():
                    started = time.perf_counter()
                    call(data)
                    elapsed = time.perf_counter() - started
                    if index >= 5:
                        times[name].append(elapsed)
            original, fast = statistics.median(times["original"]) * 1e6, statistics.median(times["folded"]) * 1e6
            result[f"{method}, {size}"] = {"original_us": original, "folded_us": fast, "speedup": original / fast}
    return result
