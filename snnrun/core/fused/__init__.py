"""The fused CPU backend: one numba kernel per network structure runs a whole presentation,
calling compiled pieces printed from the models' definitions (see :mod:`.codegen`).
``FusedSimulator`` has the interface of :class:`~snnrun.core.simulate.TorchSimulator` and
makes the same random choices (:mod:`snnrun.core.models.rng`)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

import numba  # noqa: F401  (ImportError here makes the backend unavailable)

from ..encoders import BernoulliTrain
from ..kernel_support import common_reason
from ..models.rng import presentation_seed
from ..network import Network
from .codegen import Ctx, Program, add_connection, add_population, add_rule, ahead, rule_layout
from .frame import Frame
from .loader import library
from .patch import is_patch
from .rule_piece import supported

CONNECTION_KINDS = ("dense", "one_to_one", "conv2d", "local")
FRAMES_KEPT = 4  # frames (tables and work arrays) of the most recently used input kinds and numbers of steps


def unsupported_reason(net: Network) -> Optional[str]:
    """Why the fused backend cannot run ``net`` (``None`` when it can)."""
    if net.device.type != "cpu":
        return f"it runs on the CPU only (network is on {net.device})"
    why = common_reason(net, CONNECTION_KINDS, "fused")
    if why:
        return why
    for name, conn in net.connections.items():
        if is_patch(conn) and (conn.max_delay > 0 or conn.b is not None):
            return f"{conn.kind} connection {name!r} with delays or a bias is not supported"
        rule = conn.rule
        if rule is not None and conn.learning_enabled:
            why = supported(rule.compiled, rule_layout(conn))
            if why:
                return f"learning rule {rule.kind} on connection {name!r}: {why}"
    return None


class FusedSimulator:
    """Runs presentations with the network's fused program; state shared with the network."""

    backend = "numba"

    def __init__(self, net: Network, counted: Sequence[str]):
        reason = unsupported_reason(net)
        if reason is not None:
            raise ValueError(f"fused backend: {reason}")
        self.net = net
        self.counted = net.check_populations(counted)
        self._programs: dict[tuple, Program] = {}  # inputs' kinds -> program
        self._frames: dict[tuple, Frame] = {}      # (inputs' kinds, steps) -> frame, least recently used first
        self.threads = int(os.environ.get("SNNRUN_THREADS") or os.cpu_count() or 1)
        self.counts: dict[str, torch.Tensor] = {}
        self._counts_np: dict[str, np.ndarray] = {}  # numpy views of the counts (the kernel's slots)
        self.seeds: Optional[torch.Generator] = None  # presentation seeds from here (None: torch's global RNG)

    def program(self, inputs: tuple) -> Program:
        """The program for inputs ``((population, prob | u8_3 | f32_3), ...)``."""
        net = self.net
        prog = Program()
        given = dict(inputs)
        pops = list(net.populations.values())
        for k, (name, pop) in enumerate(net.populations.items()):
            add_population(prog, k, name, pop, name in self.counted, given)
        conns = list(net.connections.values())
        for k, conn in enumerate(conns):
            add_connection(prog, k, conn, pops)
        for k, conn in enumerate(conns):
            if conn.rule is not None and conn.learning_enabled:
                add_rule(prog, k, conn, pops)
        return prog

    def source(self, input_names: Sequence[str], probabilities: bool = False) -> str:
        """The program's calls and slots, readable (the pieces' code is in the kernel cache)."""
        prog = self.program(tuple((n, "prob" if probabilities else "u8_3") for n in input_names))
        lines = [f"{c.phase:5s} {getattr(c.dispatcher, '__name__', '?')}({', '.join(c.args)})"
                 + (f"  [if connection {c.ahead[0]} {'is' if c.ahead[1] else 'is not'} propagated ahead]" if c.ahead else "")
                 for c in prog.calls]
        return "\n".join(lines) + "\n"

    def _chunks(self, batch: int, learning: bool, prog: Program) -> list[tuple[int, int]]:
        """Split the batch over threads for inference (learning writes shared weights)."""
        n = min(self.threads, batch)
        if learning or n <= 1 or prog.parallel:
            return [(0, batch)]
        size = -(-batch // n)
        return [(b, min(b + size, batch)) for b in range(0, batch, size)]

    def run(self, inputs: Mapping[str, torch.Tensor], learning: bool, n_steps: Optional[int] = None,
            recorders: Sequence = ()) -> dict[str, torch.Tensor]:
        net = self.net
        if recorders:
            raise ValueError("the fused kernel does not record per step; record with the torch backend "
                             "(Network.run(..., recorders=[...]) or backend=torch)")
        probs = {k: v for k, v in inputs.items() if isinstance(v, BernoulliTrain)}
        shaped = {k: (v if k not in probs else v.prob.expand(v.n_steps, *v.prob.shape)) for k, v in inputs.items()}
        T, batch = net._check_inputs(shaped, n_steps)
        if batch != net.batch or net._plan is None:
            net.allocate(batch)
        key = tuple(sorted((k, "prob" if k in probs else ("u8_3" if v.dtype in (torch.bool, torch.uint8) else "f32_3"))
                           for k, v in inputs.items()))
        frame = self._frames.pop((key, T), None)  # (re-inserted below: the least recently used goes first)
        if frame is None:  # one frame per number of steps: a presentation and its rest keep their own tables
            prog = self._programs.get(key) or self._programs.setdefault(key, self.program(key))
            while len(self._frames) >= FRAMES_KEPT:
                self._frames.pop(next(iter(self._frames)))
            frame = Frame(prog)
        self._frames[(key, T)] = frame
        for name in self.counted:
            pop = net.populations[name]
            buf = self.counts.get(name)
            if buf is None or buf.shape != (batch, pop.n):
                buf = self.counts[name] = torch.zeros((batch, pop.n), dtype=torch.int32)
                self._counts_np[name] = buf.numpy()
            self._counts_np[name].fill(0)
        learn = bool(learning)
        ctx = Ctx(net, inputs, probs, T, batch, learn, self._counts_np)
        frame.fill(ctx, net.generation)
        conns = list(net.connections.values())
        prog = frame.prog
        F, A, n_setup, n_step, n_learn = frame.table(
            tuple(k for k in prog.ahead if ahead(conns[k], ctx)) if prog.ahead else ())
        for pop in net.populations.values():
            pop.learning = learn
        seed = presentation_seed(self.seeds)
        run = library().run
        args = (F, frame.P, frame.S, frame.I, A, n_setup, n_step, n_learn)
        chunks = self._chunks(batch, learn, prog) if batch > 1 else ()
        if len(chunks) <= 1:
            run(T, learn, seed, 0, batch, *args)
        else:  # inference: sample ranges in parallel threads (the kernel releases the GIL)
            with ThreadPoolExecutor(len(chunks)) as pool:
                list(pool.map(lambda c: run(T, learn, seed, c[0], c[1], *args), chunks))
        for conn in conns:
            if conn.max_delay > 0:
                conn.pos = (conn.pos + T) % (conn.max_delay + 1)
            if learn and conn.rule is not None and conn.rule.arrival and conn.learning_enabled:
                conn.rule.clock += T
        if learn:
            for k, conn in enumerate(conns):
                if conn.norm is not None and k not in prog.normalized:  # (the kernel normalised the others)
                    conn.normalize()
        return {name: buf.view(batch, *net.populations[name].shape).clone() for name, buf in self.counts.items()}
