"""Non-temporal ("streaming") stores: write a large output without reading it first.

An ordinary store to memory that is not in cache makes the CPU read the cache
line first (read-for-ownership), so a kernel that reads x and writes y moves
three arrays' worth of bytes, not two. A non-temporal store writes whole lines
straight to memory: on this machine the batch-norm normalising pass over a
64 MB array went from 4.5 ms to 3.9 ms, the speed of ``np.copyto`` (glibc's
``memcpy`` streams large copies the same way). The price is that y is not left
in cache, so only outputs larger than :data:`STREAM_MIN_BYTES` use this;
smaller ones are likely read from cache by the next layer.

numba has no such store, so :func:`line_writer` builds one: from a formula
(plain Python arithmetic, the same function the kernels run on scalars), an
intrinsic that computes one cache line of results in a vector register and
writes it with one LLVM ``store ..., !nontemporal``. Computing straight into
the register matters: the first version computed a row into an L1 scratch
array and streamed the scratch out, and the normalising pass of
(4096, 1024) float32 took 0.83 ms that way against 0.68-0.72 ms direct.
The formula's operations are the same, in the same order, as on scalars, and
``fastmath`` stays off, so results are bit-identical to ordinary stores.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import inline_jit
from .lanes import LINE_BYTES, Lanes, line_pointer, line_vector, load_line, same_float_dtype

STREAM_MIN_BYTES = 8 << 20  # outputs at least this large bypass the cache


def line_writer(formula):
    """An intrinsic ``write(out, start, inputs, j, parameters)``: one cache line of ``formula``.

    ``inputs`` is a tuple of arrays laid out like ``out``, read at ``start``;
    ``parameters`` a tuple of arrays read at ``j`` (per-channel values) or of
    scalars, repeated in every lane. The intrinsic computes
    ``formula(*inputs, *parameters)`` on ``lanes = LINE_BYTES / itemsize``
    values each and writes them to ``out[start : start + lanes]`` with one
    non-temporal store. ``out`` is 1-D and ``out[start]`` must begin a cache
    line (the callers check); the others may be unaligned. Every array and
    scalar has out's dtype. Build the tuples before a loop, not in it.
    """
    @intrinsic
    def write(typingctx, out, start, inputs, j, parameters):
        if not (isinstance(out, types.Array) and out.ndim == 1 and isinstance(inputs, types.BaseTuple)
                and isinstance(parameters, types.BaseTuple) and all(isinstance(t, types.Array) for t in inputs)
                and same_float_dtype(out.dtype, tuple(inputs) + tuple(parameters))):
            return None

        def codegen(context, builder, sig, args):
            out_type, _, input_types, _, parameter_types = sig.args
            target, target_index, input_values, index, parameter_values = args
            vector = line_vector(context, out_type.dtype)
            values = [load_line(context, builder, kind, builder.extract_value(input_values, k), target_index, vector)
                      for k, kind in enumerate(input_types)]
            values += [load_line(context, builder, kind, builder.extract_value(parameter_values, k), index, vector)
                       for k, kind in enumerate(parameter_types)]
            result = formula(*(Lanes(builder, value) for value in values)).value
            store = builder.store(result, line_pointer(context, builder, out_type, target, target_index, vector))
            store.align = LINE_BYTES
            store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
            return context.get_dummy_value()

        return types.void(out, types.intp, inputs, types.intp, parameters), codegen

    return write


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
def whole_lines(dst, first, stride, count):
    """Whether every range ``dst[first + i * stride : ... + count]`` is made of whole cache lines.

    Passes stream their rows out only then. A row that shares a line with the
    next one made streaming slower than ordinary stores, even with that line
    written by ordinary stores alone: a 64 MB pass of 400-byte rows took
    8.8-9.3 ms streamed against 3.7-4.5 ms with ordinary stores, and 1 KB
    rows that started 16 bytes into a line 5.8-6.0 ms against 4.0-4.1 ms
    (``python -m benchmarks.streaming_rows``).
    """
    itemsize = _itemsize(dst)
    return ((dst.ctypes.data + first * itemsize) % LINE_BYTES == 0 and (stride * itemsize) % LINE_BYTES == 0
            and (count * itemsize) % LINE_BYTES == 0)


@inline_jit
def line_span(dst, first, count):
    """(head, end) for ``dst[first : first + count]`` (1-D): its elements ``head : end`` are whole cache
    lines, those before ``head`` and from ``end`` on share a line with elements outside the range."""
    itemsize = _itemsize(dst)
    line = LINE_BYTES // itemsize
    head = min(count, (-(dst.ctypes.data + first * itemsize) % LINE_BYTES) // itemsize)
    return head, head + (count - head) // line * line


@inline_jit
def line_length(dst):
    """Elements of ``dst`` in one cache line: how far each ``line_writer`` call advances."""
    return LINE_BYTES // _itemsize(dst)


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
