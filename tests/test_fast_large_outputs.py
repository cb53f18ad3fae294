"""Large outputs on the fast engine: streaming stores and the buffer pool.

Outputs of at least ``STREAM_MIN_BYTES`` (8 MB) are written with non-temporal
stores, a cache line computed in a register at a time, and outputs of at least 1 MB come from the
buffer pool. Neither may change a value or hand out an array someone still
holds: these tests run the kernels on arrays just above the thresholds, with
row lengths that leave every possible misalignment, against the reference.
"""
from __future__ import annotations

import numpy as np
import pytest

from bnnet import fast
from bnnet.functional import batch_norm as reference_bn

F32, F64 = np.float32, np.float64
RTOL = {F64: 1e-10, F32: 1e-5}


@pytest.fixture
def kernels():
    with fast.use_engine("fast"):
        yield fast.ops()


@pytest.fixture
def pool():
    from bnnet.fast import buffers

    buffers.release()
    yield buffers
    buffers.set_limit(buffers.DEFAULT_LIMIT_MB)
    buffers.release()


# -- streaming stores -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [F32, F64])
def test_line_writer_streams_the_formula_one_line_at_a_time(kernels, rng, dtype):
    """Each call writes exactly one aligned line: inputs read where it writes, per-channel values
    where asked, a scalar in every lane, any of them unaligned; bit for bit the scalar formula."""
    import numba

    from bnnet.fast.lanes import LINE_BYTES
    from bnnet.fast.streaming import line_writer, store_fence

    def formula(x, centre, scale, offset):
        return (x - centre) * scale + offset

    write_line = line_writer(formula)

    @numba.njit
    def write(out, start, x, j, centre, scale, offset):
        write_line(out, start, (x,), j, (centre, scale, offset))
        store_fence()

    lanes = LINE_BYTES // np.dtype(dtype).itemsize
    centre = rng.standard_normal(4 * lanes + 3).astype(dtype)
    scale = rng.standard_normal(4 * lanes).astype(dtype)
    offset = dtype(0.25)
    raw = np.empty(8 * LINE_BYTES, np.uint8)
    out = raw[-raw.ctypes.data % LINE_BYTES:][:6 * LINE_BYTES].view(dtype)  # starts a line
    for shift in (0, 1, 3):  # where the input and the per-channel values start within a line
        x = rng.standard_normal(out.shape[0] + shift).astype(dtype)[shift:]
        for line in range(1, 5):
            for j in (0, 3 * lanes, lanes + shift):
                out[:] = -7.0
                start = line * lanes
                write(out, start, x, j, centre[shift:], scale, offset)
                expected = np.full_like(out, -7.0)
                expected[start:start + lanes] = formula(x[start:start + lanes], centre[shift + j:shift + j + lanes],
                                                        scale[j:j + lanes], offset)
                np.testing.assert_array_equal(out, expected, err_msg=f"shift {shift}, line {line}, j {j}")


def test_line_writer_refuses_operands_of_another_dtype(kernels):
    import numba

    from bnnet.fast.streaming import line_writer

    write_line = line_writer(lambda x, scale: x * scale)

    @numba.njit
    def write(out, x, scale):
        write_line(out, 0, (x,), 0, (scale,))

    with pytest.raises(numba.core.errors.TypingError):
        write(np.zeros(16, F32), np.zeros(16, F64), np.float32(1.0))
    with pytest.raises(numba.core.errors.TypingError):
        write(np.zeros(16, F32), np.zeros(16, F32), 1.0)  # a Python float is float64


def _assert_matches_reference(kernels, x, dtype, rng):
    channels = x.shape[1]
    gamma = rng.normal(1.0, 0.3, channels).astype(dtype)
    beta = rng.normal(0.0, 0.3, channels).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, cache = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
    y_ref, cache_ref = reference_bn.batch_norm_forward(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.max(np.abs(y_ref)))
    dx, dgamma, dbeta = kernels.batch_norm_backward(dy, cache)
    dx_ref, dgamma_ref, dbeta_ref = reference_bn.batch_norm_backward(dy, cache_ref)
    terms = np.max(np.abs(dy)) * np.max(np.abs(cache_ref.inv_std * gamma))
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL[dtype], atol=RTOL[dtype] * terms)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.max(np.abs(dgamma_ref)))
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.max(np.abs(dbeta_ref)))


# Just above 8 MB; (N, C) and (N, C, S). Odd widths leave rows at every alignment, so
# they take the ordinary stores; rows of whole cache lines are streamed, a line at a time
# (1040 float32 values: 65 lines).
# Rows under 4 KB in an array this large are summed one at a time; longer ones by lines of
# channels in the forward (with 7 channels past the last whole line at width 1031), four rows
# at a time in the backward.
LARGE_SHAPES = {F32: [(2100, 1031), (41, 13, 4099), (2032, 1040), (40, 13, 4112), (8300, 257)],
                F64: [(1030, 1031), (21, 13, 4099), (1016, 1040), (20, 13, 4104), (4150, 257)]}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_streamed_batch_norm_matches_reference(kernels, rng, dtype, threads):
    import numba

    from bnnet.fast.streaming import STREAM_MIN_BYTES

    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for shape in LARGE_SHAPES[dtype]:
            x = rng.normal(0.5, 2.0, size=shape).astype(dtype)
            assert x.nbytes >= STREAM_MIN_BYTES
            _assert_matches_reference(kernels, x, dtype, rng)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_one_thread_streams_outputs_placed_like_their_inputs(kernels, rng, dtype):
    """On one thread a large (N, C) output starts half a page from its input, at the same place
    within a cache line, and the pass streams lines that run across row ends; every offset gives
    the reference's values."""
    import numba

    from bnnet.fast import buffers

    itemsize = np.dtype(dtype).itemsize
    shape = ((8 << 20) // (1030 * itemsize) + 1, 1030)  # just over 8 MB; rows not whole lines
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for offset in sorted({0, itemsize, 16, 64 - itemsize}):
            raw = np.empty(int(np.prod(shape)) * itemsize + 128, np.uint8)
            x = raw[-raw.ctypes.data % 64 + offset:][:int(np.prod(shape)) * itemsize].view(dtype).reshape(shape)
            x[...] = rng.normal(0.5, 2.0, size=shape)
            y, cache = kernels.batch_norm_forward(x, np.ones(shape[1], dtype), np.zeros(shape[1], dtype), 1e-5)
            assert (y.ctypes.data - x.ctypes.data) % buffers.PAGE_BYTES == buffers.PAGE_BYTES // 2
            dx, _, _ = kernels.batch_norm_backward(np.ones_like(x), cache)
            assert (dx.ctypes.data - x.ctypes.data) % buffers.PAGE_BYTES == buffers.PAGE_BYTES // 2
            del y, cache, dx
            _assert_matches_reference(kernels, x, dtype, rng)
    finally:
        numba.set_num_threads(previous)


def test_whole_lines_decides_which_rows_are_streamed(kernels):
    import numba

    from bnnet.fast.streaming import whole_lines

    @numba.njit
    def check(dst, first, stride, count):
        return whole_lines(dst, first, stride, count)

    raw = np.empty(4096 + 64, np.uint8)
    start = -raw.ctypes.data % 64
    aligned = raw[start:start + 4096].view(F32)  # 1024 values from a line boundary
    assert check(aligned, 0, 256, 256) and check(aligned, 16, 256, 32)
    assert not check(aligned, 4, 256, 256)  # first row starts mid-line
    assert not check(aligned, 0, 100, 100)  # rows of 400 bytes share lines
    assert not check(aligned, 0, 256, 250)  # the row ends mid-line
    assert not check(aligned[1:], 0, 256, 256)  # the array itself starts mid-line


# -- the buffer pool --------------------------------------------------------------
def test_pool_arrays_start_on_a_cache_line(pool):
    arrays = [pool.empty((512, 1024), F32), pool.empty((700, 1000), F64)]
    with pool.bypassed():
        arrays.append(pool.empty((512, 1024), F32))
    pool.set_limit(0)
    arrays.append(pool.empty((512, 1024), F32))
    for array in arrays:
        assert array.ctypes.data % pool.ALIGN_BYTES == 0 and array.flags.c_contiguous
        array[...] = 1.0  # the whole range is usable


def test_large_pool_arrays_get_their_own_huge_page_mapping(pool, monkeypatch):
    """Arrays of 2 MB or more start on a 2 MB boundary of a fresh mapping (Linux); elsewhere, a cache line."""
    big = pool.empty((1024, 1024), F32)  # 4 MB
    big[...] = 1.0
    small = pool.empty((512, 768), F32)  # 1.5 MB: pooled, from malloc as before
    assert small.ctypes.data % pool.ALIGN_BYTES == 0
    if pool._HUGE_PAGES_ADVISABLE:
        assert big.ctypes.data % pool.HUGE_PAGE_BYTES == 0
        address = big.ctypes.data
        del big
        assert pool.empty((1024, 1024), F32).ctypes.data == address  # reused like any pooled array
    monkeypatch.setattr(pool, "_HUGE_PAGES_ADVISABLE", False)  # another platform: malloc, aligned to a line
    other = pool.empty((1024, 1024), F64)
    assert other.ctypes.data % pool.ALIGN_BYTES == 0 and other.flags.c_contiguous and other.flags.writeable
    other[...] = 2.0


def test_pool_reuses_a_buffer_nobody_holds(pool):
    first = pool.empty((512, 1024), F32)
    address = first.ctypes.data
    del first
    again = pool.empty((512, 1024), F32)
    assert again.ctypes.data == address
    assert pool.held_bytes() == again.nbytes


def test_pool_never_hands_out_a_held_buffer_or_one_a_view_looks_into(pool):
    held = pool.empty((512, 1024), F32)
    view = pool.empty((512, 1024), F32)[10:20]
    fresh = pool.empty((512, 1024), F32)
    assert len({held.ctypes.data, view.base.ctypes.data, fresh.ctypes.data}) == 3


def test_pool_matches_shape_and_dtype(pool):
    first = pool.empty((512, 1024), F32)
    address = first.ctypes.data
    del first
    assert pool.empty((1024, 512), F32).ctypes.data != address
    assert pool.empty((512, 1024), F64).ctypes.data != address


def test_pool_places_arrays_at_the_page_offset_asked_and_matches_it_on_reuse(pool):
    for offset in (0, 16, 2048 + 16, 4096 - 8):
        for shape in ((512, 1024), (1024, 1024)):  # 2 MB and 4 MB: malloc and huge-page mapping
            array = pool.empty(shape, F64 if offset % 8 == 0 and offset else F32, offset)
            assert array.ctypes.data % pool.PAGE_BYTES == offset
            array[...] = 1.0  # the whole range is usable
    pool.release()
    first = pool.empty((512, 1024), F32, 16)
    address = first.ctypes.data
    del first
    assert pool.empty((512, 1024), F32, 2064).ctypes.data % pool.PAGE_BYTES == 2064  # not the free one at 16
    assert pool.empty((512, 1024), F32, 16).ctypes.data == address


def test_output_page_offset_is_half_a_page_away_on_the_line_offset_asked(pool):
    raw = np.empty(3 * pool.PAGE_BYTES, np.uint8)
    page = raw[-raw.ctypes.data % pool.PAGE_BYTES:]
    x = page[100 * 4:].view(F32)  # 400 bytes into a page: 16 into a line
    assert pool.output_page_offset(x, same_line_offset=True) == 400 + 2048
    assert pool.output_page_offset(x, same_line_offset=False) == 384 + 2048
    assert pool.output_page_offset(page[3008:3408].view(F32), same_line_offset=True) == (3008 + 2048) % 4096
    odd = page[1:1 + 4 * 100].view(F32)  # not on a whole item: its outputs go on a line boundary
    assert pool.output_page_offset(odd, same_line_offset=True) == 2048


def test_pool_leaves_small_arrays_to_numpy(pool):
    small = pool.empty((10, 10), F32)
    assert small.shape == (10, 10) and pool.held_bytes() == 0


def test_pool_keeps_under_its_limit_and_can_be_turned_off(pool):
    pool.set_limit(5)  # MB: room for two 2 MB buffers
    arrays = [pool.empty((512, 1024), F32) for _ in range(4)]
    assert pool.held_bytes() <= 5 * 2**20
    assert all(a.shape == (512, 1024) for a in arrays)
    pool.set_limit(0)
    assert pool.held_bytes() == 0
    pool.empty((512, 1024), F32)
    assert pool.held_bytes() == 0


def test_pool_limit_from_the_environment_is_checked(pool, monkeypatch):
    monkeypatch.setattr(pool, "_limit_bytes", None)
    monkeypatch.setenv(pool.ENV_VAR, "lots")
    with pytest.raises(ValueError, match="BNNET_BUFFER_POOL_MB expected a number of megabytes.*got 'lots'"):
        pool.empty((512, 1024), F32)
    monkeypatch.setenv(pool.ENV_VAR, "-1")
    with pytest.raises(ValueError, match="expected a number of megabytes >= 0, got '-1'"):
        pool.empty((512, 1024), F32)
    with pytest.raises(ValueError, match="set_limit expected megabytes >= 0, got -2"):
        pool.set_limit(-2)


def test_outputs_a_caller_keeps_are_never_overwritten(kernels, pool, rng):
    """Two forwards and backwards on the same large shape: the first results stay intact."""
    shape = (600, 1000)  # 2.4 MB in float32: pooled
    x1, x2 = (rng.normal(size=shape).astype(F32) for _ in range(2))
    dy = rng.standard_normal(shape).astype(F32)
    y1, cache1 = kernels.batch_norm_forward(x1, None, None, 1e-5)
    kept_y = y1.copy()
    dx1 = kernels.batch_norm_backward(dy, cache1)[0]
    kept_dx = dx1.copy()
    y2, cache2 = kernels.batch_norm_forward(x2, None, None, 1e-5)
    dx2 = kernels.batch_norm_backward(dy, cache2)[0]
    np.testing.assert_array_equal(y1, kept_y)
    np.testing.assert_array_equal(dx1, kept_dx)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(dx1, dx2)
    del y1, cache1, dx1
    y3, _ = kernels.batch_norm_forward(x1, None, None, 1e-5)
    np.testing.assert_array_equal(y3, kept_y)  # a reused buffer is fully overwritten


def test_bypassed_gives_fresh_arrays_and_leaves_the_pool_as_it_was(pool):
    first = pool.empty((512, 1024), F32)
    address = first.ctypes.data
    del first
    with pool.bypassed():
        fresh = pool.empty((512, 1024), F32)
        assert fresh.ctypes.data != address and pool.held_bytes() == fresh.nbytes
    assert pool.empty((512, 1024), F32).ctypes.data == address
