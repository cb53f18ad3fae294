"""Non-temporal ("streaming") stores: write a large output without reading it first.

An ordinary store to memory that is not in cache makes the CPU read the cache
line first (read-for-ownership), so a kernel that reads x and writes y moves
three arrays' worth of bytes, not two. A non-temporal store writes whole lines
straight to memory: on this machine the batch-norm normalising pass over a
64 MB array went from 4.5 ms to 3.9 ms, the speed of ``np.copyto`` (glibc's
``memcpy`` streams large copies the same way). The price is that y is not left
in cache, so only outputs larger than :data:`STREAM_MIN_BYTES` use this;
smaller ones are likely read from cache by the next layer.

numba has no such store, so :func:`_store_vector` emits one LLVM instruction
(``store <8 x float> ..., align 32, !nontemporal``). Kernels compute a row or
run into a small scratch array (it stays in L1) and :func:`stream_copy` writes
it out, scalar stores up to the first 32-byte boundary and at the tail.
The values written are the scratch's own: results are bit-identical to
ordinary stores.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import inline_jit

VECTOR_BYTES = 32  # one AVX register; the store needs this alignment
LINE_BYTES = 64  # one cache line: streaming stores only ever write whole lines
SEGMENT_BYTES = 1024  # a long row is computed and streamed out this much at a time
STREAM_MIN_BYTES = 8 << 20  # outputs at least this large bypass the cache


@intrinsic
def _store_vector(typingctx, src, src_index, dst, dst_index):
    """dst[dst_index : dst_index + lanes] = src[src_index : ...], one aligned non-temporal store.

    ``lanes`` is ``VECTOR_BYTES`` / itemsize; ``dst[dst_index]`` must be
    32-byte aligned (the caller checks) and both ranges in bounds.
    """
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and isinstance(src.dtype, types.Float)):
        return None
    signature = types.void(src, src_index, dst, dst_index)

    def codegen(context, builder, sig, args):
        source, source_index, target, target_index = args
        element = context.get_value_type(sig.args[0].dtype)
        vector = ir.VectorType(element, VECTOR_BYTES // context.get_abi_sizeof(element))

        def vector_pointer(array_type, array, index):
            view = context.make_array(array_type)(context, builder, array)
            pointer = cgutils.get_item_pointer(context, builder, array_type, view, [index], wraparound=False)
            return builder.bitcast(pointer, vector.as_pointer())

        values = builder.load(vector_pointer(sig.args[0], source, source_index))
        values.align = context.get_abi_sizeof(element)
        store = builder.store(values, vector_pointer(sig.args[2], target, target_index))
        store.align = VECTOR_BYTES
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _itemsize(typingctx, array):
    """The array's item size in bytes, as a compile-time constant (divisions by it become shifts)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, sig, args):
        size = context.get_abi_sizeof(context.get_value_type(sig.args[0].dtype))
        return context.get_constant(types.intp, size)

    return types.intp(array), codegen


@inline_jit
def stream_copy(src, dst, start):
    """dst[start : start + len(src)] = src, with non-temporal stores for the whole cache lines.

    dst is 1-D, contiguous and aligned to its item size (every array NumPy
    allocates is), so whole elements reach the next 64-byte boundary. Partial
    lines at either end get ordinary stores; the kernels call this only for
    rows of whole lines (:func:`whole_lines`), where there are none.
    """
    count = src.shape[0]
    itemsize = _itemsize(dst)
    lanes = VECTOR_BYTES // itemsize
    misaligned = (dst.ctypes.data + start * itemsize) % LINE_BYTES
    head = min(count, ((LINE_BYTES - misaligned) % LINE_BYTES) // itemsize)
    for j in range(head):
        dst[start + j] = src[j]
    j = head
    while j + 2 * lanes <= count:  # one whole line: two vector stores
        _store_vector(src, j, dst, start + j)
        _store_vector(src, j + lanes, dst, start + j + lanes)
        j += 2 * lanes
    for k in range(j, count):
        dst[start + k] = src[k]


@inline_jit
def whole_lines(dst, first, stride, count):
    """Whether every range ``dst[first + i * stride : ... + count]`` is made of whole cache lines.

    Passes stream their rows out only then. A row that shares a line with the
    next one made streaming slower than ordinary stores, even with that line
    written by ordinary stores alone: a 64 MB pass of 400-byte rows took
    10.2 ms streamed against 4.1 ms with ordinary stores, and 1 KB rows that
    started 48 bytes into a line 9.5 ms against 3.0 ms aligned
    (``python -m benchmarks.streaming_rows``).
    """
    itemsize = _itemsize(dst)
    return ((dst.ctypes.data + first * itemsize) % LINE_BYTES == 0 and (stride * itemsize) % LINE_BYTES == 0
            and (count * itemsize) % LINE_BYTES == 0)


@inline_jit
def segment_length(dst):
    """Elements of ``dst`` per streamed segment: SEGMENT_BYTES worth, whole cache lines.

    A (16384, 1024) pass streamed one 4 KB row at a time took 9.4 ms, 7.0 ms
    in 1 KB segments: the row's scratch and the four per-channel vectors the
    backward reads no longer fit in L1 together.
    """
    return SEGMENT_BYTES // _itemsize(dst)


@intrinsic
def store_fence(typingctx):
    """Order the streaming stores before anything this thread does next (x86 ``sfence``).

    Streaming stores are weakly ordered; the fence makes them visible before a
    parallel region's threads report that they are done.
    """
    def codegen(context, builder, sig, args):
        if "x86" in builder.module.triple or "i686" in builder.module.triple:
            sfence = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                   "llvm.x86.sse.sfence")
            builder.call(sfence, [])
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen
