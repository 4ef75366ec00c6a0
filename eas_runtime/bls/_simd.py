"""Two numba intrinsics: add a pair of doubles to a row of an ``(n, 2)`` array in one 128-bit
load-add-store (LLVM does not pair the two scalar additions of the fold by itself), and an
atomic counter from which threads take their next piece of work."""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def add_pair(typingctx, rows, k, a, b):
    """``rows[k, 0] += a; rows[k, 1] += b`` for a C-contiguous float64 ``rows`` of shape (n, 2).

    No bounds check: ``k`` (an integer) must be a valid row.
    """
    if not (isinstance(rows, types.Array) and rows.dtype == types.float64 and rows.ndim == 2
            and rows.layout == "C" and isinstance(k, types.Integer)):
        return None
    sig = types.void(rows, k, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        rows_v, k_v, a_v, b_v = args
        array = context.make_array(signature.args[0])(context, builder, rows_v)
        i64 = ir.IntType(64)
        if k_v.type.width < 64:
            k_v = (builder.sext if signature.args[1].signed else builder.zext)(k_v, i64)
        pointer = builder.gep(array.data, [builder.mul(k_v, ir.Constant(i64, 2))])
        pair = ir.VectorType(ir.DoubleType(), 2)
        pointer = builder.bitcast(pointer, pair.as_pointer())
        value = ir.Constant(pair, ir.Undefined)
        value = builder.insert_element(value, a_v, ir.Constant(ir.IntType(32), 0))
        value = builder.insert_element(value, b_v, ir.Constant(ir.IntType(32), 1))
        builder.store(builder.fadd(builder.load(pointer, align=8), value), pointer, align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fetch_add(typingctx, counter):
    """Atomically ``counter[0] += 1``; returns the value before (a shared work counter).

    ``counter``: a C-contiguous int64 array.
    """
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", array.data, ir.Constant(ir.IntType(64), 1), "seq_cst")

    return sig, codegen
