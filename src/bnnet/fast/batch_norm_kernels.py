"""Compiled batch-norm kernels: the math of :mod:`bnnet.functional.batch_norm`, fused.

Two memory layouts, because the loop that vectorises differs:

- ``(N, C)``: rows are contiguous across channels, so every loop runs along a
  row and keeps one accumulator per channel (no reduction inside the SIMD loop).
- ``(N, C, S)`` (S = product of the spatial sizes): each ``x[n, c]`` is a
  contiguous run of S values, so the sums keep one accumulator per spatial
  position, added up at the end.

Each kernel handles a range of channels, so the parallel drivers split the
channels between threads and the result does not depend on the thread count.

Statistics take one pass over x. Values are shifted by an estimate ``k`` of
the channel's mean (the mean of its first 16 rows, or of its first run) and
summed in x's dtype over short blocks (16 rows of an (N, C) array, four runs
of an (N, C, S) one), those partial sums accumulating in float64::

    d = x - k,   mean = k + sum(d) / m,   var = sum(d^2) / m - (sum(d) / m)^2

The last subtraction loses digits when ``k`` is far from the mean (the reason
the reference makes two passes), so a channel where ``(mean - k)^2 > 3 var``
sends the pass round again, shifted by the mean it found: the relative error
of var stays within a few float32 roundings, below the reference's own.
Backward recomputes ``x - mean`` from x rather than reading a cached x_hat:
one array fewer to write and read.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .jit import inline_jit, jit, parallel_jit
from .streaming import STREAM_MIN_BYTES, segment_length, store_fence, stream_copy, whole_lines

HEAD_ROWS = 16  # rows whose mean is the first shift
CANCELLATION_LIMIT = 3.0  # redo a channel's sums when (mean - shift)^2 > this * var
WIDE_ROW_BYTES = 4096  # rows at least this long are summed eight at a time (four in the backward)
CACHED_BYTES = 8 << 20  # narrower rows of arrays up to this size are summed four at a time
BLOCK_ROWS = 16  # rows summed in x's dtype before the partial sums join the float64 totals


@jit
def _finish(sums, squares, count, shift, eps, mean, var, inv_std, c0):
    """mean, var, inv_std of channels c0.. from the shifted sums; True if a channel must be redone."""
    redo = False
    for j in range(sums.shape[0]):
        mu = sums[j] / count
        variance = squares[j] / count - mu * mu
        if mu * mu > CANCELLATION_LIMIT * variance:
            redo = True
        variance = max(variance, 0.0)
        mean[c0 + j] = shift[j] + mu
        var[c0 + j] = variance
        inv_std[c0 + j] = 1.0 / np.sqrt(variance + eps)
    return redo


# -- the element-wise passes: y from x, dx from dy and x ---------------------------
# A large output is computed a row (or run) at a time into a scratch array that
# stays in L1, and streamed out (see streaming.py); long rows in segments of
# SEGMENT_BYTES, so that the scratch and the per-channel vectors still fit in L1
# (4 KB rows streamed whole were slower than ordinary stores). The row helpers are inlined
# and the streaming loops call nothing: a call between compiled functions
# updates reference counts with locked instructions, which wait for the
# streaming stores in flight (a branch between the two loops inside one loop
# cost as much, so each pass has two separate loops).
@inline_jit
def _normalize_row(row, centre, scale, offset, out):
    for j in range(row.shape[0]):
        out[j] = (row[j] - centre[j]) * scale[j] + offset[j]


@inline_jit
def _input_grad_row(grad, row, coeff, mean_dy, centre, slope, out):
    for j in range(row.shape[0]):
        out[j] = coeff[j] * (grad[j] - mean_dy[j] - (row[j] - centre[j]) * slope[j])


@inline_jit
def _normalize_run(run, centre, scale, offset, out):
    for k in range(run.shape[0]):
        out[k] = (run[k] - centre) * scale + offset


@inline_jit
def _input_grad_run(grad, run, coeff, mean_dy, centre, slope, out):
    for k in range(run.shape[0]):
        out[k] = coeff * (grad[k] - mean_dy - (run[k] - centre) * slope)


@jit
def _normalize_rows(x, centre, scale, offset, y, c0, c1):
    """y[:, c0:c1] from x[:, c0:c1], (N, C) layout."""
    flat = y.reshape(-1)
    if y.nbytes < STREAM_MIN_BYTES or not whole_lines(flat, c0, y.shape[1], c1 - c0):
        for i in range(x.shape[0]):
            _normalize_row(x[i, c0:c1], centre, scale, offset, y[i, c0:c1])
        return
    segment = segment_length(y)
    scratch = np.empty(min(segment, c1 - c0), y.dtype)
    for i in range(x.shape[0]):
        for s0 in range(0, c1 - c0, segment):
            s1 = min(c1 - c0, s0 + segment)
            _normalize_row(x[i, c0 + s0:c0 + s1], centre[s0:s1], scale[s0:s1], offset[s0:s1], scratch[:s1 - s0])
            stream_copy(scratch[:s1 - s0], flat, i * y.shape[1] + c0 + s0)
    store_fence()


@jit
def _input_grad_rows(dy, x, coeff, mean_dy, centre, slope, dx, c0, c1):
    """dx[:, c0:c1] from dy and x, (N, C) layout."""
    flat = dx.reshape(-1)
    if dx.nbytes < STREAM_MIN_BYTES or not whole_lines(flat, c0, dx.shape[1], c1 - c0):
        for i in range(x.shape[0]):
            _input_grad_row(dy[i, c0:c1], x[i, c0:c1], coeff, mean_dy, centre, slope, dx[i, c0:c1])
        return
    segment = segment_length(dx)
    scratch = np.empty(min(segment, c1 - c0), dx.dtype)
    for i in range(x.shape[0]):
        for s0 in range(0, c1 - c0, segment):
            s1 = min(c1 - c0, s0 + segment)
            _input_grad_row(dy[i, c0 + s0:c0 + s1], x[i, c0 + s0:c0 + s1], coeff[s0:s1], mean_dy[s0:s1],
                            centre[s0:s1], slope[s0:s1], scratch[:s1 - s0])
            stream_copy(scratch[:s1 - s0], flat, i * dx.shape[1] + c0 + s0)
    store_fence()


@jit
def _normalize_runs(x, c, centre, scale, offset, y):
    """y[:, c] from x[:, c], (N, C, S) layout."""
    flat = y.reshape(-1)
    runs = x.shape[2]
    if y.nbytes < STREAM_MIN_BYTES or not whole_lines(flat, c * runs, x.shape[1] * runs, runs):
        for i in range(x.shape[0]):
            _normalize_run(x[i, c], centre, scale, offset, y[i, c])
        return
    scratch = np.empty(x.shape[2], y.dtype)
    for i in range(x.shape[0]):
        _normalize_run(x[i, c], centre, scale, offset, scratch)
        stream_copy(scratch, flat, (i * x.shape[1] + c) * x.shape[2])
    store_fence()


@jit
def _input_grad_runs(dy, x, c, coeff, mean_dy, centre, slope, dx):
    """dx[:, c] from dy and x, (N, C, S) layout."""
    flat = dx.reshape(-1)
    runs = x.shape[2]
    if dx.nbytes < STREAM_MIN_BYTES or not whole_lines(flat, c * runs, x.shape[1] * runs, runs):
        for i in range(x.shape[0]):
            _input_grad_run(dy[i, c], x[i, c], coeff, mean_dy, centre, slope, dx[i, c])
        return
    scratch = np.empty(x.shape[2], dx.dtype)
    for i in range(x.shape[0]):
        _input_grad_run(dy[i, c], x[i, c], coeff, mean_dy, centre, slope, scratch)
        stream_copy(scratch, flat, (i * x.shape[1] + c) * x.shape[2])
    store_fence()


# -- (N, C): one accumulator per channel ----------------------------------------
@jit
def _rows_per_step(x, width):
    """Rows the (N, C) sums read per step: 8, 4 or 1 (see _shifted_sums_2d)."""
    if width * x.itemsize >= WIDE_ROW_BYTES:
        return 8
    return 4 if x.nbytes <= CACHED_BYTES else 1


@jit
def _shifted_sums_2d(x, c0, c1, shift, sums, squares):
    """Per-channel sums of (x - shift) and its square over all rows, float64 totals.

    A block of BLOCK_ROWS rows is summed in x's dtype, then folded into the
    float64 totals: the conversion to float64 happens once per block instead
    of once per value. Several rows are read per step (a fraction of the
    accumulator loads and stores, and of the per-row loop overhead):

    - eight when the rows are WIDE_ROW_BYTES or longer: (4096, 1024) took
      0.59 ms against 0.72 with four or one;
    - four when the array is at most CACHED_BYTES: 30% faster than one on
      (1024, 100), and a little faster than eight on arrays that fit in L2;
    - one otherwise: on shorter rows of an array read from memory, four or
      eight rows at a time ran up to twice as slow ((65536, 256): 7.0 ms
      against 4.0), presumably as the streams and the accumulator stores
      collide in the low address bits.
    """
    n = x.shape[0]
    width = c1 - c0
    sums[:] = 0.0
    squares[:] = 0.0
    part = np.empty(width, x.dtype)
    part_squares = np.empty(width, x.dtype)
    step = _rows_per_step(x, width)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        part[:] = 0.0
        part_squares[:] = 0.0
        i = start
        if step == 8:
            while i + 8 <= stop:
                r0, r1, r2, r3 = x[i, c0:c1], x[i + 1, c0:c1], x[i + 2, c0:c1], x[i + 3, c0:c1]
                r4, r5, r6, r7 = x[i + 4, c0:c1], x[i + 5, c0:c1], x[i + 6, c0:c1], x[i + 7, c0:c1]
                for j in range(width):
                    k = shift[j]
                    d0, d1, d2, d3 = r0[j] - k, r1[j] - k, r2[j] - k, r3[j] - k
                    d4, d5, d6, d7 = r4[j] - k, r5[j] - k, r6[j] - k, r7[j] - k
                    part[j] += ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7))
                    part_squares[j] += ((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) + (
                        (d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7))
                i += 8
        if step >= 4:
            while i + 4 <= stop:
                r0, r1, r2, r3 = x[i, c0:c1], x[i + 1, c0:c1], x[i + 2, c0:c1], x[i + 3, c0:c1]
                for j in range(width):
                    k = shift[j]
                    d0, d1, d2, d3 = r0[j] - k, r1[j] - k, r2[j] - k, r3[j] - k
                    part[j] += (d0 + d1) + (d2 + d3)
                    part_squares[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
                i += 4
        for i in range(i, stop):
            row = x[i, c0:c1]
            for j in range(width):
                d = row[j] - shift[j]
                part[j] += d
                part_squares[j] += d * d
        for j in range(width):
            sums[j] += part[j]
            squares[j] += part_squares[j]


@jit
def train_forward_2d(x, gamma, beta, eps, y, mean, var, inv_std, c0, c1):
    """y = (x - mean) * gamma * inv_std + beta for channels c0:c1, batch statistics."""
    n = x.shape[0]
    width = c1 - c0
    head = min(n, HEAD_ROWS)
    total = np.zeros(width)
    for i in range(head):
        row = x[i, c0:c1]
        for j in range(width):
            total[j] += row[j]
    shift = np.empty(width, x.dtype)
    for j in range(width):
        shift[j] = total[j] / head
    sums = np.empty(width)
    squares = np.empty(width)
    for attempt in range(2):
        _shifted_sums_2d(x, c0, c1, shift, sums, squares)
        if not _finish(sums, squares, n, shift, eps, mean, var, inv_std, c0) or attempt == 1:
            break
        shift[:] = mean[c0:c1]
    centre = mean[c0:c1]
    scale = np.empty(width, x.dtype)
    offset = beta[c0:c1]
    for j in range(width):
        scale[j] = gamma[c0 + j] * inv_std[c0 + j]
    _normalize_rows(x, centre, scale, offset, y, c0, c1)


@jit
def train_backward_2d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, c1):
    """dx, dgamma, dbeta for channels c0:c1 (formulas in :mod:`bnnet.functional.batch_norm`)."""
    n = x.shape[0]
    width = c1 - c0
    centre = mean[c0:c1]
    sum_dy = np.zeros(width)
    sum_dy_centred = np.zeros(width)
    part = np.empty(width, x.dtype)
    part_centred = np.empty(width, x.dtype)
    # Four rows at most: eight, which helps the forward's sums on wide rows, made this pass
    # slower ((4096, 1024): 3.8 ms against 3.6), reading two arrays.
    step = _rows_per_step(x, width)
    for start in range(0, n, BLOCK_ROWS):  # blocks summed in x's dtype, as in _shifted_sums_2d
        stop = min(n, start + BLOCK_ROWS)
        part[:] = 0.0
        part_centred[:] = 0.0
        i = start
        if step >= 4:
            while i + 4 <= stop:
                g0, g1, g2, g3 = dy[i, c0:c1], dy[i + 1, c0:c1], dy[i + 2, c0:c1], dy[i + 3, c0:c1]
                r0, r1, r2, r3 = x[i, c0:c1], x[i + 1, c0:c1], x[i + 2, c0:c1], x[i + 3, c0:c1]
                for j in range(width):
                    k = centre[j]
                    part[j] += (g0[j] + g1[j]) + (g2[j] + g3[j])
                    part_centred[j] += (g0[j] * (r0[j] - k) + g1[j] * (r1[j] - k)) + (
                        g2[j] * (r2[j] - k) + g3[j] * (r3[j] - k))
                i += 4
        for i in range(i, stop):
            grad = dy[i, c0:c1]
            row = x[i, c0:c1]
            for j in range(width):
                part[j] += grad[j]
                part_centred[j] += grad[j] * (row[j] - centre[j])
        for j in range(width):
            sum_dy[j] += part[j]
            sum_dy_centred[j] += part_centred[j]
    coeff = np.empty(width, x.dtype)
    mean_dy = np.empty(width, x.dtype)
    slope = np.empty(width, x.dtype)
    for j in range(width):
        istd = np.float64(inv_std[c0 + j])
        dgamma[c0 + j] = sum_dy_centred[j] * istd
        dbeta[c0 + j] = sum_dy[j]
        coeff[j] = gamma[c0 + j] * inv_std[c0 + j]
        mean_dy[j] = sum_dy[j] / n
        slope[j] = sum_dy_centred[j] * istd * istd / n
    _input_grad_rows(dy, x, coeff, mean_dy, centre, slope, dx, c0, c1)


# -- (N, C, S): one accumulator per spatial position ----------------------------
@jit
def _shifted_sums_3d(x, c, shift, sums, squares):
    """Sums over n and s of (x[n, c, s] - shift) and its square, four runs at a time."""
    n, _, s = x.shape
    sums[:] = 0.0
    squares[:] = 0.0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        r0, r1, r2, r3 = x[i, c], x[i + 1, c], x[i + 2, c], x[i + 3, c]
        for k in range(s):
            d0, d1, d2, d3 = r0[k] - shift, r1[k] - shift, r2[k] - shift, r3[k] - shift
            sums[k] += (d0 + d1) + (d2 + d3)
            squares[k] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
    for i in range(n4, n):
        run = x[i, c]
        for k in range(s):
            d = run[k] - shift
            sums[k] += d
            squares[k] += d * d
    total = 0.0
    total_squares = 0.0
    for k in range(s):
        total += sums[k]
        total_squares += squares[k]
    return total, total_squares


@jit
def train_forward_3d(x, gamma, beta, eps, y, mean, var, inv_std, c0, c1):
    n, _, s = x.shape
    sums = np.empty(s)
    squares = np.empty(s)
    shift = np.empty(1, x.dtype)
    totals = np.empty(1)
    total_squares = np.empty(1)
    for c in range(c0, c1):
        first = x[0, c]
        head = 0.0
        for k in range(s):
            head += first[k]
        shift[0] = head / s
        for attempt in range(2):
            totals[0], total_squares[0] = _shifted_sums_3d(x, c, shift[0], sums, squares)
            if not _finish(totals, total_squares, n * s, shift, eps, mean, var, inv_std, c) or attempt == 1:
                break
            shift[0] = mean[c]
        centre = mean[c]
        scale = gamma[c] * inv_std[c]
        offset = beta[c]
        _normalize_runs(x, c, centre, scale, offset, y)


@jit
def train_backward_3d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, c1):
    n, _, s = x.shape
    m = n * s
    sums = np.empty(s)
    sums_centred = np.empty(s)
    constants = np.empty(3, x.dtype)  # per-channel scalars in x's dtype, as the reference computes them
    for c in range(c0, c1):
        centre = mean[c]
        sums[:] = 0.0
        sums_centred[:] = 0.0
        n4 = n - n % 4
        for i in range(0, n4, 4):
            g0, g1, g2, g3 = dy[i, c], dy[i + 1, c], dy[i + 2, c], dy[i + 3, c]
            r0, r1, r2, r3 = x[i, c], x[i + 1, c], x[i + 2, c], x[i + 3, c]
            for k in range(s):
                sums[k] += (g0[k] + g1[k]) + (g2[k] + g3[k])
                sums_centred[k] += (g0[k] * (r0[k] - centre) + g1[k] * (r1[k] - centre)) + (
                    g2[k] * (r2[k] - centre) + g3[k] * (r3[k] - centre))
        for i in range(n4, n):
            grad = dy[i, c]
            run = x[i, c]
            for k in range(s):
                sums[k] += grad[k]
                sums_centred[k] += grad[k] * (run[k] - centre)
        sum_dy = 0.0
        sum_dy_centred = 0.0
        for k in range(s):
            sum_dy += sums[k]
            sum_dy_centred += sums_centred[k]
        istd = np.float64(inv_std[c])
        dgamma[c] = sum_dy_centred * istd
        dbeta[c] = sum_dy
        constants[0] = gamma[c] * inv_std[c]
        constants[1] = sum_dy / m
        constants[2] = sum_dy_centred * istd * istd / m
        coeff, mean_dy, slope = constants[0], constants[1], constants[2]
        _input_grad_runs(dy, x, c, coeff, mean_dy, centre, slope, dx)


# -- parallel drivers: channels split between threads ------------------------------
@parallel_jit
def train_forward_2d_parallel(x, gamma, beta, eps, y, mean, var, inv_std, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_forward_2d(x, gamma, beta, eps, y, mean, var, inv_std, c0, min(channels, c0 + chunk))


@parallel_jit
def train_forward_3d_parallel(x, gamma, beta, eps, y, mean, var, inv_std, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_forward_3d(x, gamma, beta, eps, y, mean, var, inv_std, c0, min(channels, c0 + chunk))


@parallel_jit
def train_backward_2d_parallel(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_backward_2d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, min(channels, c0 + chunk))


@parallel_jit
def train_backward_3d_parallel(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, chunk):
    channels = x.shape[1]
    for block in prange((channels + chunk - 1) // chunk):
        c0 = block * chunk
        train_backward_3d(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta, c0, min(channels, c0 + chunk))
