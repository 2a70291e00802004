"""Folded model code -> source text of each backend.

* :class:`ScalarPrinter`: one neuron / synapse at a time, float32 throughout (the fused
  numba kernel; literals as ``np.float32``, run-time constants as named locals).
* :class:`CudaPrinter`: the scalar source for numba-cuda kernels (``math`` functions).
* :class:`TorchPrinter`: the same statements vectorised over tensors: ``if`` on run-time
  conditions becomes ``torch.where`` per assigned variable (both branches are computed,
  the condition selects), ``and/or/not`` become ``& | ~``.

Both print every operation in the order written, so the two backends round alike; the
functions of :data:`~snnrun.core.models.ir.FUNCTIONS` map to ``np.exp`` / ``torch.exp``
etc. (``min``/``max``/``clip`` propagate NaN in both).
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

import numpy as np

from .ir import Assign, Bin, BoolOp, Cmp, Cond, Expr, Lit, Num, Sym, Un

_AUG = {"+=": "+", "-=": "-", "*=": "*", "/=": "/"}


def f32_text(value: float) -> str:
    """``value`` rounded to float32, as an exact Python float literal."""
    v = float(np.float32(value))
    if v != v:
        return "float('nan')"
    if v in (float("inf"), float("-inf")):
        return f"float('{v}')"
    return repr(v)


# ----------------------------------------------------------------------------- scalar
class ScalarPrinter:
    """Scalar float32 source.  ``names`` maps symbols to code (``v`` -> ``v``,
    ``I`` -> ``ie[b, j]``); ``const`` names a run-time constant (``Num.data``)."""

    def __init__(self, names: dict[str, str], const: Callable[[float], str]):
        self.names = names
        self.const = const

    def expr(self, e: Expr) -> str:
        if isinstance(e, Num):
            return self.const(e.value) if e.data else f"np.float32({f32_text(e.value)})"
        if isinstance(e, Lit):
            return repr(bool(e.value))
        if isinstance(e, Sym):
            return self.names.get(e.name, e.name)
        if isinstance(e, Un):
            return f"(not {self.expr(e.a)})" if e.op == "not" else f"(-{self.expr(e.a)})"
        if isinstance(e, (Bin, Cmp, BoolOp)):
            return self.binop(e.op, self.expr(e.a), self.expr(e.b))
        if isinstance(e, Cond):
            return f"({self.expr(e.a)} if {self.expr(e.test)} else {self.expr(e.b)})"
        return self.call(e.fn, [self.expr(x) for x in e.args])

    def binop(self, op: str, a: str, b: str) -> str:
        return f"({a} {op} {b})"

    def augmented(self, name: str, op: str, value: str) -> str:
        """``name op= value`` as an assignment."""
        return f"{name} = {name} {op} {value}"

    def call(self, fn: str, a: list) -> str:
        """A function of :data:`~snnrun.core.models.ir.FUNCTIONS` on printed arguments."""
        if fn in ("exp", "log", "sqrt", "tanh", "floor", "ceil"):
            return f"np.{fn}({a[0]})"
        if fn == "abs":
            return f"abs({a[0]})"
        if fn in ("min", "max"):
            return f"np.{'minimum' if fn == 'min' else 'maximum'}({a[0]}, {a[1]})"
        return f"np.minimum(np.maximum({a[0]}, {a[1]}), {a[2]})"  # clip

    def block(self, stmts: tuple, assign: Optional[Callable[[Assign, str], list]] = None) -> list[str]:
        """Lines of ``stmts``; ``assign(stmt, value_code)`` may take over an assignment
        (returning its lines) or return ``None`` for the plain ``x = ...``."""
        out: list[str] = []
        for s in stmts:
            if isinstance(s, Assign):
                value = self.expr(s.value)
                custom = assign(s, value) if assign else None
                if custom is not None:
                    out.extend(custom)
                    continue
                name = self.names.get(s.target, s.target)
                out.append(f"{name} = {value}" if s.op == "=" else self.augmented(name, _AUG[s.op], value))
            else:
                out.append(f"if {self.expr(s.test)}:")
                out.extend("    " + line for line in (self.block(s.body, assign) or ["pass"]))
                if s.orelse:
                    out.append("else:")
                    out.extend("    " + line for line in self.block(s.orelse, assign))
        return out


class CudaPrinter(ScalarPrinter):
    """Scalar source for numba-cuda kernels, which have no numpy ufuncs: ``math.exp`` etc.
    (float32 in, float32 out on the device) and the kernel module's NaN-propagating
    ``_fmin`` / ``_fmax`` (as ``np.minimum`` / ``np.maximum``).  Products are the module's
    ``_mul`` (libdevice's ``fmul_rn``): NVVM fuses ``a * b + c`` into one FMA otherwise, which
    rounds once where the other backends round twice."""

    def binop(self, op: str, a: str, b: str) -> str:
        return f"_mul({a}, {b})" if op == "*" else super().binop(op, a, b)

    def augmented(self, name: str, op: str, value: str) -> str:
        return f"{name} = {self.binop(op, name, value)}"

    def call(self, fn: str, a: list) -> str:
        if fn in ("exp", "log", "sqrt", "tanh", "floor", "ceil"):
            return f"np.float32(math.{fn}({a[0]}))"
        if fn == "abs":
            return f"abs({a[0]})"
        if fn in ("min", "max"):
            return f"_f{fn}({a[0]}, {a[1]})"
        return f"_fmin(_fmax({a[0]}, {a[1]}), {a[2]})"  # clip


# ----------------------------------------------------------------------------- torch
class TorchPrinter:
    """Vectorised torch source.  ``env`` maps symbols to the Python name holding their
    current value (updated as statements rebind them); ``scalar`` lists symbols that are
    Python numbers rather than tensors."""

    _ids = itertools.count()

    def __init__(self, env: dict[str, str], like: str):
        self.env = dict(env)
        self.like = like  # a tensor of the right shape, for constants assigned to variables

    def fresh(self, base: str) -> str:
        return f"{base}_{next(self._ids)}"

    def expr(self, e: Expr) -> tuple[str, bool]:
        """(code, is_tensor)."""
        if isinstance(e, Num):
            return f32_text(e.value), False
        if isinstance(e, Lit):
            return repr(bool(e.value)), False
        if isinstance(e, Sym):
            return self.env.get(e.name, e.name), True
        if isinstance(e, Un):
            a, t = self.expr(e.a)
            return (f"(~{a})" if t else f"(not {a})", t) if e.op == "not" else (f"(-{a})", t)
        if isinstance(e, Bin) or isinstance(e, Cmp):
            (a, ta), (b, tb) = self.expr(e.a), self.expr(e.b)
            return f"({a} {e.op} {b})", ta or tb
        if isinstance(e, BoolOp):
            (a, ta), (b, tb) = self.expr(e.a), self.expr(e.b)
            return f"({a} {'&' if e.op == 'and' else '|'} {b})", ta or tb
        if isinstance(e, Cond):
            (c, _), (a, ta), (b, tb) = self.expr(e.test), self.expr(e.a), self.expr(e.b)
            return f"torch.where({c}, {a}, {b})", True
        args = [self.expr(x) for x in e.args]
        if e.fn in ("exp", "log", "sqrt", "tanh", "abs", "floor", "ceil"):
            return f"torch.{e.fn}({args[0][0]})", True
        if e.fn == "clip":
            (x, _), (lo, tl), (hi, th) = args
            if not tl and not th:
                return f"torch.clamp({x}, {lo}, {hi})", True
            return f"torch.minimum(torch.maximum({x}, {self._t(lo, tl)}), {self._t(hi, th)})", True
        (a, ta), (b, tb) = args
        key = "max" if e.fn == "min" else "min"
        if ta and tb:
            return f"torch.{'minimum' if e.fn == 'min' else 'maximum'}({a}, {b})", True
        x, c = (a, b) if ta else (b, a)
        return f"torch.clamp({x}, {key}={c})", True

    def _t(self, code: str, is_tensor: bool) -> str:
        return code if is_tensor else f"torch.full_like({self.like}, {code})"

    def value(self, e: Expr) -> str:
        """An expression as a tensor (constants broadcast to ``like``)."""
        return self._t(*self.expr(e))

    def block(self, stmts: tuple, mask: Optional[str] = None,
              assign: Optional[Callable[[Assign, str, Optional[str]], Optional[list]]] = None) -> list[str]:
        """Lines computing ``stmts`` under the boolean tensor ``mask`` (None: everywhere);
        rebinds ``self.env``.  ``assign(stmt, value_code, mask)`` may take over an assignment."""
        out: list[str] = []
        for s in stmts:
            if isinstance(s, Assign):
                value, is_t = self.expr(s.value)
                custom = assign(s, value, mask) if assign else None
                if custom is not None:
                    out.extend(custom)
                    continue
                old = self.env.get(s.target)
                if s.op != "=":
                    value = f"({old} {_AUG[s.op]} {value})"
                    is_t = True
                new = self.fresh(s.target)
                if mask is not None and old is not None:
                    out.append(f"{new} = torch.where({mask}, {value}, {old})")
                else:
                    out.append(f"{new} = {self._t(value, is_t)}")
                self.env[s.target] = new
                continue
            test, _ = self.expr(s.test)
            cond = self.fresh("c")
            out.append(f"{cond} = {test}" if mask is None else f"{cond} = {mask} & {test}")
            out.extend(self.block(s.body, cond, assign))
            if s.orelse:
                other = self.fresh("c")
                out.append(f"{other} = ~{cond}" if mask is None else f"{other} = {mask} & ~{cond}")
                out.extend(self.block(s.orelse, other, assign))
        return out
