"""Assemble a network's fused program: which compiled functions run, in which order, on
which arrays.

    setup (once per presentation): spike lists of the carried-over spikes, delay-line lists,
             Bernoulli input, the ahead-of-time pass of static input layers
    every step: every connection propagates its source's (delayed) spikes into its target's
             input; every population runs its model's step (neuron_piece)
    every step, while learning: every plastic connection's rule (rule_piece), then lib's
             apply of the accumulated weight increments

Nothing here knows a neuron model or a learning rule: populations and rules bring their
pieces, printed from their definitions; connections use ``lib.py``'s functions by kind.
Every function has the one signature of :mod:`.fnptr`; a :class:`Program` lists the calls
and the frame's slots (arrays: numpy views of the engine's torch tensors, zero copy, and
scratch; integers), and ``lib.run`` executes it.  Sizes come from the arrays, parameter
values from constant arrays: a program's pieces depend on the network's structure only.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..models.ir import unparse
from .loader import library, load_source
from .neuron_piece import population_piece
from .delays import delay_bytes, delay_csr
from .patch import is_patch, patch_csr
from .rule_piece import rule_piece

PARALLEL_SYNAPSES = 1 << 22  # dense layers at least this large propagate on all threads
PREPASS_SYNAPSES = 1 << 20   # static input layers at least this large are propagated ahead (lib.prepass)
ROW_DELAYS_MAX = 32          # delay lines of up to this many slots (delays <= 31 steps): masked weight rows (prop_delays_rows),
                             # 1.3-1.4x faster than the grouped gather of prop_delays on the paper's layer (L = 21)
PREPASS_TILE = 512           # post neurons per tile of the ahead-of-time pass (measured best of 16..2048)
PREPASS_MAX_FLOATS = 1 << 26  # ... when its current buffer (T x B x n_post) stays under 256 MB

NP_KINDS = {"f32": np.float32, "i32": np.int32, "i64": np.int64, "u8": np.uint8, "b": np.bool_}


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
    counts: dict     # population -> its spike counts [B, n] (int32 numpy view of the simulator's buffer)


@dataclasses.dataclass
class Slot:
    """An array (``kind`` like ``f32_2``) or integer (``int``) of the frame.  ``when`` says
    how long its value lasts: ``state`` (until the network re-allocates), ``scratch`` (for a
    batch size and number of steps), ``call`` (one presentation), ``fixed``."""

    name: str
    kind: str
    get: Callable[..., Any]
    when: str


@dataclasses.dataclass
class Call:
    dispatcher: Any
    args: list       # slot names
    phase: str       # setup | prop (connections, every step) | step (populations) | learn | after (once, learning)
    ahead: Optional[tuple] = None  # (connection index, needed value of its ahead flag)


class Program:
    """The calls and slots of one network structure (see the module docstring)."""

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}
        self.calls: list[Call] = []
        self.parallel = False
        self.ahead: list[int] = []        # connections propagated ahead when possible
        self.written: set[str] = set()    # input buffers some connection already adds into
        self.normalized: set[int] = set()  # connections whose weight normalisation the kernel does

    def slot(self, name: str, kind: str, get: Callable[..., Any], when: str = "state") -> str:
        if name not in self.slots:
            self.slots[name] = Slot(name, kind, get, when)
        return name

    def fixed(self, name: str, value: Any) -> str:
        """An integer (or constant array) fixed by the structure and parameters."""
        kind = "int" if isinstance(value, (int, np.integer, bool)) else f"{_kind_of(value)}"
        return self.slot(name, kind, lambda x, value=value: value, "fixed")

    def scratch(self, name: str, kind: str, shape: Callable[[Ctx], tuple]) -> str:
        """A work array of the kernel, allocated (zeros) when ``shape(ctx)`` changes, or reused from the previous
        shape (frame.py): not zeroed between calls, so pieces fill or clear what they read."""
        return self.slot(name, kind, shape, "scratch")

    def call(self, dispatcher: Any, args: list, phase: str, ahead: Optional[tuple] = None) -> None:
        self.calls.append(Call(dispatcher, args, phase, ahead))

    def lib(self, fn: str, args: list, phase: str, ahead: Optional[tuple] = None) -> None:
        self.call(getattr(library(), fn), args, phase, ahead)


def _kind_of(value: np.ndarray) -> str:
    name = {np.float32: "f32", np.int32: "i32", np.int64: "i64", np.uint8: "u8", np.bool_: "b"}[value.dtype.type]
    return f"{name}_{value.ndim}"


def _piece(source: str) -> Any:
    return load_source(source, "snnrun_piece").piece


def _bind(prog: Program, prefix: str, spec: list, given: dict[str, str]) -> list[str]:
    """The program slots of a piece's arguments ``spec``: ``given`` maps argument names to
    slot names; any other argument must be a slot ``<prefix>_<name>``."""
    out = []
    for name, kind in spec:
        slot = given.get(name, f"{prefix}_{name}")
        if slot not in prog.slots:
            raise KeyError(f"fused program: no slot {slot!r} for argument {name!r}")
        if prog.slots[slot].kind != kind:
            raise TypeError(f"fused program: slot {slot!r} is {prog.slots[slot].kind}, the piece wants {kind}")
        out.append(slot)
    return out


# ----------------------------------------------------------------------------- populations
def add_population(prog: Program, k: int, name: str, pop: Any, counted: bool, inputs: dict) -> None:
    """State views, scratch arrays and the model's step of population k (``inputs``: name ->
    ``prob`` for Bernoulli trains, ``u8_3`` for spikes, ``f32_3`` for values)."""
    from ..models.rng import input_stream, one_spike_stream

    P = f"p{k}"
    c = pop.compiled
    given = name in inputs
    prob = inputs.get(name) == "prob"
    n = pop.n
    prog.slot(f"{P}_s", "b_2", lambda pop=pop: as_array(pop.s.view(pop.batch, -1)))
    prog.scratch(f"{P}_idx", "i32_2", lambda x, n=n: (x.batch, n))
    prog.scratch(f"{P}_cnt", "i32_1", lambda x: (x.batch,))
    prog.lib("spike_list", [f"{P}_s", f"{P}_idx", f"{P}_cnt"], "setup")
    prog.fixed(f"{P}_stream", one_spike_stream(k))
    xin = "u8_3"
    if c.input and prob:  # Bernoulli input: drawn for the whole presentation (models.rng)
        cache = ThresholdCache()
        prog.slot(f"{P}_thr", "i64_2", lambda x, name=name, cache=cache: cache(x.probs[name].prob, x.batch), "call")
        prog.scratch(f"{P}_xin", "u8_3", lambda x, n=n: (x.T, x.batch, n))
        prog.fixed(f"{P}_instream", input_stream(k))
        prog.lib("bernoulli_fill", [f"{P}_thr", f"{P}_xin", f"{P}_instream"], "setup")
    elif c.input:
        xin = inputs[name]  # u8_3 (spikes) or f32_3 (values)
        prog.slot(f"{P}_xin", xin, lambda x, name=name: steps(x.inputs[name], x.T, x.batch, True), "call")
    else:
        prog.scratch(f"{P}_ie", "f32_2", lambda x, n=n: (x.batch, n))
        if c.uses_inh:
            prog.scratch(f"{P}_ii", "f32_2", lambda x, n=n: (x.batch, n))
        if given:
            prog.slot(f"{P}_ext", "f32_3", lambda x, name=name: steps(x.inputs[name], x.T, x.batch, False), "call")
    if c.refrac > 0:
        prog.slot(f"{P}_ref", "f32_2", lambda pop=pop: as_array(pop.refrac_count.view(pop.batch, -1)))
    if pop.traces:
        prog.slot(f"{P}_x", "f32_2", lambda pop=pop: as_array(pop.x.view(pop.batch, -1)))
    if counted:
        prog.slot(f"{P}_count", "i32_2", lambda x, name=name: x.counts[name], "call")
    for v, _ in c.fast:
        prog.slot(f"{P}_st_{v}", "f32_2", lambda pop=pop, v=v: as_array(getattr(pop, v).view(pop.batch, -1)))
    for v, _ in c.slow:
        prog.slot(f"{P}_sl_{v}", "f32_1", lambda pop=pop, v=v: as_array(getattr(pop, v).view(-1)))
    for v in c.slow_incremented:
        prog.scratch(f"{P}_d_{v}", "f32_1", lambda x, n=n: (n,))
    if xin == "u8_3" and c.input and unparse(c.threshold) == "(I != 0.0)" and not (
            c.update or c.reset or pop.traces or counted or pop.one_spike):
        prog.lib("input_step", [f"{P}_xin", f"{P}_s", f"{P}_idx", f"{P}_cnt"], "step")  # spikes only: copied
        return
    source, spec, consts = population_piece(pop, ext=given and not c.input, counted=counted, xin=xin)
    for arg, kind in spec:
        if arg.startswith("_l"):  # the lifted calls' work arrays (neuron_piece.vector_loop)
            prog.scratch(f"{P}_{arg}", kind, lambda x, n=n: (x.batch, n))
    prog.fixed(f"{P}_c", np.array(consts, np.float32))
    prog.call(_piece(source), _bind(prog, P, spec, {}), "step")


# ----------------------------------------------------------------------------- connections
def target_buffer(conn: Any, pops: list) -> str:
    T = f"p{pops.index(conn.target)}"
    return f"{T}_ii" if (conn.receptor_inh and conn.target.compiled.uses_inh) else f"{T}_ie"


def add_connection(prog: Program, k: int, conn: Any, pops: list) -> None:
    """Event-driven propagation of connection k (lib.py's functions by kind)."""
    C = f"c{k}"
    S = f"p{pops.index(conn.source)}"
    out = target_buffer(conn, pops)
    diag = conn.kind == "one_to_one"
    n_pre, n_post = conn.source.n, conn.target.n
    if is_patch(conn):
        patch_slots(prog, C, conn)
        prog.lib("prop_patch", [f"{S}_idx", f"{S}_cnt", f"{C}_ptr", f"{C}_ep", f"{C}_el", f"{C}_w", out,
                                f"{C}_cout", f"{C}_P", f"{C}_shared"], "prop")
        prog.written.add(out)
        return
    prog.slot(f"{C}_w", "f32_1" if diag else "f32_2", lambda conn=conn: as_array(conn.w))
    if conn.max_delay > 0:
        L = conn.max_delay + 1
        prog.slot(f"{C}_ring", "f32_3", lambda conn=conn: as_array(conn.ring.view(L, conn.ring.shape[1], -1)))
        prog.slot(f"{C}_pos0", "int", lambda x, conn=conn: int(conn.pos), "call")
        prog.scratch(f"{C}_ridx", "i32_3", lambda x, n=n_pre: (L, x.batch, n))
        prog.scratch(f"{C}_rcnt", "i32_2", lambda x: (L, x.batch))
        prog.lib("ring_lists", [f"{C}_ring", f"{C}_ridx", f"{C}_rcnt"], "setup")
        prog.lib("ring_push", [f"{C}_ring", f"{C}_ridx", f"{C}_rcnt", f"{S}_idx", f"{S}_cnt", f"{C}_pos0"], "prop")
        if conn.delays is None:
            prog.fixed(f"{C}_diag", int(diag))
            prog.lib("prop_ring", [f"{C}_ridx", f"{C}_rcnt", f"{C}_w", out, f"{C}_pos0", f"{C}_diag"], "prop")
        elif L > ROW_DELAYS_MAX or (conn.rule is not None and conn.rule.arrival):
            # the (pre, delay) groups: prop_delays reads them, and so does an arrival-timed rule
            prog.slot(f"{C}_dptr", "i64_1", lambda conn=conn: delay_csr(conn)[0].numpy())
            prog.slot(f"{C}_dcol", "i32_1", lambda conn=conn: delay_csr(conn)[1].numpy())
        if conn.delays is not None and L <= ROW_DELAYS_MAX:
            prog.slot(f"{C}_dl", "u8_2", lambda conn=conn: delay_bytes(conn))
            rows = ("prop_delays_rows", [f"{C}_ridx", f"{C}_rcnt", f"{C}_dl", f"{C}_w", out, f"{C}_pos0"], "prop")
            xin = prog.slots.get(f"{S}_xin")
            if xin is not None and xin.kind == "u8_3" and out not in prog.written and not diag:
                # a static input layer with delays: its currents for the whole presentation ahead of the loop
                prog.ahead.append(k)
                nt, tile = -(-n_post // PREPASS_TILE), min(PREPASS_TILE, n_post)
                prog.scratch(f"{C}_cur", "f32_4", lambda x, conn=conn, nt=nt, tile=tile: (
                    (nt, x.batch, x.T, tile) if ahead(conn, x) else (0, x.batch, 0, tile)))
                prog.lib("prepass_delays", [f"{S}_xin", f"{S}_idx", f"{S}_cnt", f"{C}_ridx", f"{C}_rcnt", f"{C}_dl",
                                            f"{C}_w", f"{C}_cur", f"{C}_pos0"], "setup", (k, True))
                prog.lib("prepass_add", [f"{C}_cur", out], "prop", (k, True))
                prog.lib(*rows, (k, False))
            else:
                prog.lib(*rows)
        elif conn.delays is not None:
            prog.lib("prop_delays", [f"{C}_ridx", f"{C}_rcnt", f"{C}_dptr", f"{C}_dcol", f"{C}_w", out, f"{C}_pos0"],
                     "prop")
    elif diag:
        prog.lib("prop_diag", [f"{S}_idx", f"{S}_cnt", f"{C}_w", out], "prop")
    else:
        fn, args = "prop_rows", [f"{S}_idx", f"{S}_cnt", f"{C}_w", out]
        if n_pre * n_post >= PARALLEL_SYNAPSES:
            prog.parallel = True
            fn = "prop_rows_par"
            args.append(prog.scratch(f"{C}_acc", "f32_2", lambda x, n=n_post: _chunks(n)))
        spikes_in = prog.slots.get(f"{S}_xin") is not None and prog.slots[f"{S}_xin"].kind == "u8_3"
        if spikes_in and out not in prog.written and n_pre * n_post >= PREPASS_SYNAPSES:
            # a static input layer: propagated for the whole presentation ahead of the loop
            prog.parallel = True
            prog.ahead.append(k)
            nt = -(-n_post // PREPASS_TILE)
            prog.scratch(f"{C}_cur", "f32_4", lambda x, conn=conn, nt=nt: (
                (nt, x.batch, x.T, PREPASS_TILE) if ahead(conn, x) else (0, x.batch, 0, PREPASS_TILE)))
            prog.lib("prepass", [f"{S}_xin", f"{S}_idx", f"{S}_cnt", f"{C}_w", f"{C}_cur"], "setup", (k, True))
            prog.lib("prepass_add", [f"{C}_cur", out], "prop", (k, True))
            prog.lib(fn, args, "prop", (k, False))
        else:
            prog.lib(fn, args, "prop")
    if conn.b is not None:
        prog.slot(f"{C}_bias", "f32_1", lambda conn=conn: as_array(conn.b.view(-1)))
        prog.lib("add_bias", [f"{C}_bias", out], "prop")
    if conn.norm is not None and not diag:  # normalised in the kernel, after a learning presentation
        prog.normalized.add(k)
        prog.scratch(f"{C}_nf", "f32_1", lambda x, n=n_post: (n,))
        prog.slot(f"{C}_norm", "f32_1", lambda x, conn=conn: _norm_args(conn.norm), "call")
        prog.lib("normalize_dense", [f"{C}_w", f"{C}_nf", f"{C}_norm"], "after")
    prog.written.add(out)


def patch_slots(prog: Program, C: str, conn: Any) -> None:
    prog.slot(f"{C}_w", "f32_1", lambda conn=conn: as_array(conn.w.view(-1)))
    for k, (part, kind) in enumerate((("pidx", "i32_2"), ("ptr", "i64_1"), ("ep", "i32_1"), ("el", "i32_1"))):
        prog.slot(f"{C}_{part}", kind, lambda conn=conn, k=k: patch_csr(conn)[k].numpy())
    g = conn.geom
    prog.fixed(f"{C}_cout", int(g.c_out))
    prog.fixed(f"{C}_P", int(g.patch_size))
    prog.fixed(f"{C}_shared", int(conn.kind == "conv2d"))


def steps(x: torch.Tensor, T: int, batch: int, spikes: bool) -> np.ndarray:
    """An input ``[T, B, *shape]`` as ``[T, B, n]``: spikes as uint8 (bool viewed, no copy),
    values (and currents) as float32."""
    x = x[:T].reshape(T, batch, -1)
    if spikes and x.dtype in (torch.bool, torch.uint8):
        return x.contiguous().numpy().view(np.uint8)
    return x.to(torch.float32).contiguous().numpy()


class ThresholdCache:
    """:func:`thresholds` of the last two probability tensors (a presentation and its rest
    alternate, the rest's zeros being the same tensor every time); a tensor changed in place
    (its version) is computed anew."""

    def __init__(self) -> None:
        self.last: list[tuple] = []

    def __call__(self, prob: torch.Tensor, batch: int) -> np.ndarray:
        key = (prob.data_ptr(), prob._version, tuple(prob.shape), batch)
        for n, (p, k, arr) in enumerate(self.last):
            if p is prob and k == key:
                if n:  # the most recent first: a presentation's new image evicts the older entry, not the rest's
                    self.last = [self.last[1], self.last[0]]
                return arr
        arr = thresholds(prob, batch)
        self.last = [(prob, key, arr)] + self.last[:1]
        return arr


def thresholds(prob: torch.Tensor, batch: int) -> np.ndarray:
    """Bernoulli probabilities as the integer thresholds of models.rng: ``floor(p 2^32)``."""
    p = prob.detach().reshape(batch, -1).cpu().numpy()
    if not np.isfinite(p).all():
        raise ValueError("spike probabilities contain NaN or inf")
    return np.floor(p.astype(np.float64) * 4294967296.0).astype(np.int64)


def ahead(conn: Any, x: Ctx) -> bool:
    """Propagate this static input layer ahead of the loop (not while it learns; if its
    buffer stays under PREPASS_MAX_FLOATS)?"""
    nt = -(-conn.target.n // PREPASS_TILE)
    plastic = conn.rule is not None and conn.learning_enabled
    return bool(not (x.learn and plastic) and x.T * x.batch * nt * PREPASS_TILE <= PREPASS_MAX_FLOATS)


def _chunks(n_post: int) -> tuple:
    import numba

    nthreads = numba.get_num_threads()
    return (nthreads, -(-n_post // nthreads))


# ----------------------------------------------------------------------------- rules
def rule_layout(conn: Any) -> str:
    if is_patch(conn):
        return "patch"
    if conn.rule.arrival:
        return "arrival"
    return "diag" if conn.kind == "one_to_one" else "dense"


def _pop_kinds(prog: Program, P: str, pop: Any) -> tuple[dict, dict]:
    """Kinds and slots of a population's variables, as rules read them (``x_pre`` ...)."""
    kinds, slots = {"s": "b_2", "x": "f32_2", "refrac_count": "f32_2"}, {"s": f"{P}_s", "x": f"{P}_x",
                                                                         "refrac_count": f"{P}_ref"}
    for v, _ in pop.compiled.fast:
        kinds[v], slots[v] = "f32_2", f"{P}_st_{v}"
    for v, _ in pop.compiled.slow:
        kinds[v], slots[v] = "f32_1", f"{P}_sl_{v}"
    return kinds, slots


def add_rule(prog: Program, k: int, conn: Any, pops: list) -> None:
    """The rule piece of plastic connection k, then lib's apply of its weight increments."""
    from ..models.rule import PRE

    rule = conn.rule
    c = rule.compiled
    R, C = f"r{k}", f"c{k}"
    S, Tg = f"p{pops.index(conn.source)}", f"p{pops.index(conn.target)}"
    layout = rule_layout(conn)
    pre_kinds, pre_slots = _pop_kinds(prog, S, conn.source)
    post_kinds, post_slots = _pop_kinds(prog, Tg, conn.target)
    source, spec, consts = rule_piece(c, layout, slow_pre=set(conn.source.slow_state),
                                      slow_post=set(conn.target.slow_state), scale=rule.scale,
                                      pre_kinds=pre_kinds, post_kinds=post_kinds)
    flat = layout in ("diag", "patch")
    wk = "f32_1" if flat else "f32_2"
    given = {"pidx": f"{S}_idx", "pcnt": f"{S}_cnt", "qidx": f"{Tg}_idx", "qcnt": f"{Tg}_cnt", "w": f"{C}_w"}
    given.update({f"pre_{v}": pre_slots[v] for v in c.pop_vars[PRE]})
    given.update({f"post_{v}": post_slots[v] for v in c.pop_vars["post"]})
    prog.fixed(f"{R}_c", np.array(consts, np.float32))
    prog.slot(f"{R}_clock0", "int", lambda x, rule=rule: int(rule.clock), "call")
    prog.slot(f"{R}_reward", "f32_1", lambda x, rule=rule: reward_array(rule, x), "call")
    for t in c.traces:
        if not (layout == "arrival" and t.side == PRE):
            prog.slot(f"{R}_tr_{t.name}", "f32_2", lambda rule=rule, t=t: as_array(getattr(rule, t.name).view(rule.batch, -1)))
    for name, _, _ in c.synapse:
        prog.slot(f"{R}_sv_{name}", wk, lambda rule=rule, name=name, flat=flat: as_array(
            getattr(rule, name).view(-1) if flat else getattr(rule, name)))
    nw = conn.w.numel()
    w_shape = (lambda x, nw=nw: (nw,)) if flat else (lambda x, s=tuple(conn.w.shape): s)
    for target in sorted({t.target for t in c.terms()} | {"w"}):
        prog.scratch(f"{R}_d_{target}", wk, w_shape)
    if layout == "patch":
        prog.scratch(f"{R}_tr_row", "b_1", lambda x, nw=nw: (nw,))
        prog.scratch(f"{R}_tr_col", "i64_1", lambda x, nw=nw: (nw + 1,))
        given.update(pidx_p=f"{C}_pidx", ptr=f"{C}_ptr", ep=f"{C}_ep", el=f"{C}_el", c_out=f"{C}_cout", P_=f"{C}_P",
                     shared=f"{C}_shared")
    else:
        n_rows, n_cols = (conn.source.n, conn.target.n) if layout != "diag" else (nw, nw)
        prog.scratch(f"{R}_tr_row", "b_1", lambda x, n=n_rows: (n,))
        prog.scratch(f"{R}_tr_col", "b_1", lambda x, n=n_cols: (n,))
        prog.scratch(f"{R}_rl", "i64_1", lambda x, n=n_rows: (n + 1,))
        prog.scratch(f"{R}_cl", "i64_1", lambda x, n=n_cols: (n + 1,))
    if layout == "arrival":
        prog.slot(f"{R}_last", "i64_3", lambda rule=rule: as_array(rule.last))
        prog.slot(f"{R}_tables", "f32_2", lambda rule=rule: as_array(rule.tables))
        given.update(dptr=f"{C}_dptr", dcol=f"{C}_dcol", ridx=f"{C}_ridx", rcnt=f"{C}_rcnt", pos0=f"{C}_pos0")
    # the increments: touched rows and columns (or listed entries), clamped, masked
    import math

    flags = (1 if math.isfinite(conn.wmin) else 0) | (2 if math.isfinite(conn.wmax) else 0)
    mask = None
    if conn.mask is not None:
        flags |= 4
        mask = (lambda conn=conn, flat=flat: as_array(conn.mask.expand_as(conn.w).contiguous().view(-1) if flat
                                                       else conn.mask))
    prog.slot(f"{R}_mask", wk, mask or (lambda: np.zeros((1,) * (1 if flat else 2), np.float32)))
    prog.slot(f"{R}_elig", wk, (lambda rule=rule, flat=flat: as_array(rule.elig.view(-1) if flat else rule.elig))
              if c.reward_linear else (lambda: np.zeros((1,) * (1 if flat else 2), np.float32)))
    prog.fixed(f"{R}_lohi", np.array([conn.wmin if math.isfinite(conn.wmin) else 0.0,
                                      conn.wmax if math.isfinite(conn.wmax) else 0.0], np.float32))
    prog.slot(f"{R}_flags", "int", lambda x, rule=rule, flags=flags: flags | (8 if rule.episode else 0), "call")
    prog.call(_piece(source), _bind(prog, R, spec, given), "learn")  # (the dense piece reads lohi, flags)
    apply = {"dense": "apply_dense", "arrival": "apply_dense", "diag": "apply_diag", "patch": "apply_list"}[layout]
    lists = [f"{R}_rl", f"{R}_cl"] if layout != "patch" else []
    prog.lib(apply, [f"{C}_w", f"{R}_d_w", f"{R}_tr_row", f"{R}_tr_col", *lists, f"{R}_mask", f"{R}_elig",
                     f"{R}_lohi", f"{R}_flags"], "learn")


@functools.lru_cache(maxsize=64)
def _norm_args(norm: Optional[float]) -> np.ndarray:
    """``[norm, 1]`` as float32 (``[0, 0]``: the norm was removed since the program was built,
    nothing to do), one array per value (the frame skips an array it already holds)."""
    return np.array([0.0, 0.0] if norm is None else [float(norm), 1.0], np.float32)


@functools.lru_cache(maxsize=8)
def _zeros(batch: int) -> np.ndarray:
    return np.zeros(batch, np.float32)


def reward_array(rule: Any, x: Ctx) -> np.ndarray:
    """The network's reward as ``[B]`` float32 (1 in episode mode: the eligibility)."""
    if not (rule.episode or rule.compiled.uses_reward):  # the piece does not read it
        return _zeros(x.batch)
    r = x.net.reward
    if rule.episode:
        r = torch.ones(())
    elif rule.compiled.reward_in_step and r.dim() != 0:
        raise ValueError(f"{rule.kind} takes one scalar reward per step (got one per sample)")
    return np.ascontiguousarray(r.to(torch.float32).expand(x.batch).numpy())
