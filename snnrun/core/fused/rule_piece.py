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

import math
from typing import Any, Optional

from ..models.ir import Assign, Sym
from ..models.printer import ScalarPrinter
from ..models.rule import PRE, CompiledRule, Term
from .neuron_piece import Consts, indent


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

    def prod(self, factors: tuple) -> Optional[str]:
        out = None
        for f in factors:
            code = self.p.expr(f)
            out = code if out is None else f"({out} * {code})"
        return out

    def value(self, t: Term, coeff: str) -> str:
        """The term's value for one event: ``((pre * post) * coeff) * syn``."""
        pv = self.prod(t.pre)
        if t.reward:
            pv = "reward[b]" if pv is None else f"({pv} * reward[b])"
        qv = self.prod(t.post)
        base = pv if qv is None else (qv if pv is None else f"({pv} * {qv})")
        out = f"({base} * {coeff})" if base is not None else coeff
        syn = self.prod(t.syn)
        return f"({out} * {syn})" if syn else out


def rule_piece(c: CompiledRule, layout: str, *, lo: float, hi: float, masked: bool,
               slow_pre: set, slow_post: set, scale: float) -> tuple[str, list[str], list[float]]:
    """(source, parameter names, constants) of the update of rule ``c`` on ``layout``."""
    k = Consts()
    rp = RulePrinter(c, layout, slow_pre, slow_post, k)
    params = ["t", "clock", "pidx", "pcnt", "qidx", "qcnt"]
    params += [f"pre_{v}" for v in sorted(c.pop_vars[PRE])] + [f"post_{v}" for v in sorted(c.pop_vars["post"])]
    params += [f"tr_{t.name}" for t in c.traces if not (layout == "arrival" and t.side == PRE)]
    params += [f"sv_{n}" for n, _, _ in c.synapse] + ["w"] + (["mask"] if masked else [])
    incremented = sorted({t.target for t in c.terms()})
    params += [f"d_{n}" for n in incremented] + ["tr_row", "tr_col", "reward"]
    params += ["defer", "elig"] if c.reward_linear else []
    if layout == "patch":
        params += ["tn", "pidx_p", "ptr", "ep", "el", "c_out", "P", "shared"]
    if layout == "arrival":
        params += ["last", "tables", "dptr", "dcol", "ridx", "rcnt", "pos"]
    params.append("c")
    dense_pass = bool(c.synapse or c.on_step)
    L: list[str] = ["B = pcnt.shape[0]"]
    L += ["n_pre = w.shape[0]", "n_post = w.shape[1]"] if layout in ("dense", "arrival") else ["n_w = w.shape[0]"]
    if layout == "patch":
        L += ["L = qidx.shape[1] // c_out"]
    # traces
    for side, idx, cnt, n in ((PRE, "pidx", "pcnt", "pidx.shape[1]"), ("post", "qidx", "qcnt", "qidx.shape[1]")):
        for t in c.traces:
            if t.side != side or (layout == "arrival" and side == PRE):
                continue
            at = f"tr_{t.name}[b, i]"
            spike = (f"{at} = {k(t.set)}" if t.set is not None else f"{at} = {at} + {k(t.add)}") \
                if (t.set is not None or t.add is not None) else None
            L += ["for b in range(B):", f"    for i in range({n}):", f"        {at} = {at} * {k(t.decay)}"]
            if spike:
                L += [f"    for q in range({cnt}[b]):", f"        i = {idx}[b, q]", f"        {spike}"]
    for name, _, d in c.synapse:
        if d is not None:
            L += [f"sf = sv_{name}.reshape(sv_{name}.size)", "for f in range(sf.size):", f"    sf[f] = sf[f] * {k(d)}"]
    summed = [t for t in c.on_pre + c.on_post if isinstance(t, Term)] + [t for t in c.on_step if t.pre or t.post]
    coef = {id(t): k(t.coeff * (scale if any(t is u for u in summed) else 1.0)) for t in c.terms()}
    acc = lambda t: f"d_{t.target}[{rp.w_ix}]"  # noqa: E731

    def event_ops(ops: list) -> list:
        return [("term" if isinstance(op, Term) else "assign", op) for op in ops]

    pre_ops, post_ops = event_ops(c.on_pre), event_ops(c.on_post)
    if layout == "arrival":
        L += _arrival(c, rp, pre_ops, post_ops, coef, acc)
    else:
        L += _events(c, rp, layout, pre_ops, "pre", coef, acc)
        L += _events(c, rp, layout, post_ops, "post", coef, acc)
    # apply
    apply = ["wv = w[" + rp.w_ix + "] + dwv"]
    if math.isfinite(lo):  # one constant per bound: the compiler turns these into min / max
        klo = k(lo)
        apply += [f"if wv < {klo}:", f"    wv = {klo}"]
    if math.isfinite(hi):
        khi = k(hi)
        apply += [f"if wv > {khi}:", f"    wv = {khi}"]
    if masked:
        apply.append(f"wv = wv * mask[{rp.w_ix}]")
    apply.append(f"w[{rp.w_ix}] = wv")
    one = (["if defer:", f"    elig[{rp.w_ix}] += dwv", "else:"] + indent(apply, 4)) if c.reward_linear else apply
    if dense_pass:
        cell = []
        for name, _, _ in c.synapse:
            if name in incremented:
                cell += [f"sv_{name}[{rp.w_ix}] = sv_{name}[{rp.w_ix}] + d_{name}[{rp.w_ix}]",
                         f"d_{name}[{rp.w_ix}] = np.float32(0.0)"]
        cell += ([f"dwv = d_w[{rp.w_ix}]", f"d_w[{rp.w_ix}] = np.float32(0.0)"] if "w" in incremented
                 else ["dwv = np.float32(0.0)"])
        for t in c.on_step:
            if t.pre or t.post:
                cell += ["base = np.float32(0.0)", "for b in range(B):"]
                tt = Term(t.target, 1.0, t.pre, t.post, (), t.reward, t.line)
                cell += [f"    base += {rp.value(tt, 'np.float32(1.0)')}"]
                value = f"((base * {coef[id(t)]}) * {rp.prod(t.syn)})" if t.syn else f"(base * {coef[id(t)]})"
            else:  # as the torch side: (coeff * reward) * syn
                value = f"({coef[id(t)]} * reward[0])" if t.reward else coef[id(t)]
                value = f"({value} * {rp.prod(t.syn)})" if t.syn else value
            cell.append(f"dwv = dwv + {value}" if t.target == "w" else f"sv_{t.target}[{rp.w_ix}] += {value}")
        loops = (["for i in range(n_pre):", "    for j in range(n_post):"] if layout in ("dense", "arrival")
                 else ["for i in range(n_w):", "    j = i"])
        L += loops + indent(cell + one, 8 if layout in ("dense", "arrival") else 4)
    elif "w" in incremented:
        L += _apply_touched(layout, one)
    if layout != "patch":
        L += ["tr_row[:] = False", "tr_col[:] = False"]
    if (math.isfinite(lo) or math.isfinite(hi)) and "w" in incremented:
        # weights can leave [wmin, wmax] between calls (normalisation): clamp all once
        full = ["wv = wf[f]"] + [x.replace(f"w[{rp.w_ix}] = wv", "wf[f] = wv") for x in apply[1:]]
        full = [x.replace(f"mask[{rp.w_ix}]", "mf[f]") for x in full]
        L += [f"if t == 0{' and not defer' if c.reward_linear else ''}:", "    wf = w.reshape(w.size)"] + (["    mf = mask.reshape(mask.size)"] if masked else [])
        L += ["    for f in range(w.size):"] + indent(full, 8)
    source = ("import numpy as np\nfrom numba import njit\n\n\n"
              f"@njit(cache=True, nogil=True)\ndef piece({', '.join(params)}):\n"
              + "\n".join(indent(k.unpack() + L, 4)) + "\n")
    return source, params, k.values


def _assign(p: ScalarPrinter, op: Assign) -> list[str]:
    return p.block((op,))


def _events(c: CompiledRule, rp: RulePrinter, layout: str, ops: list, side: str, coef: dict, acc: Any) -> list[str]:
    """Event loops of ``on_pre`` (side 'pre') or ``on_post``."""
    if not ops:
        return []
    idx, cnt, me = ("pidx", "pcnt", "i") if side == PRE else ("qidx", "qcnt", "j")
    body = [f"{me} = {idx}[b, q]"]
    if layout == "patch" and side != PRE:
        body += ["co = j // L", "l = j % L"]
    body.append(f"tr_{'row' if side == PRE else 'col'}[{me}] = True" if layout != "patch" else "pass")
    for kind, op in ops:
        if kind == "assign":
            body += _assign(rp.p, op)
            continue
        line = f"{acc(op)} += {rp.value(op, coef[id(op)])}"
        if layout == "dense":
            body += [f"for {'j' if side == PRE else 'i'} in range({'n_post' if side == PRE else 'n_pre'}):", "    " + line]
        elif layout == "diag":
            body += [("j = i" if side == PRE else "i = j"), line]
        else:  # patch: the (entry, position) pairs of the spike
            mark = ["if not tr_row[f]:", "    tr_row[f] = True", "    tr_col[tn[0]] = f", "    tn[0] += 1"]
            if side == PRE:
                body += ["for e in range(ptr[i], ptr[i + 1]):", "    p = ep[e]", "    l = el[e]",
                         "    for co in range(c_out):", "        j = co * L + l",
                         "        f = co * P + p if shared else (l * P + p) * c_out + co"]
                body += indent(mark + [line], 8)
            else:
                body += ["for p in range(P):", "    i = pidx_p[p, l]", "    if i < 0:", "        continue",
                         "    f = co * P + p if shared else (l * P + p) * c_out + co"]
                body += indent(mark + [line], 4)
    return ["for b in range(B):", f"    for q in range({cnt}[b]):"] + indent(body, 8)


def _apply_touched(layout: str, one: list[str]) -> list[str]:
    cell = ["dwv = d_w[{}]", "d_w[{}] = np.float32(0.0)"]
    if layout in ("dense", "arrival"):
        c1 = [x.format("i, j") for x in cell] + one
        return (["for i in range(n_pre):", "    if tr_row[i]:", "        for j in range(n_post):"] + indent(c1, 12)
                + ["for j in range(n_post):", "    if tr_col[j]:", "        for i in range(n_pre):",
                   "            if not tr_row[i]:"] + indent(c1, 16))
    if layout == "diag":
        c1 = [x.format("i") for x in cell] + one
        return ["for i in range(n_w):", "    if tr_row[i] or tr_col[i]:", "        j = i"] + indent(c1, 8)
    c1 = ["f = tr_col[q]"] + [x.format("f") for x in cell] + one + ["tr_row[f] = False"]
    return ["for q in range(tn[0]):"] + indent(c1, 4) + ["tn[0] = 0"]


def _arrival(c: CompiledRule, rp: RulePrinter, pre_ops: list, post_ops: list, coef: dict, acc: Any) -> list[str]:
    """Arrival timing: presynaptic events at each synapse's arrival; presynaptic traces are
    ``tables[m, min(clock - last, K)]``."""
    pre_traces = [t for t in c.traces if t.side == PRE]
    K = "(tables.shape[1] - 1)"
    out: list[str] = []
    if pre_ops:
        body = ["slot = (pos[0] - d) % Ld", "cn = pcnt[b] if d == 0 else rcnt[slot, b]",
                "for q in range(cn):", "    i = pidx[b, q] if d == 0 else ridx[slot, b, q]",
                "    tr_row[i] = True", "    base = i * Ld + d",
                "    for jj in range(dptr[base], dptr[base + 1]):", "        j = dcol[jj]",
                "        last[b, i, j] = clock"]
        body += [f"        pv_{t.name} = tables[{m}, 0]" for m, t in enumerate(pre_traces)]
        body += [f"        {acc(op)} += {rp.value(op, coef[id(op)])}" for _, op in pre_ops]
        out += ["Ld = ridx.shape[0]", "for b in range(B):", "    for d in range(Ld):"] + indent(body, 8)
    if post_ops:
        body = ["j = qidx[b, q]", "tr_col[j] = True"]
        for kind, op in post_ops:
            if kind == "assign":
                body += _assign(rp.p, op)
                continue
            inner = ["age = clock - last[b, i, j]", f"if age > {K}:", f"    age = {K}"]
            inner += [f"pv_{t.name} = tables[{m}, age]" for m, t in enumerate(pre_traces)]
            inner += [f"{acc(op)} += {rp.value(op, coef[id(op)])}"]
            body += ["for i in range(n_pre):"] + indent(inner, 4)
        out += ["for b in range(B):", "    for q in range(qcnt[b]):"] + indent(body, 8)
    return out


__all__ = ["rule_piece", "supported", "Sym"]
