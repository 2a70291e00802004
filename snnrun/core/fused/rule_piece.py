"""A learning rule's update in the fused kernel, printed from its compiled rule model.

The same phases as the torch update (:mod:`snnrun.core.learning.torch_update`), visiting
only what spiked:

* traces decay, then are set / incremented at their side's spikes;
* ``on_pre``: for each presynaptic spike (b, i), each of its synapses (i, j) accumulates
  every term ``((pre * post) * coeff) * syn`` (the torch side's ``outer(pre, post) * coeff
  * syn``, element by element, in the same order); ``on_post`` likewise per (b, j);
* the accumulated increments are applied to the touched rows and columns, clamped to
  ``[wmin, wmax]`` and masked -- or, when the rule has synapse variables or ``on_step``
  terms, in one pass over every synapse that also runs ``on_step``;
* in episode mode (``defer``) the weight increments go to the eligibility instead.

Layouts: ``dense`` (``w [n_pre, n_post]``), ``diag`` (one-to-one, ``w [n]``), ``patch``
(conv2d / local: the (position, kernel entry) pairs of each spike, shared entries summed
over positions, as the reference's ``outer``), ``arrival`` (dense with per-synapse delays,
``pre_timing: arrival``: presynaptic events are arrivals, presynaptic traces are looked up
from each synapse's last arrival).
"""

from __future__ import annotations

from typing import Any, Optional

from ..models.printer import ScalarPrinter
from ..models.rule import PRE, CompiledRule, Term
from .neuron_piece import Consts, indent, piece_source


def supported(c: CompiledRule, layout: str) -> Optional[str]:
    """Why the fused kernel cannot run rule ``c`` on ``layout`` (None when it can)."""
    if layout == "patch":
        if c.synapse or c.on_step:
            return "per-synapse variables or on_step on conv2d/local connections"
        for t in c.terms():
            if any(n != "w" for f in t.syn for n in _names(f)):
                return "synapse factors other than w on conv2d/local connections"
    return None


def _names(e: Any) -> set:
    from ..models.ir import symbols

    return symbols(e)


class RulePrinter:
    """Scalar names of a rule's symbols in an event context (sample b, synapse i -> j)."""

    def __init__(self, c: CompiledRule, layout: str, slow_pre: set, slow_post: set, k: Consts):
        self.c, self.layout, self.k = c, layout, k
        names: dict[str, str] = {}
        for t in c.traces:
            names[t.name] = f"tr_{t.name}[b, {'i' if t.side == PRE else 'j'}]"
            if layout == "arrival" and t.side == PRE:
                names[t.name] = f"pv_{t.name}"
        for end, slow in ((PRE, slow_pre), ("post", slow_post)):
            ix = "i" if end == PRE else "j"
            for v in c.pop_vars[end]:
                names[f"{v}_{end}"] = f"{end}_{v}[{ix}]" if v in slow else f"{end}_{v}[b, {ix}]"
        w_ix = {"dense": "i, j", "arrival": "i, j", "diag": "i", "patch": "f"}[layout]
        names["w"] = f"w[{w_ix}]"
        for name, _, _ in c.synapse:
            names[name] = f"sv_{name}[{w_ix}]"
        names["reward"] = "reward[b]"
        self.p = ScalarPrinter(names, k)
        self.w_ix = w_ix

    def mul(self, a: str, b: str) -> str:
        return self.p.binop("*", a, b)

    def prod(self, factors: tuple) -> Optional[str]:
        out = None
        for f in factors:
            code = self.p.expr(f)
            out = code if out is None else self.mul(out, code)
        return out

    def value(self, t: Term, coeff: str) -> str:
        """The term's value for one event: ``((pre * post) * coeff) * syn``."""
        pv = self.prod(t.pre)
        if t.reward:
            pv = "reward[b]" if pv is None else self.mul(pv, "reward[b]")
        qv = self.prod(t.post)
        base = pv if qv is None else (qv if pv is None else self.mul(pv, qv))
        out = self.mul(base, coeff) if base is not None else coeff
        syn = self.prod(t.syn)
        return self.mul(out, syn) if syn else out


def rule_piece(c: CompiledRule, layout: str, *, slow_pre: set, slow_post: set, scale: float,
               pre_kinds: dict, post_kinds: dict) -> tuple[str, list, list[float]]:
    """(source, slots ``[(name, kind)]``, constants) of rule ``c``'s events on ``layout``;
    lib's ``apply_*`` (called next) applies the accumulated weight increments.
    ``pre_kinds`` / ``post_kinds``: array kinds of the population variables read."""
    k = Consts()
    rp = RulePrinter(c, layout, slow_pre, slow_post, k)
    flat = layout in ("diag", "patch")
    wk = "f32_1" if flat else "f32_2"
    incremented = sorted({t.target for t in c.terms()} | ({"w"} if c.on_step else set()))
    spec: list[tuple[str, str]] = [("clock0", "int"), ("pidx", "i32_2"), ("pcnt", "i32_1"), ("qidx", "i32_2"),
                                   ("qcnt", "i32_1")]
    spec += [(f"pre_{v}", pre_kinds[v]) for v in sorted(c.pop_vars[PRE])]
    spec += [(f"post_{v}", post_kinds[v]) for v in sorted(c.pop_vars["post"])]
    spec += [(f"tr_{t.name}", "f32_2") for t in c.traces if not (layout == "arrival" and t.side == PRE)]
    spec += [(f"sv_{n}", wk) for n, _, _ in c.synapse] + [("w", wk)] + [(f"d_{n}", wk) for n in incremented]
    spec += [("tr_row", "b_1"), ("tr_col", "b_1" if layout != "patch" else "i64_1")]
    spec += [("rl", "i64_1"), ("cl", "i64_1")] if layout != "patch" else []
    spec += [("reward", "f32_1")]
    direct = _direct(c, layout)
    if direct:
        spec += [("lohi", "f32_1"), ("flags", "int")]
    if layout == "patch":
        spec += [("pidx_p", "i32_2"), ("ptr", "i64_1"), ("ep", "i32_1"), ("el", "i32_1"),
                 ("c_out", "int"), ("P_", "int"), ("shared", "int")]
    if layout == "arrival":
        spec += [("last", "i64_3"), ("tables", "f32_2"), ("dptr", "i64_1"), ("dcol", "i32_1"), ("ridx", "i32_3"),
                 ("rcnt", "i32_2"), ("pos0", "int")]
    spec.append(("c", "f32_1"))
    L: list[str] = ["clock = clock0 + t"]
    L += ["n_pre = w.shape[0]", "n_post = w.shape[1]"] if not flat else ["n_w = w.shape[0]"]
    if layout == "patch":
        L += ["L = qidx.shape[1] // c_out", "P = P_", "nl = tr_col.shape[0] - 1"]
    else:  # touched rows / columns: a flag each and a list (its length in the last entry)
        L += ["nr = rl.shape[0] - 1", "nc = cl.shape[0] - 1"]
    for side, idx, cnt, n in ((PRE, "pidx", "pcnt", "pidx.shape[1]"), ("post", "qidx", "qcnt", "qidx.shape[1]")):
        for t in c.traces:
            if t.side != side or (layout == "arrival" and side == PRE):
                continue
            at = f"tr_{t.name}[b, i]"
            spike = None
            if t.set is not None:
                spike = f"{at} = {k(t.set)}"
            elif t.add is not None:
                spike = f"{at} = {at} + {k(t.add)}"
            L += ["for b in range(b0, b1):", f"    for i in range({n}):", f"        {at} = {at} * {k(t.decay)}"]
            if spike:
                L += [f"    for q in range({cnt}[b]):", f"        i = {idx}[b, q]", f"        {spike}"]
    for name, _, d in c.synapse:
        if d is not None:
            L += [f"sf = sv_{name}.ravel()", "for f in range(sf.size):", f"    sf[f] = sf[f] * {k(d)}"]
    summed = [t for t in c.on_pre + c.on_post if isinstance(t, Term)] + [t for t in c.on_step if t.pre or t.post]
    coef = {id(t): k(t.coeff * (scale if any(t is u for u in summed) else 1.0)) for t in c.terms()}

    def acc(t: Term) -> str:
        return f"d_{t.target}[{rp.w_ix}]"

    pre_ops = [("term" if isinstance(op, Term) else "assign", op) for op in c.on_pre]
    post_ops = [("term" if isinstance(op, Term) else "assign", op) for op in c.on_post]
    if layout == "arrival":
        L += _arrival(c, rp, pre_ops, post_ops, coef, acc)
    else:
        if direct:
            L += ["direct = b1 - b0 == 1 and qcnt[b0] == 0 and (flags & 12) == 0", "lo, hi = _bounds(lohi, flags)"]
        L += _events(c, rp, layout, pre_ops, "pre", coef, acc, rp if direct else None)
        L += _events(c, rp, layout, post_ops, "post", coef, acc)
    if c.synapse or c.on_step:  # every synapse: synapse variables, on_step; lib's apply takes all rows
        cell = []
        for name, _, _ in c.synapse:
            if name in incremented:
                cell += [f"sv_{name}[{rp.w_ix}] = sv_{name}[{rp.w_ix}] + d_{name}[{rp.w_ix}]",
                         f"d_{name}[{rp.w_ix}] = np.float32(0.0)"]
        cell.append(f"dwv = d_w[{rp.w_ix}]")
        for t in c.on_step:
            if t.pre or t.post:
                tt = Term(t.target, 1.0, t.pre, t.post, (), t.reward, t.line)
                cell += ["base = np.float32(0.0)", "for b in range(b0, b1):", f"    base += {rp.value(tt, 'np.float32(1.0)')}"]
                value = f"((base * {coef[id(t)]}) * {rp.prod(t.syn)})" if t.syn else f"(base * {coef[id(t)]})"
            else:  # as the torch side: (coeff * reward) * syn
                value = f"({coef[id(t)]} * reward[0])" if t.reward else coef[id(t)]
                value = f"({value} * {rp.prod(t.syn)})" if t.syn else value
            cell.append(f"dwv = dwv + {value}" if t.target == "w" else f"sv_{t.target}[{rp.w_ix}] += {value}")
        cell.append(f"d_w[{rp.w_ix}] = dwv")
        loops = ["for i in range(n_pre):", "    for j in range(n_post):"] if not flat else ["for i in range(n_w):", "    j = i"]
        L += loops + indent(cell, 8 if not flat else 4) + ["rl[nr] = -1"]  # every row
    return piece_source(spec, k.unpack() + L), spec, k.values


def _mark(side: str, me: str) -> list[str]:
    """Flag row i (column j) as touched and list it the first time."""
    flag, lst, n = ("tr_row", "rl", "nr") if side == PRE else ("tr_col", "cl", "nc")
    return [f"if not {flag}[{me}]:", f"    {flag}[{me}] = True", f"    if {lst}[{n}] >= 0:",
            f"        {lst}[{lst}[{n}]] = {me}", f"        {lst}[{n}] += 1"]


def _direct(c: CompiledRule, layout: str) -> bool:
    """Whether presynaptic events may update the weights in place (see :func:`_direct_rows`)."""
    return (layout == "dense" and not c.synapse and not c.on_step and bool(c.on_pre)
            and all(isinstance(op, Term) and op.target == "w" for op in c.on_pre))


def _direct_rows(rp: RulePrinter, ops: list, coef: dict) -> list[str]:
    """A presynaptic spike's row updated in place, for one sample, no postsynaptic spike in
    the step, no mask and no eligibility (the ``direct`` flag): the very arithmetic of
    accumulating the row's increment from 0 and applying it with the clamp (lib's apply),
    without writing and re-reading the increment row."""
    body = ["for j in range(n_post):", "    dv = np.float32(0.0)"]
    body += [f"    dv = np.float32(dv + {rp.value(op, coef[id(op)])})" for _, op in ops]
    body += ["    w[i, j] = _clamp(w[i, j] + dv, lo, hi)"]
    return body


def _events(c: CompiledRule, rp: RulePrinter, layout: str, ops: list, side: str, coef: dict, acc: Any,
            direct: Optional[RulePrinter] = None) -> list[str]:
    """Event loops of ``on_pre`` (side 'pre') or ``on_post``; ``direct``: the in-place branch
    of :func:`_direct_rows` for presynaptic events."""
    if not ops:
        return []
    if direct is not None:
        inner = _events(c, rp, layout, ops, side, coef, acc)[2:]  # the body under the two loops
        body = ["i = pidx[b, q]", "if direct:"] + indent(_direct_rows(rp, ops, coef), 4) + ["else:"] + indent(
            [line[8:] for line in inner[1:]], 4)
        return ["for b in range(b0, b1):", "    for q in range(pcnt[b]):"] + indent(body, 8)
    idx, cnt, me = ("pidx", "pcnt", "i") if side == PRE else ("qidx", "qcnt", "j")
    body = [f"{me} = {idx}[b, q]"]
    if layout == "patch" and side != PRE:
        body += ["co = j // L", "l = j % L"]
    if layout != "patch":
        body += _mark(side, me)
    for kind, op in ops:
        if kind == "assign":
            body += rp.p.block((op,))
            continue
        line = f"{acc(op)} += {rp.value(op, coef[id(op)])}"
        if layout == "dense":
            body += [f"for {'j' if side == PRE else 'i'} in range({'n_post' if side == PRE else 'n_pre'}):", "    " + line]
        elif layout == "diag":
            body += [("j = i" if side == PRE else "i = j"), line]
        else:  # patch: the (entry, position) pairs of the spike; touched entries listed once
            mark = ["if not tr_row[f]:", "    tr_row[f] = True", "    tr_col[tr_col[nl]] = f", "    tr_col[nl] += 1"]
            if side == PRE:
                body += ["for e in range(ptr[i], ptr[i + 1]):", "    p = ep[e]", "    l = el[e]",
                         "    for co in range(c_out):", "        j = co * L + l",
                         "        f = co * P + p if shared else (l * P + p) * c_out + co"]
                body += indent(mark + [line], 8)
            else:
                body += ["for p in range(P):", "    i = pidx_p[p, l]", "    if i < 0:", "        continue",
                         "    f = co * P + p if shared else (l * P + p) * c_out + co"]
                body += indent(mark + [line], 4)
    return ["for b in range(b0, b1):", f"    for q in range({cnt}[b]):"] + indent(body, 8)


def _arrival(c: CompiledRule, rp: RulePrinter, pre_ops: list, post_ops: list, coef: dict, acc: Any) -> list[str]:
    """Arrival timing: presynaptic events at each synapse's arrival (the slot written d steps
    ago feeds delay d; this step's slot is ``(pos0 + t) % L``); presynaptic traces are
    ``tables[m, min(clock - last, K)]``."""
    pre_traces = [t for t in c.traces if t.side == PRE]
    K = "(tables.shape[1] - 1)"
    out: list[str] = []
    if pre_ops:
        body = ["slot = (pnow - d) % Ld", "cn = pcnt[b] if d == 0 else rcnt[slot, b]",
                "for q in range(cn):", "    i = pidx[b, q] if d == 0 else ridx[slot, b, q]",
                *indent(_mark(PRE, "i"), 4), "    base = i * Ld + d",
                "    for jj in range(dptr[base], dptr[base + 1]):", "        j = dcol[jj]",
                "        last[b, i, j] = clock"]
        body += [f"        pv_{t.name} = tables[{m}, 0]" for m, t in enumerate(pre_traces)]
        body += [f"        {acc(op)} += {rp.value(op, coef[id(op)])}" for _, op in pre_ops]
        out += ["Ld = ridx.shape[0]", "pnow = (pos0 + t + 1) % Ld", "for b in range(b0, b1):",
                "    for d in range(Ld):"] + indent(body, 8)
    if post_ops:
        body = ["j = qidx[b, q]", *_mark("post", "j")]
        for kind, op in post_ops:
            if kind == "assign":
                body += rp.p.block((op,))
                continue
            inner = ["age = clock - last[b, i, j]", f"if age > {K}:", f"    age = {K}"]
            inner += [f"pv_{t.name} = tables[{m}, age]" for m, t in enumerate(pre_traces)]
            inner += [f"{acc(op)} += {rp.value(op, coef[id(op)])}"]
            body += ["for i in range(n_pre):"] + indent(inner, 4)
        out += ["for b in range(b0, b1):", "    for q in range(qcnt[b]):"] + indent(body, 8)
    return out


__all__ = ["rule_piece", "supported"]
