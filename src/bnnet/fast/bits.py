"""A float32 read from its bit pattern, inside compiled code (numba has no scalar bit cast).

:func:`float32_from_bits` is one LLVM ``bitcast i32 -> float``: no memory
round trip, so a loop that builds powers of two from exponent bits still
vectorises (an array ``.view`` in the loop, the alternative, does not).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def float32_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bit pattern is ``bits`` (an integer, taken as int32)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen
