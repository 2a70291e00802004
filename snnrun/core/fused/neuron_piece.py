"""A population's step in the fused kernel, printed from its compiled neuron model.

One numba function per model *structure*: the code of the model (after the build decided
its parameter-dependent branches) with every parameter-derived value read from a constants
array ``c``, and sizes read from the arrays.  Two populations of the same kind and options
share it, whatever their sizes and parameter values, and it is compiled once per machine.

The generated loop does, for every sample b and neuron j, what the torch step of
:mod:`snnrun.core.neurons.torch_step` does for the whole tensor: update, threshold, reset,
refractory counter, one spike per sample (same counter-based draw), spike list, spike
trace, spike count, and slow-state increments summed over the batch.

Where it can (:func:`~snnrun.core.models.lift.lift_cell`; not with ``one_spike``, whose
draw is a call per spike), the loop over neurons is printed so that LLVM vectorises it: the
libm calls (``exp``, ``log``, ``tanh``) lifted into loops of their own and the spike list
built after the loop (``cnt``: the sum of the spikes).  The numbers are the same bit for bit.
"""

from __future__ import annotations

from typing import Any

from ..models.cell import Consts, indent, neuron_cell
from ..models.lift import lift_cell
from ..models.printer import ScalarPrinter, f32_text
from .loader import library


def prologue(spec: list[tuple[str, str]]) -> list[str]:
    """Lines giving a piece its arguments: arrays viewed from the frame, integers read."""
    return [f"{name} = I[a[{k}]]" if kind == "int" else f'{name} = view(P, S, a[{k}], "{kind}")'
            for k, (name, kind) in enumerate(spec)]


def piece_source(spec: list[tuple[str, str]], body: list[str]) -> str:
    """A piece's module: the ABI signature of ``fnptr``, the prologue, the body."""
    lines = prologue(spec) + body
    lib = library().__name__
    return ("import numpy as np\nfrom numba import njit\nfrom snnrun.core.fused.fnptr import view\n"
            f"from {lib} import _bounds, _clamp, draw, site_key, step_key\n\n\n"
            '@njit(cache=True, nogil=True, error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)\n'
            "def piece(t, learning, seed, b0, b1, P, S, I, a):\n" + "\n".join(indent(lines, 4)) + "\n")


def population_piece(pop: Any, *, ext: bool, counted: bool, xin: str = "u8_3") -> tuple[str, list, list[float]]:
    """(source of the piece, its slots ``[(name, kind)]``, the constants array's values) for
    population ``pop`` (external input ``ext``; spike counts ``counted``; input spikes of
    kind ``xin``: ``u8_3`` spikes or ``f32_3`` values)."""
    c = pop.compiled
    k = Consts()
    names = {name: name for name, _ in c.fast}
    names.update({name: f"{name}_" for name, _ in c.slow})
    names.update(I="I_", I_inh="I_inh", active="active")
    p = ScalarPrinter(names, k)
    spec: list[tuple[str, str]] = [("stream", "int")]
    spec += [("xin", xin)] if c.input else [("ie", "f32_2")] + ([("ii", "f32_2")] if c.uses_inh else [])
    spec += [("ext", "f32_3")] if ext and not c.input else []
    spec += [("s", "b_2"), ("idx", "i32_2"), ("cnt", "i32_1")] + ([("ref", "f32_2")] if c.refrac > 0 else [])
    spec += ([("x", "f32_2")] if pop.traces else []) + ([("count", "i32_2")] if counted else [])
    spec += [(f"st_{n}", "f32_2") for n, _ in c.fast] + [(f"sl_{n}", "f32_1") for n, _ in c.slow]
    spec += [(f"d_{n}", "f32_1") for n in c.slow_incremented] + [("c", "f32_1")]
    lifted = None if pop.one_spike else lift_cell(c.update, c.threshold, c.reset)
    spec += [(f"_l{a}{m}", kind) for m in range(len(lifted.fns) if lifted else 0) for a, kind in (("h", "f32_2"), ("f", "b_2"))]
    body: list[str] = ["n = s.shape[1]"]
    pre: list[str] = []
    if c.slow_update:
        slow = [f"{n}_ = sl_{n}[j]" for n, _ in c.slow] + p.block(c.slow_update) + [f"sl_{n}[j] = {n}_" for n, _ in c.slow]
        pre += ["if learning:", "    for j in range(n):"] + indent(slow, 8)
    pre += [f"d_{n}[:] = 0.0" for n in c.slow_incremented]
    if pop.one_spike:
        pre.append("sk = step_key(seed, stream, t)")

    def inc(n: str, op: str, value: str) -> str:
        return f"d_{n}[j] {op} {value}"

    trace = []
    if pop.traces:
        spike = f"xv = {k(pop.trace_scale)}" if not pop.trace_additive else f"xv = xv + {k(pop.trace_scale)}"
        trace = [f"xv = x[b, j] * {k(pop.trace_decay)}", "if s_:", "    " + spike, "x[b, j] = xv"]
    if lifted is not None:
        loop = vector_loop(c, p, k, ext, inc, lifted, trace)
    else:
        loop = scalar_loop(neuron_cell(c, p, k, ext=ext, inc=inc), pop.one_spike, trace)
    loop.append("cnt[b] = cb")
    if counted:
        loop += ["for q in range(cb):", "    count[b, idx[b, q]] += 1"]
    post = []
    if c.slow_incremented:
        post = ["if learning:", "    for j in range(n):"]
        post += [f"        sl_{n}[j] = sl_{n}[j] + d_{n}[j]" for n in c.slow_incremented]
    lines = k.unpack() + body + pre + ["for b in range(b0, b1):"] + indent(loop, 4) + post
    return piece_source(spec, lines), spec, k.values


def vector_loop(c: Any, p: Any, k: Consts, ext: bool, inc: Any, lifted: Any, trace: list[str]) -> list[str]:
    """A sample's step as loops LLVM vectorises (loop A and the lifted calls, then the cell,
    then the spike list; see :mod:`snnrun.core.models.lift`)."""
    loop: list[str] = []
    if lifted.fns:
        loop += ["for j in range(n):"] + indent(neuron_cell(c, p, k, ext=ext, inc=inc, lifted=lifted, mode="args"), 4)
        for m, fn in enumerate(lifted.fns):
            loop += ["for j in range(n):", f"    if _lf{m}[b, j]:", f"        _lh{m}[b, j] = {p.call(fn, [f'_lh{m}[b, j]'])}"]
    cell = neuron_cell(c, p, k, ext=ext, inc=inc, lifted=lifted, mode="use") + ["s[b, j] = s_", "cb += s_"] + trace
    loop += ["cb = 0", "for j in range(n):"] + indent(cell, 4)
    return loop + ["if cb > 0:", "    q = 0", "    for j in range(n):", "        if s[b, j]:",
                   "            idx[b, q] = j", "            q += 1"]


def scalar_loop(cell: list[str], one_spike: bool, trace: list[str]) -> list[str]:
    """A sample's step as one loop over the neurons (spike list built as it goes)."""
    if one_spike:
        cell += ["if s_:", "    r = draw(sk, site_key(b, j))", "    if r > best:", "        best = r",
                 "        win = j", "s[b, j] = False"]
    else:
        cell += ["s[b, j] = s_", "if s_:", "    idx[b, cb] = j", "    cb += 1"] + trace
    loop = ["cb = 0"] + (["win = -1", "best = -1"] if one_spike else [])
    loop += ["for j in range(n):"] + indent(cell, 4)
    if one_spike:
        loop += ["if win >= 0:", "    s[b, win] = True", "    idx[b, 0] = win", "    cb = 1"]
        if trace:
            loop += ["for j in range(n):", "    s_ = s[b, j]"] + indent(trace, 4)
    return loop


__all__ = ["population_piece", "piece_source", "prologue", "Consts", "indent", "f32_text"]
