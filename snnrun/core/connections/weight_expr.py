"""Initial weights as an expression: ``weight: "0.05 + 0.1 * N(0, 1)"`` or
``weight: "0.025 * (eye - 1)"`` (BindsNET's tutorial network, written in YAML).

The expression is evaluated elementwise over the connection's weight shape.  It may use
numbers, ``+ - * / **``, parentheses, unary minus and:

- ``N(mean, std)``: a normal draw per synapse; ``U(low, high)``: a uniform draw per synapse
  (draws are taken left to right from the connection's seeded generator);
- ``eye``: 1 where the presynaptic neuron is the postsynaptic one, else 0 (a recurrent
  connection of a population onto itself, ``[n, n]`` weights);
- ``i``, ``j``: the presynaptic and postsynaptic neuron index (``[n_pre, n_post]`` weights);
- ``n_pre``, ``n_post``: the population sizes;
- ``abs(x)``, ``exp(x)``, ``sqrt(x)``, ``min(x, y)``, ``max(x, y)``, ``clip(x, low, high)``.

Parsed once (with Python's ``ast``, nothing is executed); a mistake names the symbol.
"""

from __future__ import annotations

import ast
import difflib
from typing import Callable, Optional

import torch

from ..registry import ParamError

Shape = tuple[int, ...]
Env = dict  # shape, generator

_BIN = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow}
_FUNCS = {"abs": (1, lambda a: torch.abs(a)), "exp": (1, lambda a: torch.exp(a)), "sqrt": (1, lambda a: torch.sqrt(a)),
          "min": (2, lambda a, b: torch.minimum(a, b)), "max": (2, lambda a, b: torch.maximum(a, b)),
          "clip": (3, lambda a, lo, hi: torch.minimum(torch.maximum(a, lo), hi))}
_DRAWS = ("N", "U")
_NAMES = ("eye", "i", "j", "n_pre", "n_post")


def _matrix(shape: Shape, what: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise ParamError("weight", f"{what} needs [n_pre, n_post] weights (a dense connection), got {list(shape)}")
    return shape


def _name(name: str, shape: Shape) -> torch.Tensor:
    if name == "eye":
        n_pre, n_post = _matrix(shape, "eye")
        if n_pre != n_post:
            raise ParamError("weight", f"eye needs a connection of a population onto one of the same size, got {n_pre} x {n_post}")
        return torch.eye(n_pre)
    if name in ("i", "j"):
        n_pre, n_post = _matrix(shape, name)
        idx = torch.arange(n_pre if name == "i" else n_post, dtype=torch.float32)
        return idx[:, None].expand(shape) if name == "i" else idx[None, :].expand(shape)
    n_pre, n_post = _matrix(shape, name)
    return torch.tensor(float(n_pre if name == "n_pre" else n_post))


def compile_expr(text: str) -> Callable[[Shape, Optional[torch.Generator]], torch.Tensor]:
    """Check ``text`` and return ``f(shape, generator) -> weights``."""
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ParamError("weight", f"{text!r} is not an expression ({exc.msg})") from None

    def build(node: ast.AST) -> Callable[[Shape, Optional[torch.Generator]], torch.Tensor]:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            value = float(node.value)
            return lambda shape, gen: torch.tensor(value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            op, left, right = _BIN[type(node.op)], build(node.left), build(node.right)
            return lambda shape, gen: op(left(shape, gen), right(shape, gen))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner, sign = build(node.operand), -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda shape, gen: sign * inner(shape, gen)
        if isinstance(node, ast.Name):
            if node.id not in _NAMES:
                raise ParamError("weight", _unknown(node.id, text))
            name = node.id
            return lambda shape, gen: _name(name, shape)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fname = node.func.id
            if fname not in _DRAWS and fname not in _FUNCS:
                raise ParamError("weight", _unknown(fname, text))
            args = [build(a) for a in node.args]
            if fname in _DRAWS:
                if len(args) != 2:
                    raise ParamError("weight", f"{fname}(a, b) takes 2 arguments, got {len(args)} in {text!r}")
                a, b = args
                if fname == "N":
                    return lambda shape, gen: a(shape, gen) + b(shape, gen) * torch.randn(shape, generator=gen)
                return lambda shape, gen: a(shape, gen) + (b(shape, gen) - a(shape, gen)) * torch.rand(shape, generator=gen)
            arity, fn = _FUNCS[fname]
            if len(args) != arity:
                raise ParamError("weight", f"{fname} takes {arity} argument(s), got {len(args)} in {text!r}")
            return lambda shape, gen: fn(*(f(shape, gen) for f in args))
        raise ParamError("weight", f"{ast.unparse(node)!r} is not allowed in a weight expression ({text!r}); "
                                   "use numbers, + - * / **, N(mean, std), U(low, high), eye, i, j, n_pre, n_post")

    f = build(tree.body)
    return lambda shape, gen: f(tuple(shape), gen).float().expand(tuple(shape)).contiguous()


def _unknown(symbol: str, text: str) -> str:
    if symbol in _DRAWS or symbol in _FUNCS:
        example = {"N": "N(0, 1)", "U": "U(0, 1)"}.get(symbol, f"{symbol}(x)")
        return f"{symbol!r} in {text!r} is a function: call it, e.g. {example}"
    known = [*_NAMES, *_DRAWS, *_FUNCS]
    near = [k for k in known if k.lower() == symbol.lower()] or difflib.get_close_matches(symbol, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown symbol {symbol!r} in {text!r}{hint}; known: {', '.join(known)}"
