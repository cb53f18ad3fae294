"""Render the collected results as the Markdown document ``docs/benchmarks.md``."""
from __future__ import annotations

import statistics

TARGETS = {
    "kernel": "ratio >= 1.5 on every shape and mode; >= 50% of copy bandwidth on large shapes",
    "step60": "ratio >= 2 at batch 60",
    "step1024": "ratio >= 1.3 at batch 1024",
    "inference": "faster than onnxruntime, and ratio >= 5 against PyTorch eager",
    "import": "import bnnet < 0.3 s",
    "figure1": "Figure 1 (2 networks x 50,000 steps at batch 60) < 120 s",
}


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}" if seconds < 1e-2 else f"{seconds * 1e3:,.2f} ms"


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """One value, or 'median (min-max)' over processes."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _rows_by_case(workers: list[dict]) -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = {}
    for worker in workers:
        for row in worker["rows"]:
            cases.setdefault(row["case"], []).append(row)
    return cases


def ratio(row: dict, other: str = "torch", kind: str = "seconds") -> float:
    return row[other][kind] / row["bnnet"][kind]


def kernel_table(workers: list[dict]) -> list[str]:
    copy = [w["copy_bandwidth"] / 1e9 for w in workers]
    lines = [f"Copy bandwidth (`np.copyto`, 256 MB; bytes read + written per second): {_spread(copy, '{:.1f}')} GB/s.", "",
             "| case | bnnet (us) | PyTorch (us) | PyTorch / bnnet | NumPy reference (us) | bnnet GB/s | % of copy "
             "| bnnet, fresh output arrays (us) | check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case, rows in _rows_by_case(workers).items():
        if rows[0]["group"] != "kernel":
            continue
        share = [r["gbps"] / (w["copy_bandwidth"] / 1e9) * 100 for r, w in zip(rows, workers)]
        reference = _us(statistics.median(r["reference"]["seconds"] for r in rows)) if "reference" in rows[0] else "-"
        fresh = _us(statistics.median(r["fresh"]["seconds"] for r in rows)) if "fresh" in rows[0] else "-"
        lines.append(f"| {case} | {_us(statistics.median(r['bnnet']['seconds'] for r in rows))} "
                     f"| {_us(statistics.median(r['torch']['seconds'] for r in rows))} "
                     f"| {_spread([ratio(r) for r in rows])} | {reference} "
                     f"| {_spread([r['gbps'] for r in rows], '{:.1f}')} | {_spread(share, '{:.0f}')} "
                     f"| {fresh} | {_checks(rows)} |")
    return lines


def step_table(workers: list[dict]) -> list[str]:
    lines = ["| case | bnnet (us) | PyTorch (us) | PyTorch / bnnet | NumPy reference (us) | check |",
             "|---|---:|---:|---:|---:|---|"]
    for case, rows in _rows_by_case(workers).items():
        if rows[0]["group"] != "step":
            continue
        reference = _us(statistics.median(r["reference"]["seconds"] for r in rows)) if "reference" in rows[0] else "-"
        lines.append(f"| {case} | {_us(statistics.median(r['bnnet']['seconds'] for r in rows))} "
                     f"| {_us(statistics.median(r['torch']['seconds'] for r in rows))} "
                     f"| {_spread([ratio(r) for r in rows])} | {reference} | {_checks(rows)} |")
    return lines


def inference_table(workers: list[dict]) -> list[str]:
    rows = [r for w in workers for r in w["rows"] if r["group"] == "inference"]
    names = [("bnnet", "bnnet `model.predict(x)`"), ("bnnet_folded", "bnnet, batch norm folded"),
             ("torch", "PyTorch eager (`inference_mode`)"), ("onnxruntime", "onnxruntime `InferenceSession.run`")]
    lines = ["| runtime | us per example | its time / bnnet's |", "|---|---:|---:|"]
    for key, label in names:
        present = [r for r in rows if key in r]
        if not present:
            why = rows[0].get("onnxruntime_missing") if key == "onnxruntime" else "bnnet.toolbox.fold not available"
            lines.append(f"| {label} | not run: {why} | |")
            continue
        seconds = [r[key]["seconds"] for r in present]
        lines.append(f"| {label} | {_spread([s * 1e6 for s in seconds], '{:.1f}')} "
                     f"| {_spread([r[key]['seconds'] / r['bnnet']['seconds'] for r in present])} |")
    lines += ["", f"Outputs checked against PyTorch before timing: {_checks(rows)}."]
    return lines


def _checks(rows: list[dict]) -> str:
    bad = sorted({r["check"] for r in rows if r["check"] != "ok"})
    return "ok" if not bad else "; ".join(bad)


def jobs_section(jobs: dict) -> list[str]:
    imp, epoch, fig = jobs["import"], jobs["epoch"], jobs["figure1"]
    lines = ["| job | bnnet | PyTorch | PyTorch / bnnet |", "|---|---:|---:|---:|",
             f"| `import` (s) | {imp['bnnet']['seconds']:.3f} | {imp['torch']['seconds']:.3f} "
             f"| {imp['torch']['seconds'] / imp['bnnet']['seconds']:.1f} |",
             f"| peak resident memory after `import` (MB) | {imp['bnnet']['rss_mb']:.0f} | {imp['torch']['rss_mb']:.0f} "
             f"| {imp['torch']['rss_mb'] / imp['bnnet']['rss_mb']:.1f} |",
             f"| one epoch of {epoch['dataset']}, training loop (s) | {epoch['bnnet']['seconds']:.2f} "
             f"| {epoch['torch']['seconds']:.2f} | {epoch['torch']['seconds'] / epoch['bnnet']['seconds']:.2f} |",
             f"| the same, whole process: start, import, data, train, test, save (s) "
             f"| {epoch['bnnet']['process_seconds']:.2f} | {epoch['torch']['process_seconds']:.2f} "
             f"| {epoch['torch']['process_seconds'] / epoch['bnnet']['process_seconds']:.2f} |",
             "", "The training-loop time is the `seconds` of `bnnet train --json` (bnnet's `fit` loads its "
             "compiled kernels before starting that clock: see the start-up line below) and the same loop timed "
             "in `benchmarks/torch_epoch.py`, batch 60, SGD with momentum.",
             "", f"`import bnnet` imports numba: {'yes (a defect)' if imp['bnnet']['numba_imported'] else 'no'}. "
             f"Test accuracy after the epoch: bnnet {epoch['bnnet']['test_accuracy']:.4f}, "
             f"PyTorch {epoch['torch']['test_accuracy']:.4f} (check: {epoch['check']}).", "",
             f"Figure-1 experiment (`bnnet experiment fig1`, {fig['dataset']}, 2 networks x {fig['steps']:,} steps at "
             f"batch 60, recording included): {fig['wall_seconds']:.1f} s wall clock "
             f"(the command reports {fig['reported_seconds']:.1f} s)."]
    if "compile" in jobs:
        c = jobs["compile"]
        lines += ["", "Start-up of the fast engine (a first training step and prediction of the paper network, "
                  "in a fresh process, including `import bnnet`): "
                  f"{c['first_run_seconds']:.1f} s with an empty numba cache (compiles the kernels it uses), "
                  f"{c['cached_run_seconds']:.2f} s once they are cached, "
                  f"{c['reference_run_seconds']:.2f} s on the NumPy reference engine."]
    return lines


def summary(by_threads: dict[int, list[dict]], jobs: dict | None) -> list[str]:
    """Target, measured (1 thread), met? -- the medians over the 1-thread processes."""
    workers = by_threads.get(1)
    if not workers:
        return ["(no 1-thread run: targets not evaluated)"]
    cases = _rows_by_case(workers)
    lines = ["| target (1 thread) | measured | met |", "|---|---|---|"]
    kernel = [(c, statistics.median(ratio(r) for r in rows), rows) for c, rows in cases.items()
              if rows[0]["group"] == "kernel"]
    worst = min(kernel, key=lambda item: item[1])
    lines.append(f"| batch-norm kernel: {TARGETS['kernel'].split(';')[0]} | lowest {worst[1]:.2f} ({worst[0]}) "
                 f"| {'yes' if worst[1] >= 1.5 else 'no'} |")
    large = [(c, statistics.median(r["gbps"] / (w["copy_bandwidth"] / 1e9) for r, w in zip(rows, workers)))
             for c, rows in cases.items() if rows[0]["group"] == "kernel" and rows[0]["large"]]
    if large:
        low = min(large, key=lambda item: item[1])
        lines.append(f"| batch-norm kernel: >= 50% of copy bandwidth on large shapes | lowest {low[1] * 100:.0f}% "
                     f"({low[0]}) | {'yes' if low[1] >= 0.5 else 'no'} |")
    for case, rows in cases.items():
        if rows[0]["group"] == "step":
            need = 2.0 if rows[0]["batch"] <= 60 else 1.3
            value = statistics.median(ratio(r) for r in rows)
            lines.append(f"| {case}: ratio >= {need} | {value:.2f} | {'yes' if value >= need else 'no'} |")
        if rows[0]["group"] == "inference":
            torch_ratio = statistics.median(ratio(r) for r in rows)
            lines.append(f"| single example: ratio >= 5 against PyTorch eager | {torch_ratio:.1f} "
                         f"| {'yes' if torch_ratio >= 5 else 'no'} |")
            if "onnxruntime" in rows[0]:
                ort = statistics.median(ratio(r, 'onnxruntime') for r in rows)
                lines.append(f"| single example: faster than onnxruntime | onnxruntime / bnnet = {ort:.2f} "
                             f"| {'yes' if ort > 1 else 'no'} |")
    if jobs:
        seconds = jobs["import"]["bnnet"]["seconds"]
        lines.append(f"| {TARGETS['import']} | {seconds:.3f} s | {'yes' if seconds < 0.3 else 'no'} |")
        fig = jobs["figure1"]
        if fig["steps"] == 50_000:
            lines.append(f"| {TARGETS['figure1']} | {fig['wall_seconds']:.0f} s | "
                         f"{'yes' if fig['wall_seconds'] < 120 else 'no'} |")
    return lines


ENGINE_NOTES = [
    "bnnet's layers call the readable NumPy functions in `bnnet.functional` (the reference) or, on the fast "
    "engine (the default when numba imports; `BNNET_ENGINE=reference|fast|auto`), compiled kernels in "
    "`bnnet.fast` that compute the same results within float rounding (tests/test_fast_engine.py compares them, "
    "forward and gradients, float32 and float64).",
    "Where the time goes at small sizes is per-call overhead: the reference batch-norm forward makes about 15 "
    "NumPy calls, most allocating a temporary, its backward about 12, the sigmoid about 10. The kernels do "
    "each in one call: batch-norm statistics in one pass (sums shifted by an estimate of the mean, over blocks "
    "of rows in float32, folded into float64 totals) then one normalising pass; backward one pass for the two "
    "sums and one for dx, recomputing x - mean instead of storing x_hat; a vectorised float32 sigmoid in one "
    "loop (the C library's exp does not vectorise); softmax cross-entropy with its gradient, its float32 "
    "exponentials in one vectorised pass; the running-statistics update in one call; and the SGD update in "
    "place, eight parameters per call, bit for bit the reference's arithmetic.",
    "Where the time goes at large sizes is memory traffic. Outputs of 8 MB or more (y, dx) are written with "
    "non-temporal stores, which skip reading each line before writing it, one 64-byte cache line at a time "
    "computed in a vector register (`bnnet/fast/streaming.py`): on one thread the whole array as one run of "
    "lines across the row ends, on several threads (and for (N, C, S) arrays) the rows of whole lines only. "
    "Statistics of rows of 4 KB or more read from memory are summed a cache line of channels at a time down "
    "a block of rows, the sums in registers (`bnnet/fast/line_sums.py`), from the arrays' own line "
    "boundaries. Outputs of 1 MB or more come from a buffer pool (`bnnet/fast/buffers.py`, "
    "`BNNET_BUFFER_POOL_MB`, default 512), placed half a 4 KB page from their input (a load sharing its low "
    "address bits with a store in flight waits for it) and, for a one-thread pass, at the input's offset "
    "within a cache line, so loads and stores fall on the same lines; from 2 MB up, in a mapping of their own "
    "advised to use 2 MB pages (heap memory comes back in 4 KB pages). The pool hands an array out again once "
    "nobody holds it, because a fresh 64 MB array costs about 5 ms of page faults (PyTorch pays them on every "
    "call). The column 'fresh output arrays' times bnnet with the pool bypassed.",
    "Matrix products stay with BLAS (NumPy's OpenBLAS). `fit` skips the first layer's input gradient "
    "(`Linear.needs_input_grad`), as PyTorch does for data, and a Linear stores its weight column-major so "
    "that `x @ W.T` is a plain product for BLAS.",
    "`Sequential.predict` runs a Linear/BatchNorm/activation chain as one BLAS product per Linear plus one "
    "compiled epilogue (bias, batch norm with running statistics, activation) in between; a bias alone is "
    "NumPy's in-place add.",
    "Large arrays (>= 2^18 elements) use numba's thread pool when more than one thread is allowed, splitting "
    "channels between threads, so results do not depend on the thread count.",
]


def render(meta: dict, by_threads: dict[int, list[dict]], jobs: dict | None) -> str:
    out = ["# Benchmarks: bnnet against PyTorch on the CPU", "",
           f"Generated by `{meta['command']}` on {meta['date']}; regenerate the whole page with that command.",
           "Ratios are PyTorch time / bnnet time: above 1, bnnet is faster. Times are medians of many "
           "samples after warm-up, the candidates of a case sampled in turn.", "",
           "## Machine and load", ""]
    out += [f"- {line}" for line in meta["machine"]]
    out += ["", "## Against the targets", ""] + summary(by_threads, jobs)
    out += ["", "## What the fast engine does", ""] + [f"- {line}" for line in ENGINE_NOTES]
    for threads, workers in sorted(by_threads.items()):
        processes = len(workers)
        spread = "" if processes == 1 else f" (median over {processes} processes, range in brackets)"
        out += ["", f"## {threads} thread{'s' if threads > 1 else ''}{spread}", "",
                "### 1. Batch-norm kernel, float32, training mode", ""] + kernel_table(workers)
        out += ["", "### 2. Training step of the paper's network (784-100-100-100-10, sigmoid, batch norm, "
                "softmax cross-entropy, SGD with momentum)", ""] + step_table(workers)
        out += ["", "### 3. Single-example inference (eval mode)", ""] + inference_table(workers)
    if jobs:
        out += ["", "## 4. Whole jobs (1 thread, fresh processes)", ""] + jobs_section(jobs)
    out += ["", "## Method", ""] + [f"- {line}" for line in meta["method"]]
    return "\n".join(out) + "\n"
