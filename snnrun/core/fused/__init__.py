"""The fused CPU backend: one generated, numba-compiled kernel per network runs a whole
presentation (see :mod:`.codegen`).  ``FusedSimulator`` has the interface of
:class:`~snnrun.core.simulate.TorchSimulator`."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Optional, Sequence

import torch

from ..encoders import BernoulliTrain
from ..network import Network
from .codegen import PATCH_CONNS, PATCH_RULES, SUPPORTED_CONNS, SUPPORTED_POPS, SUPPORTED_RULES, KernelSource, emit_connection, emit_population, emit_rule

import numba  # noqa: F401  (ImportError here makes the backend unavailable)


def unsupported_reason(net: Network) -> Optional[str]:
    """Why the fused backend cannot run ``net`` (``None`` when it can)."""
    if net.device.type != "cpu":
        return f"it runs on the CPU only (network is on {net.device})"
    for name, pop in net.populations.items():
        if type(pop) not in SUPPORTED_POPS:
            return f"population {name!r} of kind {pop.kind} is not supported"
    for name, conn in net.connections.items():
        if type(conn) not in SUPPORTED_CONNS:
            return f"connection {name!r} of kind {conn.kind} is not supported"
        rule = conn.rule
        if rule is not None and type(rule) not in SUPPORTED_RULES:
            return f"learning rule {rule.kind} on connection {name!r} is not supported"
        if isinstance(conn, PATCH_CONNS):
            if conn.max_delay > 0 or conn.b is not None:
                return f"{conn.kind} connection {name!r} with delays or a bias is not supported"
            if rule is not None and type(rule) not in PATCH_RULES:
                return f"learning rule {rule.kind} on {conn.kind} connection {name!r} is not supported"
        if rule is not None and rule.weight_decay:
            return f"weight_decay on connection {name!r} is not supported"
        if conn.w.dtype != torch.float32:
            return f"connection {name!r} weights are {conn.w.dtype}, not float32"
    return None


DYNAMIC = ("_pos0", "_clock0", "_dptr", "_dcol", "nthreads")  # kernel arguments that change between calls


def _as_array(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if not value.is_contiguous():
            raise RuntimeError("fused backend: state tensor is not contiguous")
        return value.numpy()
    return value


def kernel_dir() -> Path:
    root = os.environ.get("SNNRUN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snnrun")
    path = Path(root) / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_kernel(code: str) -> Any:
    """Write ``code`` to the kernel cache (named by its hash) and import its ``kernel``."""
    digest = hashlib.sha1(code.encode()).hexdigest()[:16]
    name = f"snnrun_kernel_{digest}"
    if name in sys.modules:
        return sys.modules[name].kernel
    path = kernel_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != code:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(code)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.kernel


class FusedSimulator:
    """Runs presentations with a generated numba kernel; state shared with the network."""

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
        self.threads = int(os.environ.get("SNNRUN_THREADS") or os.cpu_count() or 1)
        self.counts: dict[str, torch.Tensor] = {}

    def _generate(self, inputs: tuple[tuple[str, bool], ...]) -> KernelSource:
        """Kernel source for inputs ``((population, is_probability), ...)``."""
        net = self.net
        kinds = dict(inputs)
        pops = list(net.populations.values())
        src = KernelSource()
        for k, (name, pop) in enumerate(net.populations.items()):
            emit_population(src, k, pop, k if name in kinds else None, name in self.counted, kinds.get(name, False))
        conns = list(net.connections.values())
        for k, conn in enumerate(conns):
            emit_connection(src, k, conn, pops)
        for k, conn in enumerate(conns):
            if conn.rule is not None and conn.learning_enabled:
                emit_rule(src, k, conn, pops)
        return src

    def _build(self, inputs: tuple[tuple[str, bool], ...]) -> tuple:
        src = self._generate(inputs)
        delayed = [c for c in self.net.connections.values() if c.max_delay > 0]
        return load_kernel(src.source()), src, delayed, list(self.net.populations)

    def source(self, input_names: Sequence[str], probabilities: bool = False) -> str:
        """The generated kernel source (for inspection)."""
        return self._generate(tuple((n, probabilities) for n in input_names)).source()

    @staticmethod
    def _state_arrays(specs) -> list:
        """Zero-copy views of the state tensors, valid until the network re-allocates
        (``None`` for arguments fetched on every call: inputs, counts, delay lines' state)."""
        return [None if isinstance(spec, tuple) or name.endswith(DYNAMIC) else _as_array(spec())
                for name, spec in specs]

    def _chunks(self, batch: int, learning: bool, src: KernelSource) -> list[tuple[int, int]]:
        """Split the batch over threads for inference (learning writes shared weights)."""
        n = min(self.threads, batch)
        if learning or n <= 1 or src.parallel:
            return [(0, batch)]
        size = -(-batch // n)
        return [(b, min(b + size, batch)) for b in range(0, batch, size)]

    def run(self, inputs: Mapping[str, torch.Tensor], learning: bool, n_steps: Optional[int] = None,
            recorders: Sequence = ()) -> dict[str, torch.Tensor]:
        net = self.net
        if recorders:  # recording needs the per-step loop: use the reference path
            from ..simulate import TorchSimulator

            return TorchSimulator(net, self.counted).run(inputs, learning, n_steps, recorders)
        probs = {k: v for k, v in inputs.items() if isinstance(v, BernoulliTrain)}
        shaped = {k: (v if k not in probs else v.prob.expand(v.n_steps, *v.prob.shape)) for k, v in inputs.items()}
        T, batch = net._check_inputs(shaped, n_steps)
        if batch != net.batch or net._plan is None:
            net.allocate(batch)
        key = tuple(sorted((k, k in probs) for k in inputs))
        if key not in self._built:
            self._built[key] = self._build(key)
        kernel, src, delayed, names = self._built[key]
        specs = src.args
        for name in self.counted:
            pop = net.populations[name]
            buf = self.counts.get(name)
            if buf is None or buf.shape != (batch, pop.n):
                buf = self.counts[name] = torch.zeros((batch, pop.n), dtype=torch.int32)
            buf.zero_()
        static = self._static.get(key)
        if static is None or static[0] != net.generation:
            static = self._static[key] = (net.generation, self._state_arrays(specs))
        args = []
        for (name, spec), cached in zip(specs, static[1]):
            if cached is not None:
                args.append(cached)
            elif isinstance(spec, tuple):
                what, k = spec
                if what == "count":
                    args.append(self.counts[names[k]].numpy())
                elif names[k] in probs:
                    args.append(probs[names[k]].prob.reshape(batch, -1).to(torch.float32).contiguous().numpy())
                else:
                    x = inputs[names[k]][:T]
                    x = x.reshape(x.shape[0], batch, -1)
                    if x.dtype not in (torch.bool, torch.uint8):
                        x = x.to(torch.float32)
                    args.append(x.contiguous().numpy())
                continue
            else:
                args.append(_as_array(spec()))
        learn = bool(learning)
        for pop in net.populations.values():
            pop.learning = learn
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        chunks = self._chunks(batch, learn, src)
        if len(chunks) == 1:
            positions = kernel(T, learn, seed, *args)
        else:  # inference: batch slices in parallel threads (the kernel releases the GIL)
            axes = [src.batch_axis.get(name) for name, _ in specs]
            jobs = []
            for c, (b0, b1) in enumerate(chunks):
                sliced = [a if ax is None else a[(slice(None),) * ax + (slice(b0, b1),)] for a, ax in zip(args, axes)]
                jobs.append((T, learn, seed + c, *sliced))
            with ThreadPoolExecutor(len(jobs)) as pool:
                positions = list(pool.map(lambda job: kernel(*job), jobs))[0]
        for conn, pos in zip(delayed, positions):
            conn.pos = int(pos)
        if learn:
            for conn in net.connections.values():
                if conn.learning_enabled and getattr(conn.rule, "arrival", False):
                    conn.rule.clock += T
            net.normalize()
        return {name: buf.view(batch, *net.populations[name].shape).clone() for name, buf in self.counts.items()}
