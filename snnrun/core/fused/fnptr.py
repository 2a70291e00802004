"""First-class function values made from addresses, so a kernel calls its compiled pieces
without linking them in (its compile time does not include theirs) and without Python
converting function objects on every call.

Python side: :func:`addresses` gives, for each (dispatcher, signature), the address of its
compiled code (numba's calling convention) and of its C wrapper, packed in an int64 array.
Kernel side: ``fn_at(addrs, k, FT)`` (an intrinsic) returns the k-th of them as a value of
first-class function type ``FT`` (a module-level ``types.FunctionType`` constant in the
kernel's source), which numba calls through the pointer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numba import types
from numba.core import cgutils
from numba.experimental.function_type import _get_jit_address, _get_wrapper_address
from numba.extending import intrinsic


def addresses(pairs: Sequence[tuple[Any, Any]]) -> np.ndarray:
    """``[jit_0, c_0, jit_1, c_1, ...]`` for (dispatcher, signature) pairs (compiled first)."""
    out = np.zeros(2 * len(pairs), np.int64)
    for k, (dispatcher, sig) in enumerate(pairs):
        dispatcher.compile(sig)
        out[2 * k] = _get_jit_address(dispatcher, sig)
        out[2 * k + 1] = _get_wrapper_address(dispatcher, sig)
    return out


@intrinsic
def fn_at(typingctx: Any, addrs: Any, k: Any, ftref: Any) -> Any:
    """The k-th function of ``addrs`` as a value of type ``ftref`` (a FunctionType)."""
    ft = ftref.instance_type if isinstance(ftref, types.TypeRef) else ftref
    if not isinstance(ft, types.FunctionType):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        arr_v, k_v, _ = args
        arr = context.make_array(sig.args[0])(context, builder, arr_v)
        i = builder.mul(k_v, k_v.type(2))
        jit = builder.load(cgutils.get_item_pointer(context, builder, sig.args[0], arr, [i]))
        c = builder.load(cgutils.get_item_pointer(context, builder, sig.args[0], arr, [builder.add(i, i.type(1))]))
        voidptr = context.get_value_type(types.voidptr)
        sfunc = cgutils.create_struct_proxy(ft)(context, builder)
        sfunc.c_addr = builder.inttoptr(c, voidptr)
        sfunc.py_addr = voidptr(None)
        sfunc.jit_addr = builder.inttoptr(jit, voidptr)
        return sfunc._getvalue()

    return ft(addrs, k, ftref), codegen


def type_source(t: Any) -> str:
    """Python source re-creating numba type ``t`` (arrays, scalars, function types)."""
    if isinstance(t, types.Array):
        return f"types.Array(types.{t.dtype}, {t.ndim}, {t.layout!r})"
    if isinstance(t, types.FunctionType):
        sig = t.signature
        args = ", ".join(type_source(a) for a in sig.args)
        return f"types.FunctionType(types.{sig.return_type}({args}))"
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return f"types.{t}"
    if t in (types.none, types.void):
        return "types.none"
    raise TypeError(f"no source for numba type {t}")
