"""The model language's intermediate representation and its parser.

Model code is a small subset of Python, parsed with :mod:`ast`:

* expressions: numbers, ``True``/``False``, names, ``+ - * / **``, unary ``-``,
  comparisons (``< <= > >= == !=``, chains allowed), ``and``/``or``/``not``,
  ``a if cond else b`` and the functions of :data:`FUNCTIONS`; strings and ``None`` only
  to test parameters (``integration == "euler"``, ``v_lbound_mv is not None``), which is
  decided when the model is built;
* statements: ``x = e``, ``x += e`` (``-= *= /=``), ``if``/``elif``/``else``, ``pass``.

Every runtime value is a float32 number or a boolean.  The IR is immutable (frozen
dataclasses); statements keep their source line for error messages.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Callable, Union


class ModelError(ValueError):
    """A mistake in model code: ``str()`` is ``line N: message`` (or just the message)."""

    def __init__(self, message: str, line: int | None = None, symbol: str | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.symbol = symbol
        self.message = message


# ----------------------------------------------------------------------------- nodes
@dataclasses.dataclass(frozen=True)
class Num:
    """A float literal; ``data`` marks a value computed from parameters (a run-time
    constant of the compiled code) rather than written in the model text."""

    value: float
    data: bool = False


@dataclasses.dataclass(frozen=True)
class Lit:
    """A non-float constant: bool, str or None (folded away before code generation,
    except booleans)."""

    value: Any


@dataclasses.dataclass(frozen=True)
class Sym:
    name: str


@dataclasses.dataclass(frozen=True)
class Un:
    op: str  # "-", "not"
    a: "Expr"


@dataclasses.dataclass(frozen=True)
class Bin:
    op: str  # "+", "-", "*", "/", "**"
    a: "Expr"
    b: "Expr"


@dataclasses.dataclass(frozen=True)
class Cmp:
    op: str  # "<", "<=", ">", ">=", "==", "!=", "is", "is not"
    a: "Expr"
    b: "Expr"


@dataclasses.dataclass(frozen=True)
class BoolOp:
    op: str  # "and", "or"
    a: "Expr"
    b: "Expr"


@dataclasses.dataclass(frozen=True)
class Cond:
    test: "Expr"
    a: "Expr"
    b: "Expr"


@dataclasses.dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


Expr = Union[Num, Lit, Sym, Un, Bin, Cmp, BoolOp, Cond, Call]


@dataclasses.dataclass(frozen=True)
class Assign:
    target: str
    op: str  # "=", "+=", "-=", "*=", "/="
    value: Expr
    line: int = 0


@dataclasses.dataclass(frozen=True)
class If:
    test: Expr
    body: tuple
    orelse: tuple
    line: int = 0


Stmt = Union[Assign, If]

#: name -> number of arguments.  How each backend spells them: :mod:`.printer`; how the
#: builder evaluates them on constants: :func:`.fold._call`.
FUNCTIONS: dict[str, int] = {"exp": 1, "log": 1, "sqrt": 1, "abs": 1, "tanh": 1, "floor": 1, "ceil": 1,
                             "min": 2, "max": 2, "clip": 3}

_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
        ast.Is: "is", ast.IsNot: "is not"}
_AUG = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/="}


# ----------------------------------------------------------------------------- parsing
def _syntax(text: str, mode: str) -> ast.AST:
    try:
        return ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise ModelError(f"syntax error: {exc.msg}", exc.lineno) from None


def parse_expr(text: Any, line: int = 1) -> Expr:
    """One expression (``threshold``, a constant, a check).  Numbers are accepted as is."""
    if isinstance(text, bool):
        return Lit(text)
    if isinstance(text, (int, float)):
        return Num(float(text))
    if not isinstance(text, str) or not text.strip():
        raise ModelError(f"expected an expression, got {text!r}")
    node = _syntax(text.strip(), "eval")
    return _expr(node.body, line)


def parse_block(text: Any) -> tuple:
    """Statements (``update``, ``reset``, ``on_pre``, ...); empty or None gives ``()``."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise ModelError(f"expected statements as text, got {text!r}")
    import textwrap

    tree = _syntax(textwrap.dedent(text), "exec")
    return tuple(s for node in tree.body for s in _stmt(node))


def _stmt(node: ast.stmt) -> list:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Pass):
        return []
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise ModelError("assign to one name at a time (x = ...)", line)
        return [Assign(node.targets[0].id, "=", _expr(node.value, line), line)]
    if isinstance(node, ast.AugAssign):
        if not isinstance(node.target, ast.Name) or type(node.op) not in _AUG:
            raise ModelError("only x += e, x -= e, x *= e, x /= e are supported", line)
        return [Assign(node.target.id, _AUG[type(node.op)], _expr(node.value, line), line)]
    if isinstance(node, ast.If):
        body = tuple(s for n in node.body for s in _stmt(n))
        orelse = tuple(s for n in node.orelse for s in _stmt(n))
        return [If(_expr(node.test, line), body, orelse, line)]
    what = type(node).__name__.lower()
    raise ModelError(f"unsupported statement ({what}); use assignments and if/else", line)


def _expr(node: ast.expr, line: int) -> Expr:
    line = getattr(node, "lineno", line)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return Lit(v)
        if isinstance(v, (int, float)):
            return Num(float(v))
        raise ModelError(f"unsupported constant {v!r}", line)
    if isinstance(node, ast.Name):
        return Sym(node.id)
    if isinstance(node, ast.UnaryOp):
        a = _expr(node.operand, line)
        if isinstance(node.op, ast.USub):
            return Num(-a.value) if isinstance(a, Num) else Un("-", a)
        if isinstance(node.op, ast.UAdd):
            return a
        if isinstance(node.op, ast.Not):
            return Un("not", a)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return Bin(_BIN[type(node.op)], _expr(node.left, line), _expr(node.right, line))
    if isinstance(node, ast.Compare) and all(type(op) in _CMP for op in node.ops):
        parts = [_expr(node.left, line)] + [_expr(c, line) for c in node.comparators]
        out: Expr | None = None
        for op, a, b in zip(node.ops, parts, parts[1:]):
            c = Cmp(_CMP[type(op)], a, b)
            out = c if out is None else BoolOp("and", out, c)
        return out
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        vals = [_expr(v, line) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = BoolOp(op, out, v)
        return out
    if isinstance(node, ast.IfExp):
        return Cond(_expr(node.test, line), _expr(node.body, line), _expr(node.orelse, line))
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if name not in FUNCTIONS:
            raise ModelError(f"unsupported function {name!r}; available: {', '.join(FUNCTIONS)}", line, name)
        if node.keywords or len(node.args) != FUNCTIONS[name]:
            raise ModelError(f"{name}() takes {FUNCTIONS[name]} positional argument(s)", line, name)
        return Call(name, tuple(_expr(a, line) for a in node.args))
    raise ModelError(f"unsupported expression: {ast.unparse(node)}", line)


# ----------------------------------------------------------------------------- walking
def children(e: Expr) -> tuple:
    if isinstance(e, (Un,)):
        return (e.a,)
    if isinstance(e, (Bin, Cmp, BoolOp)):
        return (e.a, e.b)
    if isinstance(e, Cond):
        return (e.test, e.a, e.b)
    if isinstance(e, Call):
        return e.args
    return ()


def symbols(e: Expr) -> set[str]:
    """Names read by an expression."""
    if isinstance(e, Sym):
        return {e.name}
    out: set[str] = set()
    for c in children(e):
        out |= symbols(c)
    return out


def block_reads(stmts: tuple) -> set[str]:
    out: set[str] = set()
    for s in stmts:
        if isinstance(s, Assign):
            out |= symbols(s.value)
            if s.op != "=":
                out.add(s.target)
        else:
            out |= symbols(s.test) | block_reads(s.body) | block_reads(s.orelse)
    return out


def block_writes(stmts: tuple) -> set[str]:
    out: set[str] = set()
    for s in stmts:
        if isinstance(s, Assign):
            out.add(s.target)
        else:
            out |= block_writes(s.body) | block_writes(s.orelse)
    return out


def map_expr(e: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """Rebuild ``e`` bottom-up, applying ``fn`` to every node after its children."""
    if isinstance(e, Un):
        e = Un(e.op, map_expr(e.a, fn))
    elif isinstance(e, Bin):
        e = Bin(e.op, map_expr(e.a, fn), map_expr(e.b, fn))
    elif isinstance(e, Cmp):
        e = Cmp(e.op, map_expr(e.a, fn), map_expr(e.b, fn))
    elif isinstance(e, BoolOp):
        e = BoolOp(e.op, map_expr(e.a, fn), map_expr(e.b, fn))
    elif isinstance(e, Cond):
        e = Cond(map_expr(e.test, fn), map_expr(e.a, fn), map_expr(e.b, fn))
    elif isinstance(e, Call):
        e = Call(e.fn, tuple(map_expr(a, fn) for a in e.args))
    return fn(e)


def unparse(e: Expr) -> str:
    """Readable text of an expression (messages, docs)."""
    if isinstance(e, Num):
        return repr(e.value)
    if isinstance(e, Lit):
        return repr(e.value)
    if isinstance(e, Sym):
        return e.name
    if isinstance(e, Un):
        return f"({'not ' if e.op == 'not' else '-'}{unparse(e.a)})"
    if isinstance(e, (Bin, Cmp, BoolOp)):
        return f"({unparse(e.a)} {e.op} {unparse(e.b)})"
    if isinstance(e, Cond):
        return f"({unparse(e.a)} if {unparse(e.test)} else {unparse(e.b)})"
    return f"{e.fn}({', '.join(unparse(a) for a in e.args)})"
