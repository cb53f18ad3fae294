"""One cache line of values in a vector register: code generation shared by the line intrinsics.

numba's loops vectorise on their own, but some patterns they cannot express:
a non-temporal store (streaming.py), or sums that stay in registers while a
loop walks down a column of rows (line_sums.py). Those are numba intrinsics
that emit LLVM vector instructions directly, one cache line (LINE_BYTES) of
values per vector; this module holds what they share.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils

LINE_BYTES = 64  # one cache line


class Lanes:
    """A vector value while code is generated: ``+``, ``-`` and ``*`` emit LLVM vector instructions.

    A formula written as plain Python arithmetic (``(x - centre) * scale +
    offset``) runs unchanged on Lanes, emitting the same operations in the same
    order as numba does for scalars: with ``fastmath`` off, results are equal
    bit for bit.
    """

    __slots__ = ("builder", "value")

    def __init__(self, builder, value):
        self.builder = builder
        self.value = value

    def __add__(self, other):
        return Lanes(self.builder, self.builder.fadd(self.value, other.value))

    def __sub__(self, other):
        return Lanes(self.builder, self.builder.fsub(self.value, other.value))

    def __mul__(self, other):
        return Lanes(self.builder, self.builder.fmul(self.value, other.value))


def line_vector(context, dtype) -> ir.VectorType:
    """The LLVM vector type that holds one cache line of ``dtype`` values."""
    element = context.get_value_type(dtype)
    return ir.VectorType(element, LINE_BYTES // context.get_abi_sizeof(element))


def line_pointer(context, builder, array_type, array, index, vector):
    """Pointer to ``array[index]`` (1-D), typed as a pointer to ``vector``; no bounds check."""
    view = context.make_array(array_type)(context, builder, array)
    pointer = cgutils.get_item_pointer(context, builder, array_type, view, [index], wraparound=False)
    return builder.bitcast(pointer, vector.as_pointer())


def load_line(context, builder, operand_type, operand, index, vector):
    """``operand[index : index + lanes]`` (an array, any alignment), or a scalar operand in every lane."""
    if isinstance(operand_type, types.Array):
        loaded = builder.load(line_pointer(context, builder, operand_type, operand, index, vector))
        loaded.align = context.get_abi_sizeof(vector.element)
        return loaded
    broadcast = ir.Constant(vector, ir.Undefined)
    for lane in range(vector.count):
        broadcast = builder.insert_element(broadcast, operand, ir.Constant(ir.IntType(32), lane))
    return broadcast


def same_float_dtype(dtype, operands) -> bool:
    """Whether every operand (array or scalar) has the float type ``dtype``: no conversion slips in unseen."""
    return isinstance(dtype, types.Float) and all(
        (operand.dtype if isinstance(operand, types.Array) else operand) == dtype for operand in operands)
