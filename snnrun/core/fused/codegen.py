"""Generate one numba kernel that runs a whole presentation of a network.

The kernel is Python source written for the network at build time (names, kinds and
constants are baked in), compiled by numba and cached on disk.  It runs the same step
as :meth:`Network.run` (propagate, update populations, learn) with the same float32
arithmetic, but

* the loop over time, batch and neurons is compiled: no per-step dispatch;
* propagation is event-driven: only rows of presynaptic neurons that spiked are added
  (spike index lists are kept per population and per delay slot);
* STDP touches only the rows of presynaptic and the columns of postsynaptic spikes.

Convolutional (``conv2d``, shared kernels) and locally connected (``local``) connections
run event-driven too (:func:`emit_patch_connection`): each input spike is scattered to the
(position, kernel entry) pairs whose patch holds it, and STDP updates only the kernel
entries touched by this step's spikes -- shared entries summed over positions, as in the
reference's ``outer``.

State lives in the engine's torch tensors; the kernel works on zero-copy numpy views of
them, so the reference (torch) and fused paths share state and can be mixed.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import torch

from ..connections.conv import Conv2d
from ..connections.dense import Dense, OneToOne
from ..connections.local import Local
from ..learning.stdp import Hebbian, PostPre, TripletPostPre, WeightDependentPostPre
from ..neurons.adaptive import AdaptiveLIF, DiehlCook
from ..neurons.izhikevich import Izhikevich
from ..neurons.lif import G_TINY, IF, LIF, CurrentLIF
from ..neurons.simple import Input, McCullochPitts

SUPPORTED_POPS = (Input, IF, LIF, CurrentLIF, AdaptiveLIF, DiehlCook, Izhikevich, McCullochPitts)
SUPPORTED_CONNS = (Dense, OneToOne, Conv2d, Local)
PATCH_CONNS = (Conv2d, Local)
PATCH_RULES = (PostPre, WeightDependentPostPre, Hebbian)  # rules the patch connections support
SUPPORTED_RULES = (PostPre, WeightDependentPostPre, Hebbian, TripletPostPre)
PARALLEL_SYNAPSES = 1 << 22  # dense layers at least this large propagate on all threads
PREPASS_SYNAPSES = 1 << 20   # static input layers at least this large are propagated ahead (see emit_prepass)
PREPASS_TILE = 512           # post neurons per tile of the ahead-of-time propagation (measured best of 16..2048)
PREPASS_MAX_FLOATS = 1 << 26  # ... when its current buffer (T x B x n_post) stays under 256 MB


def f32(x: float) -> str:
    """A float32 literal for generated code."""
    if math.isinf(x):
        return "np.float32(np.inf)" if x > 0 else "np.float32(-np.inf)"
    return f"np.float32({float(np.float32(x))!r})"


def indent(code: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line.strip() else line for line in code.splitlines())


class KernelSource:
    """Collects kernel arguments (name -> how to fetch the array) and code blocks."""

    def __init__(self) -> None:
        self.args: list[tuple[str, Any]] = []  # (name, getter() -> torch tensor)
        self.setup: list[str] = []  # before the time loop
        self.zero: list[str] = []  # at the start of each step
        self.propagate: list[str] = []
        self.update: list[str] = []
        self.learn: list[str] = []
        self.finish: list[str] = []  # after the time loop
        self.returns: list[str] = []  # ints returned (e.g. ring positions)
        self.batch_axis: dict[str, int] = {}  # argument -> its batch axis (for splitting a batch)
        self.parallel = False  # any prange loop (large dense propagation)
        self.input_spike: dict[str, str] = {}  # input population -> expression of its spike at (t, b, i)
        self.written: set[str] = set()  # input buffers some connection already adds into

    def arg(self, name: str, getter: Any, batch_axis: int | None = None) -> str:
        self.args.append((name, getter))
        if batch_axis is not None:
            self.batch_axis[name] = batch_axis
        return name

    def source(self) -> str:
        params = ", ".join(["T", "learning", "seed"] + [n for n, _ in self.args])
        body = [
            "np.random.seed(seed)",
            *self.setup,
            "for t in range(T):",
            indent("\n".join(self.zero + self.propagate + self.update) or "pass", 4),
            "    if learning:",
            indent("\n".join(self.learn) or "pass", 8),
            *self.finish,
            f"return ({', '.join(self.returns)}{',' if self.returns else ''})",
        ]
        return (
            "import numpy as np\nfrom numba import njit, prange\n\n\n"
            f"@njit(cache=True, nogil=True{', parallel=True' if self.parallel else ''})\n"
            f"def kernel({params}):\n" + indent("\n".join(body), 4) + "\n"
        )


# ---------------------------------------------------------------------- populations
def emit_population(src: KernelSource, k: int, pop: Any, input_index: int | None, counted: bool,
                    prob_input: bool = False) -> None:
    """Per-population arrays, spike lists, input buffers and the update code."""
    P = f"p{k}"
    n = pop.n
    src.arg(f"{P}_s", batch_axis=0, getter=lambda pop=pop: pop.s.view(pop.batch, -1))
    src.arg(f"{P}_ref", batch_axis=0, getter=lambda pop=pop: pop.refrac_count.view(pop.batch, -1))
    if pop.traces:
        src.arg(f"{P}_x", batch_axis=0, getter=lambda pop=pop: pop.x.view(pop.batch, -1))
    # spike lists built from the carried-over spikes; input buffers
    src.setup.append(
        f"B = {P}_s.shape[0]\n"
        f"{P}_idx = np.empty((B, {n}), np.int32)\n{P}_cnt = np.zeros(B, np.int32)\n"
        f"for b in range(B):\n"
        f"    c = 0\n"
        f"    for j in range({n}):\n"
        f"        if {P}_s[b, j]:\n"
        f"            {P}_idx[b, c] = j\n            c += 1\n"
        f"    {P}_cnt[b] = c\n"
        f"{P}_ie = np.zeros((B, {n}), np.float32)\n"
        f"{P}_ii = np.zeros((B, {n}), np.float32)"
    )
    if not isinstance(pop, Input):
        src.zero.append(f"{P}_ie[:, :] = 0.0")
        if pop.conductance:
            src.zero.append(f"{P}_ii[:, :] = 0.0")
    if input_index is not None and isinstance(pop, Input):
        src.input_spike[P] = f"{P}_gen[t, b, i]" if prob_input else f"{P}_xin[t, b, i] != 0"
    if input_index is not None:
        src.arg(f"{P}_xin" if isinstance(pop, Input) else f"{P}_ext", ("input", input_index),
                batch_axis=0 if (isinstance(pop, Input) and prob_input) else 1)
        if isinstance(pop, Input) and prob_input:
            # spikes drawn here: Bernoulli(prob) each step, by geometric jumps between spikes
            src.setup.append(
                f"{P}_gen = np.zeros((T, B, {n}), np.bool_)\n"
                f"for b in range(B):\n"
                f"    for j in range({n}):\n"
                f"        p = {P}_xin[b, j]\n"
                f"        if p <= 0.0:\n            continue\n"
                f"        if p >= 1.0:\n"
                f"            for tt in range(T):\n                {P}_gen[tt, b, j] = True\n"
                f"            continue\n"
                f"        lq = np.log1p(-p)\n"
                f"        tt = int(np.floor(np.log(1.0 - np.random.random()) / lq))\n"
                f"        while tt < T:\n"
                f"            {P}_gen[tt, b, j] = True\n"
                f"            tt += 1 + int(np.floor(np.log(1.0 - np.random.random()) / lq))"
            )
    if counted:
        src.arg(f"{P}_count", ("count", k), batch_axis=0)
    trace = ""
    if pop.traces:
        if pop.trace_additive:
            trace = f"x = {P}_x[b, j] * {f32(pop.trace_decay)}\nif s:\n    x = x + {f32(pop.trace_scale)}\n{P}_x[b, j] = x"
        else:
            trace = f"x = {P}_x[b, j] * {f32(pop.trace_decay)}\nif s:\n    x = {f32(pop.trace_scale)}\n{P}_x[b, j] = x"
    ext = ""
    if input_index is not None and not isinstance(pop, Input):
        ext = f"{P}_ie[b, j] += {P}_ext[t, b, j]\n"
        if pop.conductance:  # negative input opens the inhibitory conductance (as Network.run)
            ext = (f"xv = {P}_ext[t, b, j]\nif xv >= 0:\n    {P}_ie[b, j] += xv\n"
                   f"else:\n    {P}_ii[b, j] -= xv\n")
    body = neuron_body(src, P, pop, prob_input)
    pre_loop, post_loop = "", ""
    if isinstance(pop, DiehlCook):
        src.arg(f"{P}_theta", lambda pop=pop: pop.theta.view(-1))
        src.setup.append(f"{P}_dth = np.zeros({n}, np.float32)")
        pre_loop = (f"if learning:\n    for j in range({n}):\n        {P}_theta[j] = {P}_theta[j] * {f32(pop.theta_decay)}\n"
                    f"{P}_dth[:] = 0.0\n")
        post_loop = f"if learning:\n    for j in range({n}):\n        {P}_theta[j] = {P}_theta[j] + {P}_dth[j] * {f32(pop.theta_plus)}\n"
    one_spike = isinstance(pop, DiehlCook) and pop.one_spike
    lines = [
        pre_loop,
        "for b in range(B):",
        "    c = 0",
        *(["    win = -1", "    best = np.float32(-1.0)"] if one_spike else []),
        f"    for j in range({n}):",
        indent(ext + body, 8),
    ]
    if one_spike:
        lines += [
            "        if s:",
            f"            {P}_dth[j] += 1.0",
            "            r = np.float32(np.random.random())",
            "            if r > best:",
            "                best = r",
            "                win = j",
            "        s = False",
            f"        {P}_s[b, j] = False",
            "    if win >= 0:",
            f"        {P}_s[b, win] = True",
            f"        {P}_idx[b, 0] = win",
            "        c = 1",
        ]
        if trace:
            lines += [f"    for j in range({n}):", f"        s = {P}_s[b, j]", indent(trace, 8)]
    else:
        lines += [
            f"        {P}_s[b, j] = s",
            "        if s:",
            f"            {P}_idx[b, c] = j",
            "            c += 1",
        ]
        if isinstance(pop, DiehlCook):
            lines.append(f"            {P}_dth[j] += 1.0")
        if trace:
            lines.append(indent(trace, 8))
    lines.append(f"    {P}_cnt[b] = c")
    if counted:
        lines.append(f"    for q in range(c):\n        {P}_count[b, {P}_idx[b, q]] += 1")
    lines.append(post_loop)
    src.update.append("\n".join(line for line in lines if line is not None))


def neuron_body(src: KernelSource, P: str, pop: Any, prob_input: bool = False) -> str:
    """Code computing ``s`` (bool) for neuron (b, j), updating its state arrays."""
    if isinstance(pop, Input):
        return f"s = {P}_gen[t, b, j]\n" if prob_input else f"s = {P}_xin[t, b, j] != 0\n"
    if isinstance(pop, McCullochPitts):
        src.arg(f"{P}_v", batch_axis=0, getter=lambda pop=pop: pop.v.view(pop.batch, -1))
        return f"v = {P}_ie[b, j]\n{P}_v[b, j] = v\ns = v >= {f32(pop.v_thresh)}\n"
    if isinstance(pop, Izhikevich):
        src.arg(f"{P}_v", batch_axis=0, getter=lambda pop=pop: pop.v.view(pop.batch, -1))
        src.arg(f"{P}_u", batch_axis=0, getter=lambda pop=pop: pop.u.view(pop.batch, -1))
        refrac = pop.refrac > 0
        code = f"v = {P}_v[b, j]\nu = {P}_u[b, j]\ni = {P}_ie[b, j]\n"
        if refrac:
            code += f"if {P}_ref[b, j] >= {f32(pop.refrac_tol)}:\n    i = np.float32(0.0)\n"
        h = f32(pop.half)
        for _ in range(2):
            code += f"v = v + (np.float32(0.04) * v * v + np.float32(5.0) * v + np.float32(140.0) - u + i) * {h}\n"
        code += f"u = u + ({f32(pop.b)} * v - u) * {f32(pop.a * pop.dt)}\n"
        code += f"s = v >= {f32(pop.v_peak)}\nif s:\n    v = {f32(pop.c)}\n    u = u + {f32(pop.d)}\n"
        if refrac:
            code += (f"rc = {P}_ref[b, j] - {f32(pop.dt)}\nif rc < 0:\n    rc = np.float32(0.0)\n"
                     f"if s:\n    rc = {f32(pop.refrac)}\n{P}_ref[b, j] = rc\n")
        return code + f"{P}_v[b, j] = v\n{P}_u[b, j] = u\n"
    # the integrate-and-fire family (IF, LIF, CurrentLIF, AdaptiveLIF, DiehlCook)
    src.arg(f"{P}_v", batch_axis=0, getter=lambda pop=pop: pop.v.view(pop.batch, -1))
    code = f"v = {P}_v[b, j]\nactive = {P}_ref[b, j] < {f32(pop.refrac_tol)}\n"
    if isinstance(pop, CurrentLIF):
        src.arg(f"{P}_i", batch_axis=0, getter=lambda pop=pop: pop.i.view(pop.batch, -1))
        code += f"cur = {P}_i[b, j] * {f32(pop.syn_decay)} + {P}_ie[b, j]\n{P}_i[b, j] = cur\n"
    else:
        code += f"cur = {P}_ie[b, j]\n"
    if isinstance(pop, IF):
        code += "if active:\n    v = v + cur\n"
    elif pop.conductance:
        src.arg(f"{P}_ge", batch_axis=0, getter=lambda pop=pop: pop.ge.view(pop.batch, -1))
        src.arg(f"{P}_gi", batch_axis=0, getter=lambda pop=pop: pop.gi.view(pop.batch, -1))
        code += (f"ge = {P}_ge[b, j] + cur\ngi = {P}_gi[b, j] + {P}_ii[b, j]\n"
                 f"if active:\n" + (
                 f"    dv = ({f32(pop.v_rest)} - v) + ge * ({f32(pop.e_exc)} - v) + gi * ({f32(pop.e_inh)} - v)\n"
                 f"    v = v + dv * {f32(pop.dt_over_tau)}\n"
                 f"    v = min(max(v, {f32(pop.e_inh)}), {f32(pop.e_exc)})\n" if pop.euler else
                 f"    gem = ge * {f32(pop.ge_mean)}\n"
                 f"    gim = gi * {f32(pop.gi_mean)}\n"
                 f"    g = np.float32(1.0) + gem + gim\n"
                 f"    vinf = ({f32(pop.v_rest)} + gem * {f32(pop.e_exc)} + gim * {f32(pop.e_inh)}) / g\n"
                 f"    v = vinf + (v - vinf) * np.exp(g * {f32(-pop.dt_over_tau)})\n") +
                 f"ge = ge * {f32(pop.ge_decay)}\nif abs(ge) < {f32(G_TINY)}:\n    ge = np.float32(0.0)\n"
                 f"gi = gi * {f32(pop.gi_decay)}\nif abs(gi) < {f32(G_TINY)}:\n    gi = np.float32(0.0)\n"
                 f"{P}_ge[b, j] = ge\n{P}_gi[b, j] = gi\n")
    else:
        code += (f"v = (v - {f32(pop.v_rest)}) * {f32(pop.decay)} + {f32(pop.v_rest)}\n"
                 "if active:\n    v = v + cur\n")
    if pop.refrac > 0:
        code += f"rc = {P}_ref[b, j] - {f32(pop.dt)}\nif rc < 0:\n    rc = np.float32(0.0)\n"
    thresh = f32(pop.v_thresh)
    if isinstance(pop, AdaptiveLIF):
        src.arg(f"{P}_theta", batch_axis=0, getter=lambda pop=pop: pop.theta.view(pop.batch, -1))
        code += (f"th = {P}_theta[b, j] * {f32(pop.theta_decay)}\n"
                 f"s = v >= th + {thresh}\nif s:\n    th = th + {f32(pop.theta_plus)}\n{P}_theta[b, j] = th\n")
    elif isinstance(pop, DiehlCook):
        code += f"s = v >= {P}_theta[j] + {thresh}\n"
        if pop.lockout > 0:  # no spike within lockout_ms of the last one (see neurons.adaptive)
            src.arg(f"{P}_lock", batch_axis=0, getter=lambda pop=pop: pop.lock_count.view(pop.batch, -1))
            code += (f"lk = {P}_lock[b, j] - {f32(pop.dt)}\nif lk < 0:\n    lk = np.float32(0.0)\n"
                     f"if s and lk >= {f32(pop.refrac_tol)}:\n    s = False\n"
                     f"if s:\n    lk = {f32(pop.lockout)}\n{P}_lock[b, j] = lk\n")
    else:
        code += f"s = v >= {thresh}\n"
    code += f"if s:\n    v = {f32(pop.v_reset)}\n"
    if pop.refrac > 0:
        code += f"    rc = {f32(pop.refrac)}\n{P}_ref[b, j] = rc\n"
    if pop.v_lbound is not None:
        code += f"if v < {f32(pop.v_lbound)}:\n    v = {f32(pop.v_lbound)}\n"
    return code + f"{P}_v[b, j] = v\n"


# ---------------------------------------------------------------------- connections
def delay_csr(conn: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Synapses of a dense connection grouped by (pre neuron, delay): for group
    ``g = i * L + d`` the post neurons are ``col[ptr[g]:ptr[g + 1]]``.  Cached until the
    delays tensor changes."""
    d = conn.delays
    key = (d.data_ptr(), d._version)
    cache = getattr(conn, "_delay_csr", None)
    if cache is not None and cache[0] == key:
        return cache[1]
    L = conn.max_delay + 1
    n_pre, n_post = d.shape
    group = (torch.arange(n_pre)[:, None] * L + d.cpu()).reshape(-1)
    order = torch.argsort(group, stable=True)
    col = (order % n_post).to(torch.int32)
    ptr = torch.zeros(n_pre * L + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(group, minlength=n_pre * L), 0)
    conn._delay_csr = (key, (ptr, col))
    return ptr, col


def emit_connection(src: KernelSource, k: int, conn: Any, pops: list) -> None:
    if isinstance(conn, PATCH_CONNS):
        emit_patch_connection(src, k, conn, pops)
        return
    C = f"c{k}"
    si = pops.index(conn.source)
    ti = pops.index(conn.target)
    S, Tg = f"p{si}", f"p{ti}"
    out = f"{Tg}_ii" if (conn.receptor_inh and conn.target.conductance) else f"{Tg}_ie"
    src.arg(f"{C}_w", lambda conn=conn: conn.w)
    n_pre, n_post = conn.source.n, conn.target.n
    dense = isinstance(conn, Dense)
    if conn.b is not None:
        src.arg(f"{C}_bias", lambda conn=conn: conn.b.view(-1))
    add_row = (f"for j in range({n_post}):\n    {out}[b, j] += {C}_w[i, j]\n" if dense
               else f"{out}[b, i] += {C}_w[i]\n")
    first_writer = out not in src.written
    src.written.add(out)
    static_ahead = None
    if (conn.max_delay == 0 and dense and first_writer and S in src.input_spike
            and n_pre * n_post >= PREPASS_SYNAPSES):
        static_ahead = emit_prepass(src, C, S, out, conn)
    if conn.max_delay == 0 and dense and n_pre * n_post >= PARALLEL_SYNAPSES:
        # large dense layer: post neurons split into one chunk per thread (a parallel region per step)
        if not src.parallel:
            src.arg("nthreads", lambda: numba.get_num_threads())  # an argument keeps the kernel cacheable
        src.parallel = True
        src.setup.append(f"{C}_chunk = ({n_post} + nthreads - 1) // nthreads\n"
                         f"{C}_acc = np.zeros((nthreads, {C}_chunk), np.float32)")
        # per chunk: sum the active rows into a local 1-D accumulator (vectorised), then add
        code = (f"for b in range(B):\n"
                f"    for ch in prange(nthreads):\n"
                f"        j0 = ch * {C}_chunk\n"
                f"        j1 = min(j0 + {C}_chunk, {n_post})\n"
                f"        acc = {C}_acc[ch, :j1 - j0]\n"
                f"        acc[:] = 0.0\n"
                f"        for q in range({S}_cnt[b]):\n"
                f"            row = {C}_w[{S}_idx[b, q], j0:j1]\n"
                f"            for j in range(j1 - j0):\n"
                f"                acc[j] += row[j]\n"
                f"        {out}[b, j0:j1] += acc\n")
    elif conn.max_delay == 0:
        code = (f"for b in range(B):\n"
                f"    for q in range({S}_cnt[b]):\n"
                f"        i = {S}_idx[b, q]\n" + indent(add_row, 8) + "\n")
    else:
        L = conn.max_delay + 1
        src.arg(f"{C}_ring", batch_axis=1, getter=lambda conn=conn: conn.ring.view(conn.max_delay + 1, conn.ring.shape[1], -1))
        src.arg(f"{C}_pos0", lambda conn=conn: conn.pos)
        src.returns.append(f"{C}_pos")
        src.setup.append(
            f"{C}_pos = {C}_pos0\n"
            f"{C}_ridx = np.empty(({L}, B, {n_pre}), np.int32)\n{C}_rcnt = np.zeros(({L}, B), np.int32)\n"
            f"for l in range({L}):\n    for b in range(B):\n        c = 0\n"
            f"        for i in range({n_pre}):\n            if {C}_ring[l, b, i]:\n"
            f"                {C}_ridx[l, b, c] = i\n                c += 1\n        {C}_rcnt[l, b] = c"
        )
        write = (f"for b in range(B):\n"
                 f"    {C}_ring[{C}_pos, b, :] = False\n"
                 f"    for q in range({S}_cnt[b]):\n"
                 f"        {C}_ring[{C}_pos, b, {S}_idx[b, q]] = True\n"
                 f"        {C}_ridx[{C}_pos, b, q] = {S}_idx[b, q]\n"
                 f"    {C}_rcnt[{C}_pos, b] = {S}_cnt[b]\n")
        if conn.delays is None:
            code = (write + f"{C}_pos = ({C}_pos + 1) % {L}\n"
                    f"for b in range(B):\n"
                    f"    for q in range({C}_rcnt[{C}_pos, b]):\n"
                    f"        i = {C}_ridx[{C}_pos, b, q]\n" + indent(add_row, 8) + "\n")
        else:
            # per-synapse delays: synapses grouped by (pre neuron, delay) -> post neurons
            src.arg(f"{C}_dptr", lambda conn=conn: delay_csr(conn)[0])
            src.arg(f"{C}_dcol", lambda conn=conn: delay_csr(conn)[1])
            code = (write +
                    f"for b in range(B):\n"
                    f"    for d in range({L}):\n"
                    f"        slot = ({C}_pos - d) % {L}\n"
                    f"        for q in range({C}_rcnt[slot, b]):\n"
                    f"            i = {C}_ridx[slot, b, q]\n"
                    f"            base = i * {L} + d\n"
                    f"            for jj in range({C}_dptr[base], {C}_dptr[base + 1]):\n"
                    f"                j = {C}_dcol[jj]\n"
                    f"                {out}[b, j] += {C}_w[i, j]\n"
                    f"{C}_pos = ({C}_pos + 1) % {L}\n")
    if static_ahead is not None:
        code = static_ahead + indent(code, 4) + "\n"
    if conn.b is not None:
        code += f"for b in range(B):\n    for j in range({n_post}):\n        {out}[b, j] += {C}_bias[j]\n"
    src.propagate.append(code)


def clamp_code(lo: float, hi: float) -> str:
    """Code clamping ``w`` to ``[lo, hi]`` (empty when unbounded)."""
    code = ""
    if lo > -math.inf:
        code += f"if w < {f32(lo)}:\n    w = {f32(lo)}\n"
    if hi < math.inf:
        code += f"if w > {f32(hi)}:\n    w = {f32(hi)}\n"
    return code


def emit_rule(src: KernelSource, k: int, conn: Any, pops: list) -> None:
    if isinstance(conn, PATCH_CONNS):
        emit_patch_rule(src, k, conn, pops)
        return
    rule = conn.rule
    C = f"c{k}"
    S, Tg = f"p{pops.index(conn.source)}", f"p{pops.index(conn.target)}"
    n_pre, n_post = conn.source.n, conn.target.n
    src.arg(f"{C}_nupre", lambda rule=rule: np.float32(rule.nu_pre * rule.scale))
    src.arg(f"{C}_nupost", lambda rule=rule: np.float32(rule.nu_post * rule.scale))
    masked = conn.mask is not None
    if masked:
        src.arg(f"{C}_mask", lambda conn=conn: conn.mask)
    lo, hi = conn.wmin, conn.wmax
    clamp = clamp_code(lo, hi)
    if masked:
        clamp = clamp + f"w = w * {C}_mask[i, j]\n"
    nu_pre = f"{C}_nupre"
    nu_post = f"{C}_nupost"
    if isinstance(rule, TripletPostPre):
        src.arg(f"{C}_tp1", batch_axis=0, getter=lambda rule=rule: rule.post1.view(rule.batch, -1))
        src.arg(f"{C}_tp2", batch_axis=0, getter=lambda rule=rule: rule.post2.view(rule.batch, -1))
        if rule.arrival:
            emit_triplet_arrival(src, C, S, Tg, conn, clamp)
            return
        src.arg(f"{C}_tpre", batch_axis=0, getter=lambda rule=rule: rule.pre.view(rule.batch, -1))
        x_pre, x_dep, x_pot = f"{C}_tpre", f"{C}_tp1", f"{C}_tp2"
        pre_code = (f"for b in range(B):\n"
                    f"    for i in range({n_pre}):\n        {C}_tpre[b, i] = {C}_tpre[b, i] * {f32(rule.d_pre)}\n"
                    f"    for q in range({S}_cnt[b]):\n        {C}_tpre[b, {S}_idx[b, q]] = np.float32(1.0)\n"
                    f"    for j in range({n_post}):\n"
                    f"        {C}_tp1[b, j] = {C}_tp1[b, j] * {f32(rule.d_post1)}\n"
                    f"        {C}_tp2[b, j] = {C}_tp2[b, j] * {f32(rule.d_post2)}\n")
        post_code = (f"for b in range(B):\n    for q in range({Tg}_cnt[b]):\n"
                     f"        {C}_tp1[b, {Tg}_idx[b, q]] = np.float32(1.0)\n"
                     f"        {C}_tp2[b, {Tg}_idx[b, q]] = np.float32(1.0)\n")
    else:
        x_pre, x_dep, x_pot = f"{S}_x", f"{Tg}_x", None
        pre_code, post_code = "", ""
    dense = isinstance(conn, Dense)
    W = (lambda i, j: f"{C}_w[{i}, {j}]") if dense else (lambda i, j: f"{C}_w[{i}]")
    # term at presynaptic spikes (depression for post_pre, potentiation for hebbian)
    sign_pre = "+" if isinstance(rule, Hebbian) else "-"
    pre_factor = ""
    post_factor = ""
    if isinstance(rule, WeightDependentPostPre):
        pre_factor = f" * (w - {f32(lo)})"
        post_factor = f" * ({f32(hi)} - w)"
    pot_val = f"{x_pre}[b, i]" + (f" * {x_pot}[b, j]" if x_pot else "")
    # accumulate both terms over the batch into dw, then one clamped update per touched synapse
    src.setup.append(f"{C}_dw = np.zeros({'(%d, %d)' % (n_pre, n_post) if dense else n_pre}, np.float32)\n"
                     f"{C}_tr = np.zeros({n_pre}, np.bool_)\n{C}_tc = np.zeros({n_post}, np.bool_)")
    jrange = f"range({n_post})" if dense else "(i,)"
    code = pre_code
    # depression / pre-term: rows of presynaptic spikes
    code += (f"for b in range(B):\n"
             f"    for q in range({S}_cnt[b]):\n"
             f"        i = {S}_idx[b, q]\n"
             f"        {C}_tr[i] = True\n"
             f"        for j in {jrange}:\n"
             f"            {C}_dw[{'i, j' if dense else 'i'}] {sign_pre}= np.float32({x_dep}[b, j] * {nu_pre})\n")
    code += (f"for b in range(B):\n"
             f"    for q in range({Tg}_cnt[b]):\n"
             f"        j = {Tg}_idx[b, q]\n"
             f"        {C}_tc[j] = True\n"
             f"        for i in {'range(%d)' % n_pre if dense else '(j,)'}:\n"
             f"            {C}_dw[{'i, j' if dense else 'i'}] += np.float32({pot_val} * {nu_post})\n")
    # apply: rows touched (all columns) and columns touched (all rows)
    upd = (f"w = {W('i', 'j')}\n"
           f"d = {C}_dw[{'i, j' if dense else 'i'}]\n")
    if pre_factor or post_factor:
        # soft bounds: the pre and post parts scale differently -> kept separately
        upd = (f"w = {W('i', 'j')}\n"
               f"d = {C}_dwm[{'i, j' if dense else 'i'}]{pre_factor} + {C}_dw[{'i, j' if dense else 'i'}]{post_factor}\n")
        code = code.replace(f"{C}_dw[{'i, j' if dense else 'i'}] {sign_pre}=", f"{C}_dwm[{'i, j' if dense else 'i'}] {sign_pre}=", 1)
        src.setup.append(f"{C}_dwm = np.zeros({'(%d, %d)' % (n_pre, n_post) if dense else n_pre}, np.float32)")
    code += apply_updates(C, conn, upd, clamp, pre_factor)
    src.learn.append(code + post_code)


def apply_updates(C: str, conn: Any, upd: str, clamp: str, pre_factor: str = "") -> str:
    """Code adding the accumulated ``dw`` to the touched rows and columns (clamped),
    then the first-step clamp of all weights."""
    n_pre, n_post = conn.source.n, conn.target.n
    dense = isinstance(conn, Dense)
    W = (lambda i, j: f"{C}_w[{i}, {j}]") if dense else (lambda i, j: f"{C}_w[{i}]")
    code = ""
    apply_one = upd + "w = w + d\n" + clamp + f"{W('i', 'j')} = w\n{C}_dw[{'i, j' if dense else 'i'}] = 0.0\n"
    if pre_factor:
        apply_one += f"{C}_dwm[{'i, j' if dense else 'i'}] = 0.0\n"
    if dense:
        code += (f"for i in range({n_pre}):\n"
                 f"    if {C}_tr[i]:\n"
                 f"        for j in range({n_post}):\n" + indent(apply_one, 12) + "\n"
                 f"for j in range({n_post}):\n"
                 f"    if {C}_tc[j]:\n"
                 f"        for i in range({n_pre}):\n"
                 f"            if not {C}_tr[i]:\n" + indent(apply_one, 16) + "\n")
    else:
        code += (f"for i in range({n_pre}):\n"
                 f"    if {C}_tr[i] or {C}_tc[i]:\n"
                 "        j = i\n" + indent(apply_one, 8) + "\n")
    code += (f"{C}_tr[:] = False\n{C}_tc[:] = False\n")
    if clamp:
        # weights can leave [wmin, wmax] between runs (normalisation, set_weights): the
        # reference clamps every weight at every learning step, so clamp all once here
        full = f"w = {W('i', 'j')}\n" + clamp + f"{W('i', 'j')} = w\n"
        loops = (f"for i in range({n_pre}):\n    for j in range({n_post}):\n" + indent(full, 8) if dense
                 else f"for i in range({n_pre}):\n    j = i\n" + indent(full, 4))
        code += "if t == 0:\n" + indent(loops, 4) + "\n"
    return code


def emit_triplet_arrival(src: KernelSource, C: str, S: str, Tg: str, conn: Any, clamp: str) -> None:
    """Triplet STDP with the pre-synaptic part at spike arrival (per-synapse delays): each
    synapse's last arrival step is kept; the pre trace is looked up from the steps since."""
    rule = conn.rule
    n_pre, n_post = conn.source.n, conn.target.n
    L = conn.max_delay + 1
    K = rule.pre_table.numel() - 1
    src.arg(f"{C}_last", batch_axis=0, getter=lambda rule=rule: rule.last)
    src.arg(f"{C}_ptab", lambda rule=rule: rule.pre_table)
    src.arg(f"{C}_clock0", lambda rule=rule: rule.clock)
    src.setup.append(f"{C}_dw = np.zeros(({n_pre}, {n_post}), np.float32)\n"
                     f"{C}_tr = np.zeros({n_pre}, np.bool_)\n{C}_tc = np.zeros({n_post}, np.bool_)")
    code = (f"clock = {C}_clock0 + t + 1\n"
            f"for b in range(B):\n"
            f"    for j in range({n_post}):\n"
            f"        {C}_tp1[b, j] = {C}_tp1[b, j] * {f32(rule.d_post1)}\n"
            f"        {C}_tp2[b, j] = {C}_tp2[b, j] * {f32(rule.d_post2)}\n"
            # arrivals: spikes emitted d steps ago reach the synapses of delay d
            f"for b in range(B):\n"
            f"    for d in range({L}):\n"
            f"        slot = ({C}_pos - d) % {L}\n"
            f"        cnt = {S}_cnt[b] if d == 0 else {C}_rcnt[slot, b]\n"
            f"        for q in range(cnt):\n"
            f"            i = {S}_idx[b, q] if d == 0 else {C}_ridx[slot, b, q]\n"
            f"            {C}_tr[i] = True\n"
            f"            base = i * {L} + d\n"
            f"            for jj in range({C}_dptr[base], {C}_dptr[base + 1]):\n"
            f"                j = {C}_dcol[jj]\n"
            f"                {C}_last[b, i, j] = clock\n"
            f"                {C}_dw[i, j] -= np.float32({C}_tp1[b, j] * {C}_nupre)\n"
            # potentiation at post spikes with each synapse's own pre trace
            f"for b in range(B):\n"
            f"    for q in range({Tg}_cnt[b]):\n"
            f"        j = {Tg}_idx[b, q]\n"
            f"        {C}_tc[j] = True\n"
            f"        p2 = {C}_tp2[b, j]\n"
            f"        for i in range({n_pre}):\n"
            f"            k = clock - {C}_last[b, i, j]\n"
            f"            if k < {K}:\n"
            f"                {C}_dw[i, j] += np.float32({C}_ptab[k] * p2 * {C}_nupost)\n")
    code += apply_updates(C, conn, f"w = {C}_w[i, j]\nd = {C}_dw[i, j]\n", clamp)
    code += (f"for b in range({Tg}_cnt.shape[0]):\n    for q in range({Tg}_cnt[b]):\n"
             f"        {C}_tp1[b, {Tg}_idx[b, q]] = np.float32(1.0)\n"
             f"        {C}_tp2[b, {Tg}_idx[b, q]] = np.float32(1.0)\n")
    src.learn.append(code)


def emit_prepass(src: KernelSource, C: str, S: str, out: str, conn: Any) -> str:
    """Propagation of a large, static (not learning in this call) dense connection from an
    input population, done for the whole presentation before the time loop: the input's
    spikes are known in advance, so each weight row is read from memory once and added to
    every step its neuron fires in, tile by tile of post neurons (the tile's currents for
    all steps stay in cache).  Per step, rows are added in the same (ascending pre-neuron)
    order as the per-step path, and the connection is the first to add into its target
    buffer, so the currents are bit-identical.  Returns the per-step code; falls back to the
    per-step path (returned after ``else``) while learning or when the buffer would be large."""
    n_pre, n_post = conn.source.n, conn.target.n
    P = PREPASS_TILE
    NT = (n_post + P - 1) // P
    plastic = conn.rule is not None and conn.learning_enabled
    if not src.parallel:
        src.arg("nthreads", lambda: numba.get_num_threads())
    src.parallel = True
    spike = src.input_spike[S]
    src.setup.append(
        f"{C}_ahead = {'not learning and ' if plastic else ''}T * B * {NT * P} <= {PREPASS_MAX_FLOATS}\n"
        f"{C}_cur = np.zeros(({NT}, B, T if {C}_ahead else 0, {P}), np.float32)\n"
        f"if {C}_ahead:\n"
        f"    for b in range(B):\n"
        # the steps at which each pre neuron's spike arrives (emitted one step before)
        f"        ptr = np.zeros({n_pre + 1}, np.int64)\n"
        f"        for t in range(T - 1):\n"
        f"            for i in range({n_pre}):\n"
        f"                if {spike}:\n"
        f"                    ptr[i + 1] += 1\n"
        f"        for i in range({n_pre}):\n"
        f"            ptr[i + 1] += ptr[i]\n"
        f"        when = np.empty(ptr[{n_pre}], np.int32)\n"
        f"        fill = ptr[:{n_pre}].copy()\n"
        f"        for t in range(T - 1):\n"
        f"            for i in range({n_pre}):\n"
        f"                if {spike}:\n"
        f"                    when[fill[i]] = t + 1\n"
        f"                    fill[i] += 1\n"
        f"        for tile in prange({NT}):\n"
        f"            j0 = tile * {P}\n"
        f"            width = min({P}, {n_post} - j0)\n"
        f"            acc = {C}_cur[tile, b]\n"
        # step 0 receives the spikes carried over from the previous call
        f"            for q in range({S}_cnt[b]):\n"
        f"                row = {C}_w[{S}_idx[b, q], j0:j0 + width]\n"
        f"                for jj in range(width):\n"
        f"                    acc[0, jj] += row[jj]\n"
        f"            for i in range({n_pre}):\n"
        f"                if ptr[i + 1] > ptr[i]:\n"
        f"                    row = {C}_w[i, j0:j0 + width]\n"
        f"                    for e in range(ptr[i], ptr[i + 1]):\n"
        f"                        a = acc[when[e]]\n"
        f"                        for jj in range(width):\n"
        f"                            a[jj] += row[jj]"
    )
    return (f"if {C}_ahead:\n"
            f"    for b in range(B):\n"
            f"        for tile in range({NT}):\n"
            f"            j0 = tile * {P}\n"
            f"            for jj in range(min({P}, {n_post} - j0)):\n"
            f"                {out}[b, j0 + jj] += {C}_cur[tile, b, t, jj]\n"
            f"else:\n")


# ---------------------------------------------------------------------- conv2d / local
def patch_csr(conn: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The patch structure of a conv2d / local connection, for the kernel: ``pidx[p, l]``
    (source neuron of kernel entry ``p`` at position ``l``, -1 in the padding) and, grouped
    by source neuron ``i``, the pairs ``(ep[e], el[e])`` for ``e`` in ``ptr[i]:ptr[i + 1]``."""
    cache = getattr(conn, "_patch_csr", None)
    if cache is not None:
        return cache
    pidx = conn.geom.patch_index(torch.device("cpu"))             # [P, L]
    L = pidx.shape[1]
    flat = pidx.reshape(-1)
    keep = torch.nonzero(flat >= 0).squeeze(1)                     # entries p * L + l
    source = flat[keep]
    order = torch.argsort(source, stable=True)
    entries = keep[order]
    ptr = torch.zeros(conn.source.n + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(source, minlength=conn.source.n), 0)
    conn._patch_csr = (pidx.to(torch.int32).contiguous(), ptr, (entries // L).to(torch.int32),
                       (entries % L).to(torch.int32))
    return conn._patch_csr


def _patch_layout(conn: Any, C: str) -> tuple[int, int, int, Any]:
    """(C_out, P, L, flat index expression of weight (co, l, p)) for a patch connection:
    conv2d weights viewed ``[C_out, P]`` (shared over positions), local ``[L, P, C_out]``."""
    g = conn.geom
    c_out, P, L = g.c_out, g.patch_size, g.n_positions
    if isinstance(conn, Conv2d):
        return c_out, P, L, (lambda co, l, p: f"{co} * {P} + {p}")
    return c_out, P, L, (lambda co, l, p: f"({l} * {P} + {p}) * {c_out} + {co}")


def emit_patch_connection(src: KernelSource, k: int, conn: Any, pops: list) -> None:
    """Event-driven propagation of a conv2d / local connection: every presynaptic spike adds
    its kernel entries to the C_out neurons of each position whose patch holds it."""
    C = f"c{k}"
    S, Tg = f"p{pops.index(conn.source)}", f"p{pops.index(conn.target)}"
    out = f"{Tg}_ii" if (conn.receptor_inh and conn.target.conductance) else f"{Tg}_ie"
    src.written.add(out)
    c_out, P, L, flat = _patch_layout(conn, C)
    src.arg(f"{C}_w", lambda conn=conn: conn.w.view(-1))
    src.arg(f"{C}_pidx", lambda conn=conn: patch_csr(conn)[0])
    src.arg(f"{C}_ptr", lambda conn=conn: patch_csr(conn)[1])
    src.arg(f"{C}_ep", lambda conn=conn: patch_csr(conn)[2])
    src.arg(f"{C}_el", lambda conn=conn: patch_csr(conn)[3])
    src.propagate.append(_patch_scatter(S, C, c_out) + f"                {out}[b, co * {L} + l] += {C}_w[{flat('co', 'l', 'p')}]\n")


def _patch_scatter(S: str, C: str, c_out: int) -> str:
    """Loop header over this step's spikes of source ``S`` and, for each, the (entry p,
    position l) pairs whose patch holds it and the ``c_out`` channels (body at indent 16)."""
    return (f"for b in range(B):\n"
            f"    for q in range({S}_cnt[b]):\n"
            f"        i = {S}_idx[b, q]\n"
            f"        for e in range({C}_ptr[i], {C}_ptr[i + 1]):\n"
            f"            p = {C}_ep[e]\n"
            f"            l = {C}_el[e]\n"
            f"            for co in range({c_out}):\n")


def emit_patch_rule(src: KernelSource, k: int, conn: Any, pops: list) -> None:
    """Pair STDP on a conv2d / local connection, as the reference's ``outer`` (summed over
    batch, and over positions for shared kernels): the pre term at the (position, entry)
    pairs of presynaptic spikes, the post term over the patch of each postsynaptic spike;
    only the kernel entries touched this step are updated and clamped."""
    rule = conn.rule
    C = f"c{k}"
    S, Tg = f"p{pops.index(conn.source)}", f"p{pops.index(conn.target)}"
    c_out, P, L, flat = _patch_layout(conn, C)
    nw = conn.w.numel()
    src.arg(f"{C}_nupre", lambda rule=rule: np.float32(rule.nu_pre * rule.scale))
    src.arg(f"{C}_nupost", lambda rule=rule: np.float32(rule.nu_post * rule.scale))
    lo, hi = conn.wmin, conn.wmax
    clamp = clamp_code(lo, hi)
    if conn.mask is not None:
        src.arg(f"{C}_mask", lambda conn=conn: conn.mask.expand_as(conn.w).contiguous().view(-1))
        clamp += f"w = w * {C}_mask[f]\n"
    soft = isinstance(rule, WeightDependentPostPre)
    pre_acc = f"{C}_dwm" if soft else f"{C}_dw"
    sign_pre = "+" if isinstance(rule, Hebbian) else "-"
    src.setup.append(f"{C}_dw = np.zeros({nw}, np.float32)\n{C}_dwm = np.zeros({nw if soft else 0}, np.float32)\n"
                     f"{C}_tf = np.zeros({nw}, np.bool_)\n{C}_tl = np.empty({nw}, np.int64)")
    mark = f"if not {C}_tf[f]:\n    {C}_tf[f] = True\n    {C}_tl[tn] = f\n    tn += 1\n"
    code = (
        "tn = 0\n" + _patch_scatter(S, C, c_out) +
        f"                f = {flat('co', 'l', 'p')}\n" + indent(mark, 16) + "\n"
        f"                {pre_acc}[f] {sign_pre}= np.float32({Tg}_x[b, co * {L} + l] * {C}_nupre)\n"
        f"for b in range(B):\n"
        f"    for q in range({Tg}_cnt[b]):\n"
        f"        j = {Tg}_idx[b, q]\n"
        f"        co = j // {L}\n"
        f"        l = j % {L}\n"
        f"        for p in range({P}):\n"
        f"            i = {C}_pidx[p, l]\n"
        f"            if i < 0:\n                continue\n"
        f"            f = {flat('co', 'l', 'p')}\n" + indent(mark, 12) + "\n"
        f"            {C}_dw[f] += np.float32({S}_x[b, i] * {C}_nupost)\n"
    )
    d = (f"d = {C}_dwm[f] * (w - {f32(lo)}) + {C}_dw[f] * ({f32(hi)} - w)\n{C}_dwm[f] = 0.0\n" if soft
         else f"d = {C}_dw[f]\n")
    code += (f"for q in range(tn):\n"
             f"    f = {C}_tl[q]\n"
             f"    w = {C}_w[f]\n" + indent(d, 4) + "\n"
             f"    w = w + d\n" + indent(clamp, 4) + "\n"
             f"    {C}_w[f] = w\n    {C}_dw[f] = 0.0\n    {C}_tf[f] = False\n")
    if clamp:  # as for dense layers: weights may have left [wmin, wmax] between calls
        code += (f"if t == 0:\n    for f in range({nw}):\n        w = {C}_w[f]\n" + indent(clamp, 8) +
                 f"\n        {C}_w[f] = w\n")
    src.learn.append(code)
