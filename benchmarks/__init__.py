"""bnnet's benchmark suite: ``python -m benchmarks`` (see ``benchmarks/__main__.py``).

Cases (each checks bnnet against PyTorch before timing it):

1. :mod:`benchmarks.cases_kernel`: the batch-norm kernel, float32, forward and forward+backward.
2. :mod:`benchmarks.cases_step`: a training step of the paper's network.
3. :mod:`benchmarks.cases_inference`: single-example inference, with onnxruntime.
4. :mod:`benchmarks.jobs`: import cost, an epoch of MNIST, the Figure-1 experiment, compile time.

Run from the repository root; ``--output docs/benchmarks.md`` regenerates the results page.
"""
