"""The fused CPU backend: one numba kernel per network structure runs a whole presentation,
calling compiled pieces printed from the models' definitions (see :mod:`.codegen`).
``FusedSimulator`` has the interface of :class:`~snnrun.core.simulate.TorchSimulator` and
makes the same random choices (:mod:`snnrun.core.models.rng`)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

import numba  # noqa: F401  (ImportError here makes the backend unavailable)

from ..encoders import BernoulliTrain
from ..models.rng import presentation_seed
from ..network import Network
from .codegen import PREPASS_MAX_FLOATS, PREPASS_TILE, Kernel, add_connection, add_population, add_rule, rule_layout
from .loader import load_source
from .patch import is_patch
from .rule_piece import supported

CONNECTION_KINDS = ("dense", "one_to_one", "conv2d", "local")


def unsupported_reason(net: Network) -> Optional[str]:
    """Why the fused backend cannot run ``net`` (``None`` when it can)."""
    if net.device.type != "cpu":
        return f"it runs on the CPU only (network is on {net.device})"
    for name, pop in net.populations.items():
        if not getattr(pop, "fused", True):
            return f"population {name!r} ({type(pop).__name__}) has real-valued output"
    for name, conn in net.connections.items():
        if conn.kind not in CONNECTION_KINDS:
            return f"connection {name!r} of kind {conn.kind} is not supported (fused kinds: {', '.join(CONNECTION_KINDS)})"
        if is_patch(conn) and (conn.max_delay > 0 or conn.b is not None):
            return f"{conn.kind} connection {name!r} with delays or a bias is not supported"
        if conn.w.dtype != torch.float32:
            return f"connection {name!r} weights are {conn.w.dtype}, not float32"
        rule = conn.rule
        if rule is not None and conn.learning_enabled:
            why = supported(rule.compiled, rule_layout(conn))
            if why:
                return f"learning rule {rule.kind} on connection {name!r}: {why}"
    return None


class FusedSimulator:
    """Runs presentations with the network's fused kernel; state shared with the network."""

    backend = "numba"

    def __init__(self, net: Network, counted: Sequence[str]):
        reason = unsupported_reason(net)
        if reason is not None:
            raise ValueError(f"fused backend: {reason}")
        self.net = net
        self.counted = list(counted)
        for name in self.counted:
            if name not in net.populations:
                raise KeyError(f"no population {name!r} to count; populations are: {', '.join(net.populations)}")
        self._built: dict[tuple, tuple] = {}
        self._static: dict[tuple, tuple] = {}
        self._sigs: dict[tuple, Any] = {}
        self.threads = int(os.environ.get("SNNRUN_THREADS") or os.cpu_count() or 1)
        self.counts: dict[str, torch.Tensor] = {}

    def _kernel(self, inputs: tuple) -> Kernel:
        net = self.net
        K = Kernel()
        given = dict(inputs)
        pops = list(net.populations.values())
        for k, (name, pop) in enumerate(net.populations.items()):
            add_population(K, k, name, pop, name in self.counted, given)
        conns = list(net.connections.values())
        for k, conn in enumerate(conns):
            add_connection(K, k, conn, pops)
        for k, conn in enumerate(conns):
            if conn.rule is not None and conn.learning_enabled:
                add_rule(K, k, conn, pops)
        return K

    def _build(self, inputs: tuple) -> tuple:
        K = self._kernel(inputs)
        return K, load_source(K.source(), "snnrun_kernel").kernel

    def source(self, input_names: Sequence[str], probabilities: bool = False) -> str:
        """The generated kernel's source (for inspection; pieces are in the kernel cache)."""
        return self._kernel(tuple((n, probabilities) for n in input_names)).source()

    # ----------------------------------------------------------------- per-call arguments
    def _dynamic(self, K: Kernel, inputs: Mapping[str, Any], probs: dict, T: int, batch: int,
                 learn: bool) -> dict[str, Any]:
        net = self.net
        names = list(net.populations)
        conns = list(net.connections.values())
        out: dict[str, Any] = {}
        for e in K.ext:
            if e.static:
                continue
            part, _, what = e.name.partition("_")
            k = int(part[1:])
            if part[0] == "p":
                name = names[k]
                if what == "thr":
                    p = probs[name].prob.reshape(batch, -1)
                    out[e.name] = np.floor(p.to(torch.float64).numpy() * 4294967296.0).astype(np.int64)
                elif what in ("xin", "ext"):
                    x = inputs[name][:T]
                    x = x.reshape(x.shape[0], batch, -1)
                    if what == "ext" or x.dtype not in (torch.bool, torch.uint8):
                        x = x.to(torch.float32)
                    out[e.name] = x.contiguous().numpy()
                elif what == "count":
                    out[e.name] = self.counts[name].numpy()
            elif part[0] == "c":
                conn = conns[k]
                if what == "pos":
                    out[e.name] = np.array([conn.pos], np.int64)
                elif what == "ahead":
                    nt = -(-conn.target.n // PREPASS_TILE)
                    plastic = conn.rule is not None and conn.learning_enabled
                    out[e.name] = bool((not (learn and plastic)) and T * batch * nt * PREPASS_TILE <= PREPASS_MAX_FLOATS)
                elif what == "cur":
                    nt = -(-conn.target.n // PREPASS_TILE)
                    ahead = out[e.name.replace("_cur", "_ahead")]
                    out[e.name] = np.zeros((nt, batch, T, PREPASS_TILE) if ahead else (0, batch, 0, PREPASS_TILE), np.float32)
            else:  # rules
                rule = conns[k].rule
                if what == "clock":
                    out[e.name] = int(rule.clock)
                elif what == "defer":
                    out[e.name] = bool(rule.episode)
                elif what == "reward":
                    r = net.reward
                    if rule.episode:
                        r = torch.ones(())
                    elif rule.compiled.reward_in_step and r.dim() != 0:
                        raise ValueError(f"{rule.kind} takes one scalar reward per step (got one per sample)")
                    out[e.name] = np.ascontiguousarray(r.to(torch.float32).expand(batch).numpy())
        return out

    def _chunks(self, batch: int, learning: bool, K: Kernel) -> list[tuple[int, int]]:
        """Split the batch over threads for inference (learning writes shared weights)."""
        n = min(self.threads, batch)
        if learning or n <= 1 or K.parallel:
            return [(0, batch)]
        size = -(-batch // n)
        return [(b, min(b + size, batch)) for b in range(0, batch, size)]

    # ----------------------------------------------------------------- run
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
        key = tuple(sorted((k, k in probs) for k in inputs))
        if key not in self._built:
            self._built[key] = self._build(key)
        K, glue = self._built[key]
        for name in self.counted:
            pop = net.populations[name]
            buf = self.counts.get(name)
            if buf is None or buf.shape != (batch, pop.n):
                buf = self.counts[name] = torch.zeros((batch, pop.n), dtype=torch.int32)
            buf.zero_()
        static = self._static.get(key)
        if static is None or static[0] != net.generation:
            static = self._static[key] = (net.generation, {e.name: e.get() for e in K.ext if e.static})
        values = dict(static[1])
        values.update(self._dynamic(K, inputs, probs, T, batch, bool(learning)))
        learn = bool(learning)
        for pop in net.populations.values():
            pop.learning = learn
        fns = self._signature(key, K, glue, values)
        seed = presentation_seed()
        args = [values[e.name] for e in K.ext]
        chunks = self._chunks(batch, learn, K)
        if len(chunks) == 1:
            glue(T, learn, seed, 0, *args, *fns)
        else:  # inference: batch slices in parallel threads (the kernel releases the GIL)
            axes = [e.axis for e in K.ext]
            jobs = []
            for b0, b1 in chunks:
                sliced = [a if ax is None else a[(slice(None),) * ax + (slice(b0, b1),)] for a, ax in zip(args, axes)]
                sliced = [a.copy() if e.name.endswith("_pos") else a for a, e in zip(sliced, K.ext)]
                jobs.append((T, learn, seed, b0, *sliced, *fns))
            with ThreadPoolExecutor(len(jobs)) as pool:
                list(pool.map(lambda job: glue(*job), jobs))
            for e in K.ext:  # every chunk advanced its delay lines alike
                if e.name.endswith("_pos"):
                    values[e.name][0] = (values[e.name][0] + T) % (net.connections[list(net.connections)[int(e.name[1:].split("_")[0])]].max_delay + 1)
        for k, conn in enumerate(net.connections.values()):
            if conn.max_delay > 0:
                conn.pos = int(values[f"c{k}_pos"][0])
        if learn:
            for conn in net.connections.values():
                if conn.learning_enabled and conn.rule is not None and conn.rule.arrival:
                    conn.rule.clock += T
            net.normalize()
        return {name: buf.view(batch, *net.populations[name].shape).clone() for name, buf in self.counts.items()}

    def _signature(self, key: tuple, K: Kernel, glue: Any, values: dict) -> list:
        """The compiled functions for this call's argument types (compiled or loaded from
        the disk cache the first time a type combination is met)."""
        dyn = tuple((e.name, getattr(values[e.name], "dtype", type(values[e.name]))) for e in K.ext if not e.static)
        sig_key = (key, dyn)
        if sig_key not in self._sigs:
            fn_types, sig = K.signatures(values)
            glue.compile(sig)
            self._sigs[sig_key] = [c.dispatcher for c in K.calls]
        return self._sigs[sig_key]
