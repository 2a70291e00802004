"""The CUDA kernel of a network, printed from its models' definitions (numba-cuda source).

One launch runs a whole presentation.  A thread block takes ``SPB`` samples (1 for
inference: a batch runs in parallel blocks; the whole batch for learning, whose weights
the samples share); its threads stride over neurons, and the time loop is inside::

    for t in range(T):
        propagate      every connection, for each target neuron j (thread j):
                       ie[b, j] += w[i, j] for this sample's spikes i of the previous step
                       (ascending i, read from the source's spike bitset)      -- barrier
        populations    every neuron: the cell of its model (:mod:`..models.cell`), the
                       spike into the bitset (atomic OR), count, traces (the
                       population's and, while learning, its rules')           -- barrier
        rules          (learning) every synapse in a row of a presynaptic or a column of
                       a postsynaptic spike: dv = sum of the on_pre terms of the samples
                       where i fired, then of the on_post terms where j fired;
                       w = clamp(w + dv, wmin, wmax) * mask                    -- barrier

The spike bitsets (two per population, this step's and the previous one's, per sample)
live in shared memory.  Every sum is taken in the order of the fused CPU kernel (spikes
ascending, samples ascending, terms as written), so the two backends round alike; the
torch reference sums matrix products in BLAS's order (the last bit may differ, spikes do
not on the tested networks).
"""

from __future__ import annotations

import math
from typing import Any

from ..fused.loader import rng_source
from ..models.cell import Consts, indent, neuron_cell
from ..models.printer import CudaPrinter
from ..models.rule import PRE, Term

HEADER = '''import math

import numpy as np
from numba import config, cuda

if config.ENABLE_CUDASIM:
    @cuda.jit(device=True)
    def _mul(a, b):
        return a * b
else:  # a product NVVM cannot fuse with an addition (one rounding each, as on every backend)
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _mul(a, b):
        return libdevice.fmul_rn(a, b)


def _kernel(registers):
    """cuda.jit with at most ``registers`` per thread (the simulator takes no limit)."""
    return cuda.jit if config.ENABLE_CUDASIM else cuda.jit(max_registers=registers)


@cuda.jit(device=True)
def _fmin(a, b):
    return a if (a != a or a < b) else b


@cuda.jit(device=True)
def _fmax(a, b):
    return a if (a != a or a > b) else b


@cuda.jit(device=True)
def _bit(bits, k, bl, i):
    return (np.int64(bits[k, bl, i >> 5]) >> (i & 31)) & 1


@cuda.jit(device=True)
def _union_word(bits, k, nb, wd):
    """Word ``wd`` of the union of the block's samples' bitsets ``bits[k]``."""
    word = np.int64(0)
    for bl in range(nb):
        word |= np.int64(bits[k, bl, wd])
    return word


@cuda.jit(device=True)
def _any(bits, k, nb, i):
    """Neuron i spiked in any of the block's samples."""
    return (_union_word(bits, k, nb, i >> 5) >> (i & 31)) & 1
'''


#: registers per thread: a block of 512 threads fits one SM's 64K (ptxas gives 150-180 uncapped)
MAX_REGISTERS = 128


def words(n: int) -> int:
    return -(-n // 32)


def _fn(name: str, params: list[str], body: list[str]) -> list[str]:
    return ["", "", "@cuda.jit(device=True)", f"def {name}({', '.join(params)}):"] + indent(body or ["pass"], 4)


def _bits_loop(var: str, w: int, union: str, body: list[str]) -> list[str]:
    """``body`` for every set bit ``var`` of a bitset (``union``: the word expression, ``wd``
    its index), ascending."""
    return [f"for wd in range({w}):", f"    word = {union}", "    while word != 0:", "        low = word & (-word)",
            f"        {var} = wd * 32 + cuda.popc(low - 1)", "        word = word ^ low"] + indent(body, 8)


def _union(bits: str, k: str) -> str:
    return f"_union_word({bits}, {k}, b1 - b0, wd)"


class KernelSource:
    """The kernel module's text for ``net`` (``plan`` from :func:`snnrun.core.gpu.plan`), the
    constants' values and the kernel's argument names in order."""

    def __init__(self, plan: Any):
        self.plan = plan
        self.k = Consts()
        self.args: list[str] = []     # the kernel's array arguments, global names
        self.fns: list[str] = []
        self.body: list[str] = []
        self._build()

    # ------------------------------------------------------------------ pieces
    def _spike(self, P: Any) -> list[str]:
        """A spike ``s_`` of neuron (b, j): flag, bitset, count, traces (the population's and,
        while learning, its rules')."""
        k = self.k
        out = ["s[b, j] = s_", "if s_:", "    cuda.atomic.or_(bits, (nxt, b - b0, j >> 5), np.uint32(1) << np.uint32(j & 31))"]
        out += ["    count[b, j] += 1"] if P.counted else []
        if P.pop.traces:
            spike = (f"xv = {k(P.pop.trace_scale)}" if not P.pop.trace_additive
                     else f"xv = xv + {k(P.pop.trace_scale)}")
            out += [f"xv = _mul(x[b, j], {k(P.pop.trace_decay)})", "if s_:", "    " + spike, "x[b, j] = xv"]
        learn: list[str] = []
        for m, tr in enumerate(P.rule_traces):
            at = f"rt{m}[b, j]"
            learn += [f"{at} = _mul({at}, {k(tr.decay)})"]
            if tr.set is not None:
                learn += ["if s_:", f"    {at} = {k(tr.set)}"]
            elif tr.add is not None:
                learn += ["if s_:", f"    {at} = {at} + {k(tr.add)}"]
        return out + (["if learning:"] + indent(learn, 4) if learn else [])

    def _population(self, P: Any) -> None:
        """The cells of population P; with ``one_spike`` the crossers bid for the sample's
        spike (atomic max of ``(draw << 32) | ~j``: the largest draw, then the lowest index,
        as models.rng), and :meth:`_winner` spikes the winner after a barrier."""
        c, k = P.pop.compiled, self.k
        p = CudaPrinter({**{n: n for n, _ in c.fast}, **{n: f"{n}_" for n, _ in c.slow},
                         "I": "I_", "I_inh": "I_inh", "active": "active"}, k)
        start = len(k.values)
        pre: list[str] = []
        if c.slow_update:
            pre += ["if learning:"] + indent([f"{n}_ = sl_{n}[j]" for n, _ in c.slow] + p.block(c.slow_update)
                                             + [f"sl_{n}[j] = {n}_" for n, _ in c.slow], 4)
        pre += [f"dl_{n} = np.float32(0.0)" for n in c.slow_incremented]
        cell = neuron_cell(c, p, k, ext=P.ext, inc=lambda n, op, v: f"dl_{n} = dl_{n} {op[0]} {v}")
        if P.prob:  # Bernoulli input drawn here, as models.rng.bernoulli draws it
            read = cell.index("I_ = np.float32(xin[t, b, j])")
            cell[read] = "I_ = np.float32(1.0) if draw(skin, site_key(b, j)) < thr[b, j] else np.float32(0.0)"
        if P.pop.one_spike:
            cell += ["s[b, j] = False", "if s_:", "    r = draw(sk, site_key(b, j))",
                     "    cuda.atomic.max(best, b - b0, (np.uint64(r) << np.uint64(32)) | np.uint64(4294967295 - j))"]
        else:
            cell += self._spike(P)
        post = ["if learning:"] + indent([f"sl_{n}[j] = sl_{n}[j] + dl_{n}" for n in c.slow_incremented], 4) \
            if c.slow_incremented else []
        body = [f"sk = step_key(seed, {P.stream}, t)"] if P.pop.one_spike else []
        body += [f"skin = step_key(seed, {P.input_stream}, t)"] if P.prob else []
        body += [f"for j in range(tid, {P.pop.n}, nth):"] + indent(pre + ["for b in range(b0, b1):"] + indent(cell, 4)
                                                                    + post, 4)
        body = [f"k{i} = kc[{i}]" for i in range(start, len(k.values))] + body
        params = ["t", "learning", "seed", "b0", "b1", "tid", "nth", "bits", "nxt", "best", "kc"] + [a for a, _ in P.arrays]
        self.fns += _fn(f"pop_{P.key}", params, body)
        call = f"(t, learning, seed, b0, b1, tid, nth, bits_{P.key}, nxt, best_{P.key}, kc, {', '.join(g for _, g in P.arrays)})"
        self.body.append(f"pop_{P.key}{call}")
        if P.pop.one_spike:
            self._winner(P, params, call)

    def _winner(self, P: Any, params: list, call: str) -> None:
        start = len(self.k.values)
        body = ["for b in range(b0, b1):", "    bid = best[b - b0]",
                "    win = np.int64(np.uint64(4294967295) - (bid & np.uint64(4294967295))) if bid != 0 else np.int64(-1)",
                f"    for j in range(tid, {P.pop.n}, nth):", "        s_ = j == win"] + indent(self._spike(P), 8)
        body = [f"k{i} = kc[{i}]" for i in range(start, len(self.k.values))] + body
        self.fns += _fn(f"win_{P.key}", params, body)
        self.winners.append(f"win_{P.key}{call}")

    def _propagate(self, C: Any) -> None:
        src = C.source
        if C.diag:
            body = ["for b in range(b0, b1):", f"    for j in range(tid, {C.n_post}, nth):",
                    "        if _bit(bits, cur, b - b0, j):", "            out[b, j] = out[b, j] + w[j]"]
        else:
            inner = _bits_loop("i", words(src.pop.n), "np.int64(bits[cur, b - b0, wd])", ["acc = acc + w[i, j]"])
            body = ["for b in range(b0, b1):", f"    for j in range(tid, {C.n_post}, nth):", "        acc = out[b, j]"]
            body += indent(inner, 8) + ["        out[b, j] = acc"]
        self.fns += _fn(f"prop_{C.key}", ["b0", "b1", "tid", "nth", "bits", "cur", "w", "out"], body)
        self.body.append(f"prop_{C.key}(b0, b1, tid, nth, bits_{src.key}, cur, {C.w}, {C.out})")

    def _rule(self, C: Any) -> None:
        from ..fused.rule_piece import RulePrinter

        rule, k = C.conn.rule, self.k
        c = rule.compiled
        start = len(k.values)
        rp = RulePrinter(c, "diag" if C.diag else "dense", set(C.source.pop.slow_state), set(C.target.pop.slow_state), k)
        names = dict(rp.p.names)
        for t in c.traces:
            names[t.name] = f"tr_{t.name}[b, {'i' if t.side == PRE else 'j'}]"
        rp.p = CudaPrinter(names, k)
        coef = {id(t): k(t.coeff * rule.scale) for t in c.terms()}
        pre = [op for op in c.on_pre if isinstance(op, Term)]
        post = [op for op in c.on_post if isinstance(op, Term)]
        lo = k(C.conn.wmin) if math.isfinite(C.conn.wmin) else None
        hi = k(C.conn.wmax) if math.isfinite(C.conn.wmax) else None

        def terms(ops: list, bits: str, me: str) -> list[str]:
            if not ops:
                return []
            lines = [f"    dv = np.float32(dv + {rp.value(op, coef[id(op)])})" for op in ops]
            return ["for b in range(b0, b1):", f"    if _bit({bits}, nxt, b - b0, {me}):"] + indent(lines, 4)

        wij = "w[i]" if C.diag else "w[i, j]"
        mij = "mask[i]" if C.diag else "mask[i, j]"
        apply = [f"v = {wij} + dv"] + ([f"if v < {lo}:", f"    v = {lo}"] if lo else []) + (
            [f"if v > {hi}:", f"    v = {hi}"] if hi else []) + [f"{wij} = v * {mij}" if C.mask else f"{wij} = v"]
        both = ["dv = np.float32(0.0)"] + terms(pre, "bpre", "i") + terms(post, "bpost", "j") + apply
        body: list[str] = []
        if C.diag:
            hit = " or ".join((["_any(bpre, nxt, b1 - b0, i)"] if pre else []) + (["_any(bpost, nxt, b1 - b0, i)"] if post else []))
            if hit:  # a rule with no terms changes no weight
                body += [f"for i in range(tid, {C.n_post}, nth):", "    j = i", f"    if {hit}:"] + indent(both, 8)
        else:
            if pre:
                rows = [f"for j in range(tid, {C.n_post}, nth):"] + indent(both, 4)
                body += _bits_loop("i", words(C.source.pop.n), _union("bpre", "nxt"), rows)
            if post:
                only = ["dv = np.float32(0.0)"] + terms(post, "bpost", "j") + apply
                skip = ["if _any(bpre, nxt, b1 - b0, i):", "    continue"] if pre else []
                cols = [f"for i in range(tid, {C.source.pop.n}, nth):"] + indent(skip + only, 4)
                body += _bits_loop("j", words(C.target.pop.n), _union("bpost", "nxt"), cols)
        params = ["t", "b0", "b1", "tid", "nth", "bpre", "bpost", "nxt", "kc", "w", "mask"] + [a for a, _ in C.rule_arrays]
        self.fns += _fn(f"rule_{C.key}", params, [f"k{i} = kc[{i}]" for i in range(start, len(k.values))] + body)
        self.body.append(f"rule_{C.key}(t, b0, b1, tid, nth, bits_{C.source.key}, bits_{C.target.key}, nxt, kc, {C.w}, "
                         f"{C.mask_arg}{''.join(', ' + g for _, g in C.rule_arrays)})")
        self._assigns(C, rp, start, params)
        if lo or hi:  # at a presentation's first step every weight is clamped, as the reference does
            ix = "i" if C.diag else "i, j"  # no reshape in the kernel: numba-cuda links a helper for it
            clamp = [f"for f in range(tid, {C.n_w}, nth):"] + (["    i = f"] if C.diag else
                                                               [f"    i = f // {C.n_post}", f"    j = f % {C.n_post}"])
            clamp += [f"    v = w[{ix}]"]
            clamp += indent(([f"if v < {lo}:", f"    v = {lo}"] if lo else []) + ([f"if v > {hi}:", f"    v = {hi}"] if hi else []), 4)
            clamp += [f"    w[{ix}] = v * mask[{ix}]" if C.mask else f"    w[{ix}] = v"]
            self.fns += _fn(f"clamp_{C.key}", ["tid", "nth", "kc", "w", "mask"],
                            [f"k{i} = kc[{i}]" for i in range(start, len(k.values))] + clamp)
            self.clamps.append(f"clamp_{C.key}(tid, nth, kc, {C.w}, {C.mask_arg})")

    def _assigns(self, C: Any, rp: Any, start: int, params: list) -> None:
        """on_pre / on_post trace assignments at this step's spikes, after every synapse has
        read the traces (the rule's terms come first in each list; see ``unsupported_reason``)."""
        c = C.conn.rule.compiled
        body = []
        for ops, bits, me, n in ((c.on_pre, "bpre", "i", C.source.pop.n), (c.on_post, "bpost", "j", C.target.pop.n)):
            ops = [op for op in ops if not isinstance(op, Term)]
            if ops:
                body += ["for b in range(b0, b1):", f"    for {me} in range(tid, {n}, nth):",
                         f"        if _bit({bits}, nxt, b - b0, {me}):"] + indent(rp.p.block(tuple(ops)), 12)
        if body:
            self.fns += _fn(f"assign_{C.key}", params, [f"k{i} = kc[{i}]" for i in range(start, len(self.k.values))] + body)
            self.assigns.append(self.body[-1].replace(f"rule_{C.key}(", f"assign_{C.key}(", 1))

    # ------------------------------------------------------------------ kernel
    def _build(self) -> None:
        plan = self.plan
        self.clamps: list[str] = []
        self.assigns: list[str] = []
        self.winners: list[str] = []
        spb = plan.spb
        for P in plan.pops:
            self._population(P)
        pops_calls, self.body = self.body, []
        for C in plan.conns:
            self._propagate(C)
        prop_calls, self.body = self.body, []
        for C in plan.plastic:
            self._rule(C)
        rule_calls, self.body = self.body, []
        self.args = plan.arg_names()
        L = ["tid = cuda.threadIdx.x", "nth = cuda.blockDim.x", f"b0 = cuda.blockIdx.x * {spb}",
             f"b1 = min(b0 + {spb}, {plan.batch_arg}.shape[0])"]
        for P in plan.pops:
            L.append(f"bits_{P.key} = cuda.shared.array((2, {spb}, {words(P.pop.n)}), np.uint32)")
            L.append(f"best_{P.key} = cuda.shared.array({spb}, np.uint64)")
        for P in plan.pops:  # the previous run's last spikes, in buffer 0
            W = words(P.pop.n)
            L += [f"for f in range(tid, {2 * spb * W}, nth):", f"    bits_{P.key}[f // {spb * W}, (f // {W}) % {spb}, f % {W}] = 0"]
        L.append("cuda.syncthreads()")
        for P in plan.pops:
            L += ["for b in range(b0, b1):", f"    for j in range(tid, {P.pop.n}, nth):", f"        if {P.s}[b, j]:",
                  f"            cuda.atomic.or_(bits_{P.key}, (0, b - b0, j >> 5), np.uint32(1) << np.uint32(j & 31))"]
        L.append("cuda.syncthreads()")
        step = ["cur = t & 1", "nxt = cur ^ 1"] + prop_calls
        for P in plan.pops:
            W = words(P.pop.n)
            step += [f"for f in range(tid, {spb * W}, nth):", f"    bits_{P.key}[nxt, f // {W}, f % {W}] = 0"]
            if P.pop.one_spike:
                step += [f"for f in range(tid, {spb}, nth):", f"    best_{P.key}[f] = 0"]
        step += ["cuda.syncthreads()"] + pops_calls + ["cuda.syncthreads()"]
        if self.winners:
            step += self.winners + ["cuda.syncthreads()"]
        if rule_calls:
            learn = list(rule_calls)
            if self.clamps:
                learn += ["if t == 0:", "    cuda.syncthreads()"] + indent(self.clamps, 4)
            step += ["if learning:"] + indent(learn + ["cuda.syncthreads()"] + self.assigns, 4)
        L += ["for t in range(T):"] + indent(step, 4)
        kernel = ["", "", f"@_kernel({MAX_REGISTERS})",
                  f"def kernel(T, learning, seed, kc, {', '.join(self.args)}):"] + indent(L, 4)
        self.text = HEADER + "\n\n" + rng_source("cuda.jit(device=True)") + "\n".join(self.fns + kernel) + "\n"


__all__ = ["KernelSource", "words"]
