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
summed in x's dtype over short blocks (16 rows of an (N, C) array, 8 for the
backward's sums of wide rows, four runs of an (N, C, S) one), those partial
sums accumulating in float64::

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

from . import line_sums
from .jit import inline_jit, jit, parallel_jit
from .lanes import LINE_BYTES
from .line_sums import add_gradient_line_sums, add_shifted_line_sums
from .streaming import STREAM_MIN_BYTES, line_length, line_span, line_writer, store_fence, whole_lines

HEAD_ROWS = 16  # rows whose mean is the first shift
CANCELLATION_LIMIT = 3.0  # redo a channel's sums when (mean - shift)^2 > this * var
WIDE_ROW_BYTES = 4096  # rows at least this long are summed by cache lines of channels (line_sums.py)
CACHED_BYTES = 8 << 20  # arrays up to this size are summed along the rows, four at a time
BLOCK_ROWS = 16  # rows summed in x's dtype before the partial sums join the float64 totals
GRADIENT_BLOCK_ROWS = 8  # the same for the backward's sums by lines, which read two arrays (line_sums.py)


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
# Each formula is written once, as Python arithmetic: compiled for scalars (the
# loops over rows that stay in cache) and turned into a vector non-temporal
# store of one cache line by streaming.line_writer (large outputs). The
# streaming loops call nothing: a call between compiled functions updates
# reference counts with locked instructions, which wait for the streaming
# stores in flight (a branch between the two loops inside one loop cost as
# much, so each pass has two separate loops).
def _normalized(x, centre, scale, offset):
    return (x - centre) * scale + offset


def _input_grad(dy, x, coeff, mean_dy, centre, slope):
    return coeff * (dy - mean_dy - (x - centre) * slope)


normalized = inline_jit(_normalized)
input_grad = inline_jit(_input_grad)
write_normalized_line = line_writer(_normalized)
write_input_grad_line = line_writer(_input_grad)


@jit
def _wrapped(values, line):
    """``values`` followed by its first ``line`` values again (repeated if shorter): a line read at
    any channel j < len(values) sees the channels that follow j in the flat array, across the row end."""
    out = np.empty(values.shape[0] + line, values.dtype)
    for k in range(out.shape[0]):
        out[k] = values[k % values.shape[0]]
    return out


@jit
def _normalize_rows(x, centre, scale, offset, y, c0, c1):
    """y[:, c0:c1] from x[:, c0:c1], (N, C) layout."""
    channels = y.shape[1]
    width = c1 - c0
    flat = y.reshape(-1)
    if y.nbytes >= STREAM_MIN_BYTES and width == channels:
        _normalize_stream(x.reshape(-1), centre, scale, offset, flat, channels)
    elif y.nbytes >= STREAM_MIN_BYTES and whole_lines(flat, c0, channels, width):
        inputs = (x.reshape(-1),)
        parameters = (centre, scale, offset)
        for i in range(x.shape[0]):
            start = i * channels + c0
            for j in range(0, width, line_length(flat)):
                write_normalized_line(flat, start + j, inputs, j, parameters)
        store_fence()
    else:
        for i in range(x.shape[0]):
            row = x[i, c0:c1]
            out = y[i, c0:c1]
            for j in range(width):
                out[j] = normalized(row[j], centre[j], scale[j], offset[j])


@jit
def _normalize_stream(x, centre, scale, offset, y, channels):
    """All of y (flat) from x (flat): one stream of cache lines that run across the row ends.

    When the rows are not whole cache lines (x and y start inside a line, as
    NumPy's large arrays do 16 bytes in), a line holds the end of one row and
    the start of the next; the per-channel values are read from copies that
    wrap round (_wrapped). Only the first and last partial lines of the whole
    array get ordinary stores. With y placed in its cache line as x is
    (buffers.output_page_offset), x's loads are aligned too: (4096, 1024)
    float32 with x 16 bytes into a line took 0.83-0.88 ms so, against
    0.86-0.92 ms with y on a line boundary and x's loads straddling lines.
    """
    line = line_length(y)
    count = y.shape[0]
    head, body = line_span(y, 0, count)
    for k in range(head):
        j = k % channels
        y[k] = normalized(x[k], centre[j], scale[j], offset[j])
    inputs = (x,)
    parameters = (_wrapped(centre, line), _wrapped(scale, line), _wrapped(offset, line))
    j = head % channels
    for k in range(head, body, line):
        write_normalized_line(y, k, inputs, j, parameters)
        j += line
        while j >= channels:
            j -= channels
    store_fence()
    for k in range(body, count):
        j = k % channels
        y[k] = normalized(x[k], centre[j], scale[j], offset[j])


@jit
def _input_grad_rows(dy, x, coeff, mean_dy, centre, slope, dx, c0, c1):
    """dx[:, c0:c1] from dy and x, (N, C) layout."""
    channels = dx.shape[1]
    width = c1 - c0
    flat = dx.reshape(-1)
    if dx.nbytes >= STREAM_MIN_BYTES and width == channels:
        _input_grad_stream(dy.reshape(-1), x.reshape(-1), coeff, mean_dy, centre, slope, flat, channels)
    elif dx.nbytes >= STREAM_MIN_BYTES and whole_lines(flat, c0, channels, width):
        inputs = (dy.reshape(-1), x.reshape(-1))
        parameters = (coeff, mean_dy, centre, slope)
        for i in range(x.shape[0]):
            start = i * channels + c0
            for j in range(0, width, line_length(flat)):
                write_input_grad_line(flat, start + j, inputs, j, parameters)
        store_fence()
    else:
        for i in range(x.shape[0]):
            grad = dy[i, c0:c1]
            row = x[i, c0:c1]
            out = dx[i, c0:c1]
            for j in range(width):
                out[j] = input_grad(grad[j], row[j], coeff[j], mean_dy[j], centre[j], slope[j])


@jit
def _input_grad_stream(dy, x, coeff, mean_dy, centre, slope, dx, channels):
    """All of dx (flat) from dy and x (flat), one stream of lines as in _normalize_stream."""
    line = line_length(dx)
    count = dx.shape[0]
    head, body = line_span(dx, 0, count)
    for k in range(head):
        j = k % channels
        dx[k] = input_grad(dy[k], x[k], coeff[j], mean_dy[j], centre[j], slope[j])
    inputs = (dy, x)
    parameters = (_wrapped(coeff, line), _wrapped(mean_dy, line), _wrapped(centre, line), _wrapped(slope, line))
    j = head % channels
    for k in range(head, body, line):
        write_input_grad_line(dx, k, inputs, j, parameters)
        j += line
        while j >= channels:
            j -= channels
    store_fence()
    for k in range(body, count):
        j = k % channels
        dx[k] = input_grad(dy[k], x[k], coeff[j], mean_dy[j], centre[j], slope[j])


@jit
def _normalize_runs(x, c, centre, scale, offset, y):
    """y[:, c] from x[:, c], (N, C, S) layout."""
    runs = x.shape[2]
    flat = y.reshape(-1)
    if y.nbytes >= STREAM_MIN_BYTES and whole_lines(flat, c * runs, x.shape[1] * runs, runs):
        inputs = (x.reshape(-1),)
        parameters = (centre, scale, offset)
        for i in range(x.shape[0]):
            start = (i * x.shape[1] + c) * runs
            for k in range(0, runs, line_length(flat)):
                write_normalized_line(flat, start + k, inputs, 0, parameters)
        store_fence()
    else:
        for i in range(x.shape[0]):
            run = x[i, c]
            out = y[i, c]
            for k in range(runs):
                out[k] = normalized(run[k], centre, scale, offset)


@jit
def _input_grad_runs(dy, x, c, coeff, mean_dy, centre, slope, dx):
    """dx[:, c] from dy and x, (N, C, S) layout."""
    runs = x.shape[2]
    flat = dx.reshape(-1)
    if dx.nbytes >= STREAM_MIN_BYTES and whole_lines(flat, c * runs, x.shape[1] * runs, runs):
        inputs = (dy.reshape(-1), x.reshape(-1))
        parameters = (coeff, mean_dy, centre, slope)
        for i in range(x.shape[0]):
            start = (i * x.shape[1] + c) * runs
            for k in range(0, runs, line_length(flat)):
                write_input_grad_line(flat, start + k, inputs, 0, parameters)
        store_fence()
    else:
        for i in range(x.shape[0]):
            grad = dy[i, c]
            run = x[i, c]
            out = dx[i, c]
            for k in range(runs):
                out[k] = input_grad(grad[k], run[k], coeff, mean_dy, centre, slope)


# -- (N, C): one accumulator per channel ----------------------------------------
_shifted_terms = inline_jit(line_sums.shifted_terms)  # the lines' terms, for the channels of partial lines
_gradient_terms = inline_jit(line_sums.gradient_terms)


@jit
def _rows_per_step(x):
    """Rows the (N, C) row-wise sums read per step: 4 or 1 (see _shifted_sums_by_rows)."""
    return 4 if x.nbytes <= CACHED_BYTES else 1


@jit
def _shifted_sums_2d(x, c0, c1, shift, sums, squares):
    """Per-channel sums of (x - shift) and its square over all rows, float64 totals.

    A block of BLOCK_ROWS rows is summed in x's dtype, then folded into the
    float64 totals: the conversion to float64 happens once per block instead
    of once per value. Rows of WIDE_ROW_BYTES or more of an array read from
    memory (over CACHED_BYTES) are summed a cache line of channels at a time
    with the block's sums in registers (line_sums.py); the rest along the rows,
    which was a little faster in cache ((256, 1024): 23.6 against 25.9 us;
    (1024, 1024): 89 against 93 us).
    """
    sums[:] = 0.0
    squares[:] = 0.0
    if (c1 - c0) * x.itemsize >= WIDE_ROW_BYTES and x.nbytes > CACHED_BYTES:
        _shifted_sums_by_lines(x, c0, c1, shift, sums, squares)
    else:
        _shifted_sums_by_rows(x, c0, c1, shift, sums, squares)


@jit
def _line_span(x, c0, width):
    """(head, whole): channels c0 + head : c0 + whole are whole cache lines in every row of x.

    The lines are x's own: when a row is a whole number of cache lines, every
    row starts at the same offset within a line, and the channels before the
    first boundary go with the partial lines. A load of a line's worth that
    straddles two lines reads both: on (4096, 1024) float32 starting 16 bytes
    into a line (where NumPy puts a large array) the forward's statistics took
    0.78 ms with loads at c0, c0 + 16, ..., against 0.55-0.61 ms from x's
    first line boundary.
    """
    flat = x.reshape(-1)
    if (x.shape[1] * x.itemsize) % LINE_BYTES == 0:
        return line_span(flat, c0, width)
    return 0, width - width % line_length(flat)


@jit
def _shifted_sums_by_lines(x, c0, c1, shift, sums, squares):
    """_shifted_sums_2d down each cache line of channels (line_sums.py); partial lines row by row."""
    n, channels = x.shape
    width = c1 - c0
    head, whole = _line_span(x, c0, width)
    if head and width == channels and n > 1:
        _shifted_sums_wrapped(x, head, whole, shift, sums, squares)
        return
    rows = (x.reshape(-1),)
    parameters = (shift,)
    line = line_length(rows[0])
    part = np.empty(line, x.dtype)
    part_squares = np.empty(line, x.dtype)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        for j in range(head, whole, line):
            add_shifted_line_sums(rows, start * channels + c0 + j, channels, stop - start, parameters, j, sums,
                                  squares)
        _add_edge_sums(x, start, stop, c0, 0, head, shift, sums, squares, part, part_squares)
        _add_edge_sums(x, start, stop, c0, whole, width, shift, sums, squares, part, part_squares)


@jit
def _shifted_sums_wrapped(x, head, whole, shift, sums, squares):
    """_shifted_sums_by_lines over whole rows that start ``head`` channels before a line boundary.

    Then the end of each row and the start of the next share one cache line:
    it is summed like the others, with the per-channel values (and totals)
    wrapping round (_wrapped), and only the whole array's first and last
    partial lines are left to scalar code. Summing the partial lines of every
    row apart cost (4096, 1024) 0.53-0.55 ms against 0.45-0.48 without them.
    """
    n, channels = x.shape
    rows = (x.reshape(-1),)
    line = line_length(rows[0])
    parameters = (_wrapped(shift, line),)
    totals = np.zeros(channels + line)
    total_squares = np.zeros(channels + line)
    part = np.empty(line, x.dtype)
    part_squares = np.empty(line, x.dtype)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        for j in range(head, whole, line):
            add_shifted_line_sums(rows, start * channels + j, channels, stop - start, parameters, j, totals,
                                  total_squares)
        # the line ending row i and starting row i + 1, for i in start:stop short of the last row
        count = stop - start if stop < n else stop - start - 1
        add_shifted_line_sums(rows, start * channels + whole, channels, count, parameters, whole, totals,
                              total_squares)
    # the first row's start, before the first line boundary, and the last row's end
    _add_edge_sums(x, 0, 1, 0, 0, head, shift, totals, total_squares, part, part_squares)
    _add_edge_sums(x, n - 1, n, 0, whole, channels, shift, totals, total_squares, part, part_squares)
    _unwrap(totals, sums, head)
    _unwrap(total_squares, squares, head)


@inline_jit
def _unwrap(wrapped, totals, head):
    """totals = wrapped[:channels], plus the sums of the first ``head`` channels gathered past the end."""
    channels = totals.shape[0]
    for j in range(channels):
        totals[j] = wrapped[j]
    for j in range(head):
        totals[j] += wrapped[channels + j]


@inline_jit
def _add_edge_sums(x, start, stop, c0, j0, j1, shift, sums, squares, part, part_squares):
    """Add the sums over rows start:stop of channels c0 + j0 : c0 + j1 (part of a line), row by row."""
    count = j1 - j0
    part[:count] = 0.0
    part_squares[:count] = 0.0
    for i in range(start, stop):
        row = x[i, c0 + j0:c0 + j1]
        for j in range(count):
            term, square = _shifted_terms(row[j], shift[j0 + j])
            part[j] += term
            part_squares[j] += square
    for j in range(count):
        sums[j0 + j] += part[j]
        squares[j0 + j] += part_squares[j]


@jit
def _gradient_sums_by_lines(dy, x, c0, c1, centre, sum_dy, sum_dy_centred):
    """train_backward_2d's sums down each cache line of x's channels; partial lines row by row."""
    n, channels = x.shape
    width = c1 - c0
    head, whole = _line_span(x, c0, width)
    if head and width == channels and n > 1:
        _gradient_sums_wrapped(dy, x, head, whole, centre, sum_dy, sum_dy_centred)
        return
    rows = (dy.reshape(-1), x.reshape(-1))
    parameters = (centre,)
    line = line_length(rows[1])
    part = np.empty(line, x.dtype)
    part_centred = np.empty(line, x.dtype)
    for start in range(0, n, GRADIENT_BLOCK_ROWS):
        stop = min(n, start + GRADIENT_BLOCK_ROWS)
        for j in range(head, whole, line):
            add_gradient_line_sums(rows, start * channels + c0 + j, channels, stop - start, parameters, j, sum_dy,
                                   sum_dy_centred)
        _add_edge_gradient_sums(dy, x, start, stop, c0, 0, head, centre, sum_dy, sum_dy_centred, part, part_centred)
        _add_edge_gradient_sums(dy, x, start, stop, c0, whole, width, centre, sum_dy, sum_dy_centred, part,
                                part_centred)


@jit
def _gradient_sums_wrapped(dy, x, head, whole, centre, sum_dy, sum_dy_centred):
    """_gradient_sums_by_lines over whole rows, the rows' ends and starts in shared lines (_shifted_sums_wrapped)."""
    n, channels = x.shape
    rows = (dy.reshape(-1), x.reshape(-1))
    line = line_length(rows[1])
    parameters = (_wrapped(centre, line),)
    totals = np.zeros(channels + line)
    totals_centred = np.zeros(channels + line)
    part = np.empty(line, x.dtype)
    part_centred = np.empty(line, x.dtype)
    for start in range(0, n, GRADIENT_BLOCK_ROWS):
        stop = min(n, start + GRADIENT_BLOCK_ROWS)
        for j in range(head, whole, line):
            add_gradient_line_sums(rows, start * channels + j, channels, stop - start, parameters, j, totals,
                                   totals_centred)
        count = stop - start if stop < n else stop - start - 1
        add_gradient_line_sums(rows, start * channels + whole, channels, count, parameters, whole, totals,
                               totals_centred)
    _add_edge_gradient_sums(dy, x, 0, 1, 0, 0, head, centre, totals, totals_centred, part, part_centred)
    _add_edge_gradient_sums(dy, x, n - 1, n, 0, whole, channels, centre, totals, totals_centred, part, part_centred)
    _unwrap(totals, sum_dy, head)
    _unwrap(totals_centred, sum_dy_centred, head)


@inline_jit
def _add_edge_gradient_sums(dy, x, start, stop, c0, j0, j1, centre, sum_dy, sum_dy_centred, part, part_centred):
    """_add_edge_sums for the backward's sums."""
    count = j1 - j0
    part[:count] = 0.0
    part_centred[:count] = 0.0
    for i in range(start, stop):
        grad = dy[i, c0 + j0:c0 + j1]
        row = x[i, c0 + j0:c0 + j1]
        for j in range(count):
            term, centred = _gradient_terms(grad[j], row[j], centre[j0 + j])
            part[j] += term
            part_centred[j] += centred
    for j in range(count):
        sum_dy[j0 + j] += part[j]
        sum_dy_centred[j0 + j] += part_centred[j]


@jit
def _shifted_sums_by_rows(x, c0, c1, shift, sums, squares):
    """_shifted_sums_2d along the rows, with one accumulator per channel.

    Several rows are read per step (a fraction of the accumulator loads and
    stores, and of the per-row loop overhead):

    - four when the array is at most CACHED_BYTES: 30% faster than one on
      (1024, 100), and a little faster than eight on arrays that fit in L2;
    - one otherwise: on shorter rows of an array read from memory, four or
      eight rows at a time ran up to twice as slow ((65536, 256): 7.0 ms
      against 4.0), presumably as the streams and the accumulator stores
      collide in the low address bits.
    """
    n = x.shape[0]
    width = c1 - c0
    part = np.empty(width, x.dtype)
    part_squares = np.empty(width, x.dtype)
    step = _rows_per_step(x)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        part[:] = 0.0
        part_squares[:] = 0.0
        i = start
        if step == 4:
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
def _gradient_sums_by_rows(dy, x, c0, c1, centre, sum_dy, sum_dy_centred):
    """train_backward_2d's sums along the rows, in blocks as in _shifted_sums_by_rows."""
    n = x.shape[0]
    width = c1 - c0
    part = np.empty(width, x.dtype)
    part_centred = np.empty(width, x.dtype)
    step = _rows_per_step(x)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        part[:] = 0.0
        part_centred[:] = 0.0
        i = start
        if step == 4:
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
    if width * x.itemsize >= WIDE_ROW_BYTES:
        _gradient_sums_by_lines(dy, x, c0, c1, centre, sum_dy, sum_dy_centred)
    else:
        _gradient_sums_by_rows(dy, x, c0, c1, centre, sum_dy, sum_dy_centred)
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
