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
from .codegen import Ctx, Kernel, add_connection, add_population, add_rule, rule_layout
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

    def _build(self, inputs: tuple) -> Kernel:
        return self._kernel(inputs)

    def source(self, input_names: Sequence[str], probabilities: bool = False) -> str:
        """The generated kernel's source (for inspection; pieces are in the kernel cache)."""
        return self._kernel(tuple((n, probabilities) for n in input_names)).source()

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
        K = self._built[key]
        for name in self.counted:
            pop = net.populations[name]
            buf = self.counts.get(name)
            if buf is None or buf.shape != (batch, pop.n):
                buf = self.counts[name] = torch.zeros((batch, pop.n), dtype=torch.int32)
            buf.zero_()
        static = self._static.get(key)
        if static is None or static[0] != net.generation:
            static = self._static[key] = (net.generation, [e.get() if e.static else None for e in K.ext],
                                          [(i, e.get) for i, e in enumerate(K.ext) if not e.static])
        learn = bool(learning)
        ctx = Ctx(net, inputs, probs, T, batch, learn, self.counts)
        args = list(static[1])
        for i, get in static[2]:
            args[i] = get(ctx)
        for pop in net.populations.values():
            pop.learning = learn
        glue, fns = self._linked(key, K, args)
        seed = presentation_seed()
        chunks = self._chunks(batch, learn, K)
        if len(chunks) == 1:
            glue(T, learn, seed, 0, fns, *args)
        else:  # inference: batch slices in parallel threads (the kernel releases the GIL)
            jobs = []
            for b0, b1 in chunks:  # slices along axis 0 stay contiguous; others are copied (and written back)
                sliced = [a if e.axis is None else (a[b0:b1] if e.axis == 0 else np.ascontiguousarray(
                    a[(slice(None),) * e.axis + (slice(b0, b1),)])) for a, e in zip(args, K.ext)]
                sliced = [a.copy() if e.name.endswith("_pos") else a for a, e in zip(sliced, K.ext)]
                jobs.append(((b0, b1), (T, learn, seed, b0, fns, *sliced)))
            with ThreadPoolExecutor(len(jobs)) as pool:
                list(pool.map(lambda job: glue(*job[1]), jobs))
            for (b0, b1), job in jobs:
                for a, part, e in zip(args, job[5:], K.ext):
                    if e.written and e.axis not in (None, 0):
                        a[(slice(None),) * e.axis + (slice(b0, b1),)] = part
        positions = {e.name: a for e, a in zip(K.ext, args) if e.name.endswith("_pos")}
        for k, conn in enumerate(net.connections.values()):
            if conn.max_delay > 0:
                conn.pos = (int(positions[f"c{k}_pos"][0]) if len(chunks) == 1 else (conn.pos + T) % (conn.max_delay + 1))
        if learn:
            for conn in net.connections.values():
                if conn.learning_enabled and conn.rule is not None and conn.rule.arrival:
                    conn.rule.clock += T
            net.normalize()
        return {name: buf.view(batch, *net.populations[name].shape).clone() for name, buf in self.counts.items()}

    def _linked(self, key: tuple, K: Kernel, args: list) -> tuple:
        """The kernel and its functions' addresses for this call's argument types (compiled,
        or loaded from the disk cache, the first time a type combination is met)."""
        sig_key = (key, tuple(a.dtype for a, e in zip(args, K.ext) if e.name.endswith(("_xin", "_ext"))))
        linked = self._sigs.get(sig_key)
        if linked is None:
            linked = self._sigs[sig_key] = K.link({e.name: a for e, a in zip(K.ext, args)})
        return linked
