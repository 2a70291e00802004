"""Resolve, check and fold model code against a scope of known symbols.

A :class:`Scope` says what each name is: a build-time constant (a parameter, a derived
constant, ``dt``: its value is known when the model is built) or a run-time value (state,
the synaptic input ``I``, the refractory flag ``active``, ...), with its type (float or
bool) and whether a block may assign it (``set``) or only increment it (``inc``).

:func:`fold_block` returns the block with every constant sub-expression evaluated in
float64 (then used as float32 by the generated code, as ``exp(-dt / tau)`` always was),
``if`` statements on constants reduced to the branch taken, and the types checked.
Mistakes raise :class:`~snnrun.core.models.ir.ModelError` naming the line and the symbol.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Optional

from .ir import (Assign, Bin, BoolOp, Call, Cmp, Cond, Expr, If, Lit, ModelError, Num, Sym, Un, block_writes,
                 children)

FLOAT, BOOL = "float", "bool"


@dataclasses.dataclass
class Symbol:
    """``const``: build-time value (``value``); ``var``: run-time value of type ``type``;
    ``role`` names what it is in messages (parameter, state variable, ...); ``write``:
    ``None`` (read-only), ``"set"`` or ``"inc"`` (``+=``/``-=`` only)."""

    kind: str
    type: str = FLOAT
    value: Any = None
    role: str = "value"
    write: Optional[str] = None
    why: str = ""  # why it cannot be written (when write is None or "inc")


class Scope(dict):
    """name -> :class:`Symbol`."""

    def const(self, name: str, value: Any, role: str = "parameter") -> None:
        self[name] = Symbol("const", BOOL if isinstance(value, bool) else FLOAT, value, role)

    def var(self, name: str, type: str = FLOAT, role: str = "variable", write: Optional[str] = None,
            why: str = "") -> None:
        self[name] = Symbol("var", type, None, role, write, why)


def _unknown(name: str, scope: Scope, line: int) -> ModelError:
    close = difflib.get_close_matches(name, list(scope), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ModelError(f"unknown symbol {name!r}{hint}", line, name)


# ----------------------------------------------------------------------------- evaluation
def _call(fn: str, args: list, line: int) -> float:
    try:
        if fn == "exp":
            return math.exp(args[0]) if args[0] < 709.0 else math.inf
        if fn == "log":
            return math.log(args[0])
        if fn == "sqrt":
            return math.sqrt(args[0])
        if fn == "abs":
            return abs(args[0])
        if fn == "tanh":
            return math.tanh(args[0])
        if fn in ("floor", "ceil"):
            return float(getattr(math, fn)(args[0]))
        if fn == "min":
            return min(args)
        if fn == "max":
            return max(args)
        return min(max(args[0], args[1]), args[2])  # clip
    except (ValueError, OverflowError) as exc:
        raise ModelError(f"{fn}({', '.join(map(repr, args))}): {exc}", line, fn) from None


def _binop(op: str, a: float, b: float, line: int) -> float:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        return float(a ** b)
    except (ZeroDivisionError, OverflowError, TypeError) as exc:
        raise ModelError(f"{a!r} {op} {b!r}: {exc}", line) from None


def _cmp(op: str, a: Any, b: Any) -> bool:
    return {"<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
            "==": lambda: a == b, "!=": lambda: a != b, "is": lambda: a is b, "is not": lambda: a is not b}[op]()


def _const(e: Expr) -> bool:
    return isinstance(e, (Num, Lit))


def _val(e: Expr) -> Any:
    return e.value


def _num(value: Any, data: bool, line: int) -> Expr:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return Lit(value)
    return Num(float(value), data)


# ----------------------------------------------------------------------------- folding
def fold_expr(e: Expr, scope: Scope, line: int = 0, local: Any = ()) -> Expr:
    """Fold ``e``: constants substituted and evaluated; names in ``local`` (temporaries)
    are kept, other unknown names raise."""
    if isinstance(e, (Num, Lit)):
        return e
    if isinstance(e, Sym):
        if e.name in local:
            return e
        sym = scope.get(e.name)
        if sym is None:
            raise _unknown(e.name, scope, line)
        if sym.kind == "const":
            return _num(sym.value, True, line)
        return e
    if isinstance(e, BoolOp):  # short-circuit: ``x is None or x > 0`` never compares None
        a = fold_expr(e.a, scope, line, local)
        if _const(a):
            t = _truth(a, line)
            if (e.op == "and") != t:
                return Lit(t)
            return fold_expr(e.b, scope, line, local)
        b = fold_expr(e.b, scope, line, local)
        if _const(b):
            t = _truth(b, line)
            return a if (e.op == "and") == t else Lit(t)
        return BoolOp(e.op, a, b)
    if isinstance(e, Cond):
        test = fold_expr(e.test, scope, line, local)
        if _const(test):
            return fold_expr(e.a if _truth(test, line) else e.b, scope, line, local)
        return Cond(test, fold_expr(e.a, scope, line, local), fold_expr(e.b, scope, line, local))
    kids = [fold_expr(c, scope, line, local) for c in children(e)]
    data = any(isinstance(k, Num) and k.data for k in kids)
    if isinstance(e, Un):
        (a,) = kids
        if _const(a):
            if e.op == "not":
                return Lit(not _truth(a, line))
            return Num(-_float(a, line), a.data)
        return Un(e.op, a)
    if isinstance(e, Bin):
        a, b = kids
        if _const(a) and _const(b):
            return Num(_binop(e.op, _float(a, line), _float(b, line), line), data)
        return Bin(e.op, a, b)
    if isinstance(e, Cmp):
        a, b = kids
        if _const(a) and _const(b):
            try:
                return Lit(_cmp(e.op, _val(a), _val(b)))
            except TypeError:
                raise ModelError(f"cannot compare {_val(a)!r} {e.op} {_val(b)!r}", line) from None
        if e.op in ("is", "is not") or any(isinstance(k, Lit) and not isinstance(k.value, bool) for k in kids):
            raise ModelError(f"'{e.op}' with a string or None only tests parameters", line)
        return Cmp(e.op, a, b)
    if all(_const(k) for k in kids):
        return Num(_call(e.fn, [_float(k, line) for k in kids], line), data)
    return Call(e.fn, tuple(kids))


def _truth(e: Expr, line: int) -> bool:
    if isinstance(e, Lit) and isinstance(e.value, bool):
        return e.value
    raise ModelError(f"expected a condition, got {e.value!r}", line)


def _float(e: Expr, line: int) -> float:
    if isinstance(e, Num):
        return e.value
    raise ModelError(f"expected a number, got {e.value!r}", line)


def const_value(e: Any, scope: Scope, what: str) -> Any:
    """Evaluate an expression that must be constant (a derived constant, an initial value)."""
    from .ir import parse_expr

    out = fold_expr(parse_expr(e), scope)
    if not _const(out):
        raise ModelError(f"{what} must be computable from parameters and dt")
    return out.value


# ----------------------------------------------------------------------------- typing
def type_of(e: Expr, scope: Scope, local: dict, line: int) -> str:
    """float or bool; ``local`` maps temporaries to their types."""
    if isinstance(e, Num):
        return FLOAT
    if isinstance(e, Lit):
        if isinstance(e.value, bool):
            return BOOL
        raise ModelError(f"{e.value!r} can only be compared with a parameter", line)
    if isinstance(e, Sym):
        return local[e.name] if e.name in local else scope[e.name].type
    kinds = [type_of(c, scope, local, line) for c in children(e)]
    if isinstance(e, Un):
        return _want(kinds, BOOL if e.op == "not" else FLOAT, f"'{e.op}'", line)
    if isinstance(e, Bin):
        return _want(kinds, FLOAT, f"'{e.op}'", line)
    if isinstance(e, Cmp):
        if e.op in ("==", "!=") and kinds[0] == kinds[1]:
            return BOOL
        _want(kinds, FLOAT, f"'{e.op}'", line)
        return BOOL
    if isinstance(e, BoolOp):
        return _want(kinds, BOOL, f"'{e.op}'", line)
    if isinstance(e, Cond):
        if kinds[0] != BOOL:
            raise ModelError("the test of 'a if test else b' must be a condition", line)
        if kinds[1] != kinds[2]:
            raise ModelError("both branches of 'a if test else b' must be numbers (or both conditions)", line)
        return kinds[1]
    return _want(kinds, FLOAT, f"{e.fn}()", line)


def _want(kinds: list, kind: str, what: str, line: int) -> str:
    if any(k != kind for k in kinds):
        noun = "numbers" if kind == FLOAT else "conditions (true/false)"
        raise ModelError(f"{what} takes {noun}", line)
    return kind


# ----------------------------------------------------------------------------- blocks
def fold_block(stmts: tuple, scope: Scope, local: Optional[dict] = None) -> tuple:
    """Fold and check a block.  ``local`` (name -> type) holds temporaries defined so far
    and is updated with the block's new ones."""
    local = {} if local is None else local
    names = set(local) | (block_writes(stmts) - set(scope))
    out, _ = _fold(stmts, scope, local, set(local), names)
    return out


def _fold(stmts: tuple, scope: Scope, local: dict, defined: set, names: set) -> tuple[tuple, set]:
    out = []
    for s in stmts:
        if isinstance(s, Assign):
            value = fold_expr(s.value, scope, s.line, names)
            _check_defined(value, scope, defined, s.line)
            vt = type_of(value, scope, local, s.line)
            _check_target(s, vt, scope, local, defined)
            if s.op != "=" and vt != FLOAT:
                raise ModelError(f"'{s.op}' takes a number", s.line, s.target)
            if s.target not in scope:
                local.setdefault(s.target, vt)
                defined = defined | {s.target}
            out.append(Assign(s.target, s.op, value, s.line))
            continue
        test = fold_expr(s.test, scope, s.line, names)
        _check_defined(test, scope, defined, s.line)
        if _const(test):
            body, defined = _fold(s.body if _truth(test, s.line) else s.orelse, scope, local, defined, names)
            out.extend(body)
            continue
        if type_of(test, scope, local, s.line) != BOOL:
            raise ModelError("the test of 'if' must be a condition", s.line)
        body, d1 = _fold(s.body, scope, local, defined, names)
        orelse, d2 = _fold(s.orelse, scope, local, defined, names)
        defined = d1 & d2
        if body or orelse:
            out.append(If(test, body, orelse, s.line))
    return tuple(out), defined


def _check_defined(e: Expr, scope: Scope, defined: set, line: int) -> None:
    if isinstance(e, Sym) and e.name not in scope and e.name not in defined:
        raise ModelError(f"{e.name!r} is used before it is assigned (on every path)", line, e.name)
    for c in children(e):
        _check_defined(c, scope, defined, line)


def _check_target(s: Assign, vt: str, scope: Scope, local: dict, defined: set) -> None:
    name = s.target
    sym = scope.get(name)
    if sym is None:
        if s.op != "=" and name not in defined:
            raise ModelError(f"{name!r} is used before it is assigned", s.line, name)
        if name in local and local[name] != vt:
            raise ModelError(f"{name!r} holds a {local[name]} here, not a {vt}", s.line, name)
        return
    if sym.write is None or (sym.write == "inc" and s.op not in ("+=", "-=")):
        why = f": {sym.why}" if sym.why else ""
        verb = "cannot assign" if sym.write is None else "can only increment (+= / -=)"
        raise ModelError(f"{verb} {sym.role} {name!r}{why}", s.line, name)
    if vt != sym.type:
        raise ModelError(f"{name!r} is a {sym.type}; the value is a {vt}", s.line, name)


def runtime_symbols(stmts_or_expr: Any) -> set[str]:
    """Names read or written at run time by folded code (constants are gone by then)."""
    from .ir import block_reads, symbols

    if isinstance(stmts_or_expr, tuple):
        return block_reads(stmts_or_expr) | block_writes(stmts_or_expr)
    return symbols(stmts_or_expr)
