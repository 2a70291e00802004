"""Assemble a network's fused kernel: a small generated loop over the presentation that
calls compiled pieces.

    setup:   spike lists of the carried-over spikes, delay-line lists, Bernoulli input,
             the ahead-of-time pass of static input layers
    for t in range(T):
        every connection: propagate the source's (delayed) spikes into its target's input
        every population: its model's step (neuron_piece)
        if learning: every plastic connection's rule (rule_piece)

Nothing here knows a neuron model or a learning rule: populations and rules bring their
own pieces, printed from their definitions; connections are the generic propagation
functions of ``lib.py`` chosen by connection kind.  Arguments are numpy views of the
engine's torch tensors (zero copy); scratch arrays (spike lists, input buffers, weight
increments) are allocated by the kernel.  Sizes are read from the arrays, so the kernel's
text depends on the network's structure only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import numpy as np
import torch
from numba import types

from .fnptr import addresses, type_source
from .loader import library, load_source, typeof
from .neuron_piece import indent, population_piece
from .rule_piece import rule_piece

PARALLEL_SYNAPSES = 1 << 22  # dense layers at least this large propagate on all threads
PREPASS_SYNAPSES = 1 << 20   # static input layers at least this large are propagated ahead (lib.prepass)
PREPASS_TILE = 512           # post neurons per tile of the ahead-of-time pass (measured best of 16..2048)
PREPASS_MAX_FLOATS = 1 << 26  # ... when its current buffer (T x B x n_post) stays under 256 MB

I32_2 = types.Array(types.int32, 2, "C")
I32_1 = types.Array(types.int32, 1, "C")
I32_3 = types.Array(types.int32, 3, "C")
F32_2 = types.Array(types.float32, 2, "C")
F32_1 = types.Array(types.float32, 1, "C")
B_1 = types.Array(types.boolean, 1, "C")
B_3 = types.Array(types.boolean, 3, "C")
I64_1 = types.Array(types.int64, 1, "C")
SCALARS = {"t": types.int64, "T": types.int64, "learning": types.boolean, "seed": types.int64, "b0": types.int64,
           "defer": types.boolean, "clock": types.int64}


def as_array(t: torch.Tensor) -> np.ndarray:
    if not t.is_contiguous():
        raise RuntimeError("fused backend: state tensor is not contiguous")
    return t.numpy()


@dataclasses.dataclass
class Ctx:
    """What a call's arguments are made from."""

    net: Any
    inputs: Any
    probs: dict
    T: int
    batch: int
    learn: bool
    counts: dict


@dataclasses.dataclass
class Ext:
    """A kernel argument from Python: ``get()`` returns it (a numpy array or scalar);
    ``static`` arguments are views valid until the network re-allocates, others are made
    per call by ``get(ctx)`` (:class:`Ctx`); ``axis`` is the batch axis (to split inference
    across threads)."""

    name: str
    get: Callable[[], Any]
    static: bool = True
    axis: Optional[int] = None
    written: bool = False  # state the kernel writes (copied back when a batch slice was copied)


@dataclasses.dataclass
class Call:
    """A compiled function the kernel calls through a pointer: parameter ``name`` of the
    kernel, the numba ``dispatcher``, and its arguments (kernel names, or ``(code, type)``)."""

    name: str
    dispatcher: Any
    args: list


class Kernel:
    """The kernel of one network structure (see the module docstring)."""

    def __init__(self) -> None:
        self.ext: list[Ext] = []
        self.local_types: dict[str, Any] = {"B": types.int64}
        self.setup: list[str] = []
        self.prop: list[str] = []  # per step: connections (first)
        self.step: list[str] = []  # per step: populations
        self.learn: list[str] = []
        self.calls: list[Call] = []
        self.parallel = False
        self.written: set[str] = set()  # input buffers some connection already adds into

    def arg(self, name: str, get: Callable[[], Any], static: bool = True, axis: Optional[int] = None,
            written: bool = False) -> str:
        self.ext.append(Ext(name, get, static, axis, written))
        return name

    def local(self, name: str, nbtype: Any, alloc: str) -> str:
        self.local_types[name] = nbtype
        self.setup.append(f"{name} = {alloc}")
        return name

    def call(self, dispatcher: Any, args: list, where: list, pad: int = 0) -> None:
        """Call ``dispatcher(*args)`` at the end of ``where`` (indented by ``pad``)."""
        name = f"f{len(self.calls)}"
        self.calls.append(Call(name, dispatcher, args))
        code = ", ".join(a if isinstance(a, str) else a[0] for a in args)
        where.append(" " * pad + f"{name}({code})")

    def lib(self, fn: str, args: list, where: list, pad: int = 0) -> None:
        self.call(getattr(library(), fn), args, where, pad)

    def types_of(self, values: dict) -> dict:
        env = dict(SCALARS)
        env.update(self.local_types)
        env.update({name: typeof(v) for name, v in values.items()})
        return env

    def link(self, values: dict) -> tuple[Any, np.ndarray]:
        """For the argument types of ``values`` (ext name -> value): compile (or load) every
        called function, print the kernel calling them through pointers; returns (the
        kernel, the functions' address array)."""
        env = self.types_of(values)
        sigs = [types.none(*(env[a] if isinstance(a, str) else a[1] for a in c.args)) for c in self.calls]
        fns = addresses([(c.dispatcher, sig) for c, sig in zip(self.calls, sigs)])
        return load_source(self.source(sigs), "snnrun_kernel").kernel, fns

    def source(self, sigs: Optional[list] = None) -> str:
        """The kernel's text (``sigs``: the called functions' signatures; without them, a
        readable version for inspection)."""
        params = ["T", "learning", "seed", "b0", "fns"] + [e.name for e in self.ext]
        head = []
        consts = []
        for k, c in enumerate(self.calls):
            ft = type_source(types.FunctionType(sigs[k])) if sigs else "..."
            consts.append(f"FT{k} = {ft}")
            head.append(f"{c.name} = fn_at(fns, {k}, FT{k})")
        body = head + self.setup + ["for t in range(T):"] + indent(self.prop + self.step or ["pass"], 4)
        body += indent(["if learning:"] + indent(self.learn or ["pass"], 4), 4)
        return ("import numpy as np\nfrom numba import njit, types\nfrom snnrun.core.fused.fnptr import fn_at\n\n"
                + "\n".join(consts) + "\n\n\n"
                f"@njit(cache=True, nogil=True)\ndef kernel({', '.join(params)}):\n" + "\n".join(indent(body, 4)) + "\n")


def _piece_dispatcher(source: str) -> Any:
    return load_source(source, "snnrun_piece").piece


def lit(value: Any) -> tuple:
    """A literal kernel argument (int64 or bool)."""
    if isinstance(value, bool):
        return (repr(value), types.boolean)
    return (f"np.int64({int(value)})", types.int64)


# ----------------------------------------------------------------------------- populations
def add_population(K: Kernel, k: int, name: str, pop: Any, counted: bool, inputs: dict) -> None:
    """State views, scratch arrays and the model's step piece of population k."""
    from ..models.rng import input_stream

    P = f"p{k}"
    c = pop.compiled
    given = name in inputs
    prob = inputs.get(name, False)
    K.arg(f"{P}_s", lambda pop=pop: as_array(pop.s.view(pop.batch, -1)), axis=0)
    K.setup.append(f"B = {P}_s.shape[0]")
    n = f"{P}_s.shape[1]"
    K.local(f"{P}_idx", I32_2, f"np.empty((B, {n}), np.int32)")
    K.local(f"{P}_cnt", I32_1, "np.zeros(B, np.int32)")
    K.lib("spike_list", [f"{P}_s", f"{P}_idx", f"{P}_cnt"], K.setup)
    args: list = ["t", "learning", "seed", lit(pop.stream), "b0"]
    if c.input:
        if prob:  # Bernoulli input: drawn for the whole presentation (models.rng)
            K.arg(f"{P}_thr", lambda x, name=name: thresholds(x.probs[name].prob, x.batch), static=False, axis=0)
            K.local(f"{P}_xin", B_3, f"np.empty((T, B, {n}), np.bool_)")
            K.lib("bernoulli_fill", [f"{P}_thr", f"{P}_xin", "seed", lit(input_stream(k)), "b0"], K.setup)
        else:
            K.arg(f"{P}_xin", lambda x, name=name: steps(x.inputs[name], x.T, x.batch, True), static=False, axis=1)
        args.append(f"{P}_xin")
    else:
        args.append(K.local(f"{P}_ie", F32_2, f"np.zeros((B, {n}), np.float32)"))
        if c.uses_inh:
            args.append(K.local(f"{P}_ii", F32_2, f"np.zeros((B, {n}), np.float32)"))
        if given:
            args.append(K.arg(f"{P}_ext", lambda x, name=name: steps(x.inputs[name], x.T, x.batch, False),
                              static=False, axis=1))
    args += [f"{P}_s", f"{P}_idx", f"{P}_cnt"]
    if c.refrac > 0:
        args.append(K.arg(f"{P}_ref", lambda pop=pop: as_array(pop.refrac_count.view(pop.batch, -1)), axis=0))
    if pop.traces:
        args.append(K.arg(f"{P}_x", lambda pop=pop: as_array(pop.x.view(pop.batch, -1)), axis=0))
    if counted:
        args.append(K.arg(f"{P}_count", lambda x, name=name: x.counts[name].numpy(), static=False, axis=0))
    for v, _ in c.fast:
        args.append(K.arg(f"{P}_{v}", lambda pop=pop, v=v: as_array(getattr(pop, v).view(pop.batch, -1)), axis=0))
    for v, _ in c.slow:
        args.append(K.arg(f"{P}_{v}", lambda pop=pop, v=v: as_array(getattr(pop, v).view(-1))))
    for v in c.slow_incremented:
        args.append(K.local(f"{P}_d_{v}", F32_1, f"np.zeros({n}, np.float32)"))
    source, _, consts = population_piece(pop, ext=given and not c.input, counted=counted)
    values = np.array(consts, np.float32)
    args.append(K.arg(f"{P}_c", lambda values=values: values))
    K.call(_piece_dispatcher(source), args, K.step)


# ----------------------------------------------------------------------------- connections
def target_buffer(conn: Any, pops: list) -> str:
    T = f"p{pops.index(conn.target)}"
    return f"{T}_ii" if (conn.receptor_inh and conn.target.compiled.uses_inh) else f"{T}_ie"


def add_connection(K: Kernel, k: int, conn: Any, pops: list) -> None:
    """Event-driven propagation of connection k (lib.py's functions by kind)."""
    from .patch import add_patch_connection, is_patch

    C = f"c{k}"
    S = f"p{pops.index(conn.source)}"
    out = target_buffer(conn, pops)
    if is_patch(conn):
        add_patch_connection(K, C, S, out, conn)
        K.written.add(out)
        return
    diag = conn.kind == "one_to_one"
    K.arg(f"{C}_w", lambda conn=conn: as_array(conn.w))
    n_pre, n_post = conn.source.n, conn.target.n
    if conn.max_delay > 0:
        K.arg(f"{C}_ring", lambda conn=conn: as_array(conn.ring.view(conn.max_delay + 1, conn.ring.shape[1], -1)), axis=1,
              written=True)
        K.arg(f"{C}_pos", lambda x, conn=conn: np.array([conn.pos], np.int64), static=False)
        K.local(f"{C}_ridx", I32_3, f"np.empty(({C}_ring.shape[0], B, {S}_s.shape[1]), np.int32)")
        K.local(f"{C}_rcnt", I32_2, f"np.zeros(({C}_ring.shape[0], B), np.int32)")
        K.lib("ring_lists", [f"{C}_ring", f"{C}_ridx", f"{C}_rcnt"], K.setup)
        K.lib("ring_push", [f"{C}_ring", f"{C}_ridx", f"{C}_rcnt", f"{C}_pos", f"{S}_idx", f"{S}_cnt"], K.prop)
        if conn.delays is None:
            K.lib("prop_ring_diag" if diag else "prop_ring_rows", [f"{C}_ridx", f"{C}_rcnt", f"{C}_pos", f"{C}_w", out], K.prop)
        else:
            K.arg(f"{C}_dptr", lambda conn=conn: delay_csr(conn)[0].numpy())
            K.arg(f"{C}_dcol", lambda conn=conn: delay_csr(conn)[1].numpy())
            K.lib("prop_delays", [f"{C}_ridx", f"{C}_rcnt", f"{C}_pos", f"{C}_dptr", f"{C}_dcol", f"{C}_w", out], K.prop)
    elif diag:
        K.lib("prop_diag", [f"{S}_idx", f"{S}_cnt", f"{C}_w", out], K.prop)
    else:
        fn, args = "prop_rows", [f"{S}_idx", f"{S}_cnt", f"{C}_w", out]
        if n_pre * n_post >= PARALLEL_SYNAPSES:
            K.parallel = True
            fn = "prop_rows_par"
            args.append(K.arg(f"{C}_acc", lambda n_post=n_post: _chunks(n_post)))
        if conn.source.compiled.input and out not in K.written and n_pre * n_post >= PREPASS_SYNAPSES:
            # a static input layer: propagated for the whole presentation ahead of the loop
            K.parallel = True
            K.arg(f"{C}_ahead", lambda x, conn=conn: ahead(conn, x), static=False)
            K.arg(f"{C}_cur", lambda x, conn=conn: ahead_buffer(conn, x), static=False, axis=1)
            K.setup.append(f"if {C}_ahead:")
            K.lib("prepass", [f"{S}_xin", f"{S}_idx", f"{S}_cnt", f"{C}_w", f"{C}_cur", lit(PREPASS_TILE)], K.setup, 4)
            K.prop.append(f"if {C}_ahead:")
            K.lib("prepass_add", [f"{C}_cur", "t", out], K.prop, 4)
            K.prop.append("else:")
            K.lib(fn, args, K.prop, 4)
        else:
            K.lib(fn, args, K.prop)
    if conn.b is not None:
        K.arg(f"{C}_bias", lambda conn=conn: as_array(conn.b.view(-1)))
        K.lib("add_bias", [f"{C}_bias", out], K.prop)
    K.written.add(out)


def steps(x: torch.Tensor, T: int, batch: int, spikes: bool) -> np.ndarray:
    """An input ``[T, B, *shape]`` as ``[T, B, n]``: spikes keep bool/uint8, others float32."""
    x = x[:T].reshape(T, batch, -1)
    if not spikes or x.dtype not in (torch.bool, torch.uint8):
        x = x.to(torch.float32)
    return x.contiguous().numpy()


def thresholds(prob: torch.Tensor, batch: int) -> np.ndarray:
    """Bernoulli probabilities as the integer thresholds of models.rng: ``floor(p 2^32)``."""
    if not bool(torch.isfinite(prob).all()):
        raise ValueError("spike probabilities contain NaN or inf")
    return np.floor(prob.reshape(batch, -1).to(torch.float64).numpy() * 4294967296.0).astype(np.int64)


def ahead(conn: Any, x: Ctx) -> bool:
    """Propagate this static input layer ahead of the loop (not while it learns; if its
    buffer stays under PREPASS_MAX_FLOATS)?"""
    nt = -(-conn.target.n // PREPASS_TILE)
    plastic = conn.rule is not None and conn.learning_enabled
    return bool(not (x.learn and plastic) and x.T * x.batch * nt * PREPASS_TILE <= PREPASS_MAX_FLOATS)


def ahead_buffer(conn: Any, x: Ctx) -> np.ndarray:
    nt = -(-conn.target.n // PREPASS_TILE)
    shape = (nt, x.batch, x.T, PREPASS_TILE) if ahead(conn, x) else (0, x.batch, 0, PREPASS_TILE)
    return np.zeros(shape, np.float32)


def reward_array(rule: Any, x: Ctx) -> np.ndarray:
    """The network's reward as ``[B]`` float32 (1 in episode mode: the eligibility)."""
    r = x.net.reward
    if rule.episode:
        r = torch.ones(())
    elif rule.compiled.reward_in_step and r.dim() != 0:
        raise ValueError(f"{rule.kind} takes one scalar reward per step (got one per sample)")
    return np.ascontiguousarray(r.to(torch.float32).expand(x.batch).numpy())


def _chunks(n_post: int) -> np.ndarray:
    import numba

    nthreads = numba.get_num_threads()
    return np.zeros((nthreads, -(-n_post // nthreads)), np.float32)


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


# ----------------------------------------------------------------------------- rules
def rule_layout(conn: Any) -> str:
    from .patch import is_patch

    if is_patch(conn):
        return "patch"
    if conn.rule.arrival:
        return "arrival"
    return "diag" if conn.kind == "one_to_one" else "dense"


def add_rule(K: Kernel, k: int, conn: Any, pops: list) -> None:
    """The rule piece of plastic connection k, with its traces, accumulators and flags."""
    from ..models.rule import PRE

    rule = conn.rule
    c = rule.compiled
    R, C = f"r{k}", f"c{k}"
    S, Tg = f"p{pops.index(conn.source)}", f"p{pops.index(conn.target)}"
    layout = rule_layout(conn)
    masked = conn.mask is not None
    source, params, consts = rule_piece(c, layout, lo=conn.wmin, hi=conn.wmax, masked=masked,
                                        slow_pre=set(conn.source.slow_state), slow_post=set(conn.target.slow_state),
                                        scale=rule.scale)
    values = np.array(consts, np.float32)
    names: dict[str, Any] = {"t": "t", "pidx": f"{S}_idx", "pcnt": f"{S}_cnt", "qidx": f"{Tg}_idx", "qcnt": f"{Tg}_cnt"}
    K.arg(f"{R}_clock", lambda x, rule=rule: int(rule.clock), static=False)
    names["clock"] = (f"{R}_clock + t", types.int64)
    names["w"] = f"{C}_w" if layout != "patch" else f"{C}_wf"
    names["reward"] = K.arg(f"{R}_reward", lambda x, rule=rule: reward_array(rule, x), static=False)
    if c.reward_linear:
        names["defer"] = K.arg(f"{R}_defer", lambda x, rule=rule: bool(rule.episode), static=False)
        names["elig"] = K.arg(f"{R}_elig", lambda rule=rule: as_array(rule.elig))
    names["c"] = K.arg(f"{R}_c", lambda values=values: values)
    for end, P in (("pre", S), ("post", Tg)):
        for v in c.pop_vars[end]:
            names[f"{end}_{v}"] = f"{P}_ref" if v == "refrac_count" else f"{P}_{v}"
    for t in c.traces:
        if not (layout == "arrival" and t.side == PRE):
            names[f"tr_{t.name}"] = K.arg(f"{R}_tr_{t.name}", lambda rule=rule, t=t: as_array(
                getattr(rule, t.name).view(rule.batch, -1)), axis=0)
    for name, _, _ in c.synapse:
        names[f"sv_{name}"] = K.arg(f"{R}_sv_{name}", lambda rule=rule, name=name: as_array(getattr(rule, name)))
    if masked:
        names["mask"] = K.arg(f"{R}_mask", lambda conn=conn, layout=layout: as_array(
            conn.mask.expand_as(conn.w).contiguous().view(-1) if layout == "patch" else conn.mask))
    flat = layout in ("diag", "patch")
    shape = f"{names['w']}.shape"
    for target in sorted({t.target for t in c.terms()}):
        names[f"d_{target}"] = K.local(f"{R}_d_{target}", types.Array(types.float32, 1 if flat else 2, "C"),
                                       f"np.zeros({shape}, np.float32)")
    if layout == "patch":
        from .patch import rule_args

        names["tr_row"] = K.local(f"{R}_tf", B_1, f"np.zeros({names['w']}.size, np.bool_)")
        names["tr_col"] = K.local(f"{R}_tl", I64_1, f"np.zeros({names['w']}.size, np.int64)")
        names["tn"] = K.local(f"{R}_tn", I64_1, "np.zeros(1, np.int64)")
        names.update(rule_args(K, C, conn))
    else:
        names["tr_row"] = K.local(f"{R}_tr", B_1, f"np.zeros({S}_s.shape[1], np.bool_)")
        names["tr_col"] = K.local(f"{R}_tc", B_1, f"np.zeros({Tg}_s.shape[1], np.bool_)")
    if layout == "arrival":
        names["last"] = K.arg(f"{R}_last", lambda rule=rule: as_array(rule.last), axis=0)
        names["tables"] = K.arg(f"{R}_tables", lambda rule=rule: as_array(rule.tables))
        names.update(dptr=f"{C}_dptr", dcol=f"{C}_dcol", ridx=f"{C}_ridx", rcnt=f"{C}_rcnt", pos=f"{C}_pos")
    K.call(_piece_dispatcher(source), [names[p] for p in params], K.learn)
