"""The fused backend's calling convention: every compiled piece has one signature,

    piece(t, learning, seed, b0, b1, P, S, I, a)

``t`` the step, ``learning`` the switch, ``seed`` the presentation's seed, ``[b0, b1)`` the
samples to run, ``P`` the data addresses and ``S`` the shapes (``[n, 4]``) of every array of
the network's frame, ``I`` its integers, ``a`` this call's slots in them.  A piece views its
arrays with :func:`view` (no copy, no reference counting).  With one signature, the loop
that calls the pieces (``lib.run``) is compiled once per installation and calls each piece
through its address (:func:`call`): a new network compiles only its own pieces.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numba import types
from numba.core import cgutils
from numba.experimental.function_type import _get_jit_address
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

I64_1 = types.Array(types.int64, 1, "C")
I64_2 = types.Array(types.int64, 2, "C")
ABI = types.none(types.int64, types.boolean, types.int64, types.int64, types.int64, I64_1, I64_2, I64_1, I64_1)

#: array kinds of a frame: name -> (numba dtype, ndim)
KINDS = {f"{name}{nd}": (dt, nd) for name, dt in (("f32_", types.float32), ("i32_", types.int32), ("i64_", types.int64),
                                                 ("u8_", types.uint8), ("b_", types.boolean))
         for nd in (1, 2, 3, 4)}


def addresses(dispatchers: Sequence[Any]) -> np.ndarray:
    """The addresses of the pieces' compiled code (compiled for :data:`ABI` first)."""
    out = np.zeros(len(dispatchers), np.int64)
    for k, dispatcher in enumerate(dispatchers):
        dispatcher.compile(ABI)
        out[k] = _get_jit_address(dispatcher, ABI)
    return out


@intrinsic
def view(typingctx: Any, P: Any, S: Any, k: Any, kind: Any) -> Any:
    """Array ``k`` of the frame as a C-contiguous array of ``kind`` (e.g. ``"f32_2"``)."""
    if not isinstance(kind, types.StringLiteral) or kind.literal_value not in KINDS:
        return None
    dtype, ndim = KINDS[kind.literal_value]
    arrty = types.Array(dtype, ndim, "C")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        p_v, s_v, k_v, _ = args
        parr = context.make_array(sig.args[0])(context, builder, p_v)
        sarr = context.make_array(sig.args[1])(context, builder, s_v)
        addr = builder.load(cgutils.get_item_pointer(context, builder, sig.args[0], parr, [k_v]))
        shape = [builder.load(cgutils.get_item_pointer(context, builder, sig.args[1], sarr,
                                                       [k_v, context.get_constant(types.intp, d)]))
                 for d in range(ndim)]
        llty = context.get_data_type(dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(llty))
        strides = [itemsize] * ndim
        for d in range(ndim - 2, -1, -1):
            strides[d] = builder.mul(strides[d + 1], shape[d + 1])
        ary = context.make_array(arrty)(context, builder)
        populate_array(ary, data=builder.inttoptr(addr, llty.as_pointer()), shape=shape, strides=strides,
                       itemsize=itemsize, meminfo=None)
        return ary._getvalue()

    return arrty(P, S, k, kind), codegen


@intrinsic
def call(typingctx: Any, addr: Any, t: Any, learning: Any, seed: Any, b0: Any, b1: Any, P: Any, S: Any, I: Any,
         a: Any) -> Any:
    """Call the piece at ``addr`` (numba's calling convention, :data:`ABI`)."""
    argtys = ABI.args

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vals = [context.cast(builder, v, ty, want) for v, ty, want in zip(args[1:], sig.args[1:], argtys)]
        fnty = context.call_conv.get_function_type(types.none, argtys)
        status, _ = context.call_conv.call_function(builder, builder.inttoptr(args[0], fnty.as_pointer()),
                                                    types.none, argtys, vals)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(addr, t, learning, seed, b0, b1, P, S, I, a), codegen
