"""Library calls lifted out of a neuron cell, so that the loop over neurons vectorises.

A compiled loop over neurons vectorises (LLVM: SIMD over ``j``) only when its body calls no
function that has no vector form -- ``exp``, ``log``, ``tanh`` are calls into libm -- and
carries no counter from one neuron to the next.  So the fused kernel may run a cell in
three loops over the neurons of a sample:

A. the cell without its stores, writing each lifted call's argument into ``_lh<m>[b, j]``
   and whether the call is reached into ``_lf<m>[b, j]`` (the ``_lv<m>`` values it cannot
   know yet are 0 there, and nothing computed from them is stored);
B. the calls themselves, where reached: ``_lh<m>[b, j] = exp(_lh<m>[b, j])``;
C. the cell, reading ``_lv<m> = _lh<m>[b, j]`` where the call stood.

A and C compute each argument with the same operations in the same order, from the same
inputs (A stores nothing), so the result is the same bit for bit as the one-loop cell.
:func:`lift_cell` gives up (``None``: the cell stays one scalar loop) when an argument, or
the condition under which a call is reached, depends on a lifted call's value: loop A
could not compute it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from .ir import Assign, Call, Expr, If, Sym, map_expr, symbols

LIFTED = ("exp", "log", "tanh")  # libm calls: no vector form in numba's LLVM
ARG, VALUE = "_la", "_lv"         # Assign targets marking a call's argument; the call's value


class _GiveUp(Exception):
    pass


@dataclasses.dataclass
class Lifted:
    """A cell's blocks with the lifted calls replaced by ``_lv<m>`` symbols, each preceded by
    ``_la<m> = <argument>``; ``fns[m]``: the function of call m; ``args``: what loop A runs
    of the update (the statements the arguments and their conditions depend on; the whole
    update when the reset has calls, as loop A then needs the threshold)."""

    update: tuple
    reset: tuple
    fns: list
    args: tuple = ()

    @property
    def reset_calls(self) -> bool:
        return any(isinstance(s, Assign) and s.target.startswith(ARG) for s in _flat(self.reset))


def lift_cell(update: tuple, threshold: Expr, reset: tuple) -> Optional[Lifted]:
    """The cell's lifted form, or ``None`` where loop A could not compute an argument (see
    the module docstring).  A call in the threshold is not lifted (``None``)."""
    fns: list[str] = []
    tainted: set[str] = set()
    try:
        up = _block(update, fns, tainted, False)
        if _has_call(threshold):
            raise _GiveUp
        late = bool(symbols(threshold) & tainted)  # reset runs where the threshold holds
        rs = _block(reset, fns, tainted, late)
    except _GiveUp:
        return None
    out = Lifted(up, rs, fns)
    out.args = up if out.reset_calls else _slice(up, set())[0]
    return out


def _flat(stmts: tuple) -> list:
    out: list = []
    for s in stmts:
        out += [s] if isinstance(s, Assign) else _flat(s.body) + _flat(s.orelse)
    return out


def _slice(stmts: tuple, needed: set) -> tuple[tuple, set]:
    """The statements of ``stmts`` that the lifted calls' arguments (and the conditions they
    are reached under) depend on, given the names ``needed`` after them; and the names
    needed before them.  Conservative: an assignment keeps its target needed."""
    kept: list = []
    for s in reversed(stmts):
        if isinstance(s, Assign):
            if s.target.startswith(ARG) or s.target in needed:
                kept.append(s)
                needed = needed | symbols(s.value) | ({s.target} if s.op != "=" else set())
        else:
            body, nb = _slice(s.body, set(needed))
            orelse, no = _slice(s.orelse, set(needed))
            if body or orelse:
                kept.append(If(s.test, body, orelse, s.line))
                needed = needed | nb | no | symbols(s.test)
    return tuple(reversed(kept)), needed


def _has_call(e: Expr) -> bool:
    found = []
    map_expr(e, lambda x: found.append(x) or x if isinstance(x, Call) and x.fn in LIFTED else x)
    return bool(found)


def _expr(e: Expr, fns: list, tainted: set, under_taint: bool) -> tuple[list, Expr]:
    pre: list = []

    def swap(x: Expr) -> Expr:
        if not (isinstance(x, Call) and x.fn in LIFTED):
            return x
        if under_taint or symbols(x.args[0]) & tainted:
            raise _GiveUp
        m = len(fns)
        fns.append(x.fn)
        pre.append(Assign(f"{ARG}{m}", "=", x.args[0]))
        tainted.add(f"{VALUE}{m}")
        return Sym(f"{VALUE}{m}")

    return pre, map_expr(e, swap)


def _block(stmts: tuple, fns: list, tainted: set, under_taint: bool) -> tuple:
    out: list[Any] = []
    for s in stmts:
        if isinstance(s, Assign):
            pre, value = _expr(s.value, fns, tainted, under_taint)
            out += pre
            out.append(dataclasses.replace(s, value=value))
            if under_taint or symbols(value) & tainted:
                tainted.add(s.target)
        else:
            pre, test = _expr(s.test, fns, tainted, under_taint)
            inner = under_taint or bool(symbols(test) & tainted)
            out += pre
            out.append(If(test, _block(s.body, fns, tainted, inner), _block(s.orelse, fns, tainted, inner), s.line))
    return tuple(out)


__all__ = ["ARG", "LIFTED", "Lifted", "VALUE", "lift_cell"]
