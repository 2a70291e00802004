"""The CUDA backend: one numba-cuda kernel per network structure runs a whole presentation
on the GPU, printed from the models' definitions (see :mod:`.source`), on torch's CUDA
tensors without copies.  ``CudaSimulator`` has the interface of
:class:`~snnrun.core.simulate.TorchSimulator`: Bernoulli inputs are drawn by the same
counter-based generator (on the device), so the two backends see the same spikes.

Without a GPU the same kernels run on CPU tensors under numba-cuda's simulator
(``NUMBA_ENABLE_CUDASIM=1``): that is how the tests check them.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

import torch

from ..encoders import BernoulliTrain
from ..kernel_support import common_reason
from ..models.rng import input_stream, presentation_seed
from ..models.rule import Term
from ..network import Network

CONNECTION_KINDS = ("dense", "one_to_one")
SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in
MAX_THREADS = 512


def simulated() -> bool:
    """numba-cuda's CPU simulator is on (it is read when numba starts)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _cuda() -> Any:
    from numba import cuda  # numba-cuda when installed, else numba's own (deprecated) target

    return cuda


def unsupported_reason(net: Network) -> Optional[str]:
    """Why the CUDA kernel cannot run ``net`` (``None`` when it can)."""
    if net.device.type != "cuda" and not simulated():
        return f"it runs on CUDA devices (network is on {net.device}; on the CPU only under numba-cuda's simulator)"
    try:
        cuda = _cuda()
    except ImportError as exc:
        return f"numba-cuda is not available ({exc}; pip install 'snnrun[cuda]')"
    if not simulated():
        if not cuda.is_available():
            return "numba-cuda finds no CUDA driver"
        try:
            from numba.cuda.cudadrv import nvvm

            if not nvvm.is_available():
                return "numba-cuda finds no NVVM to compile with (pip install 'snnrun[cuda]')"
        except ImportError:  # pragma: no cover - a numba-cuda without the check
            pass
    why = common_reason(net, CONNECTION_KINDS, "cuda")
    if why:
        return why
    for name, conn in net.connections.items():
        if conn.max_delay > 0 or conn.b is not None:
            return f"connection {name!r} has delays or a bias, not generated for CUDA yet"
        rule = conn.rule
        if rule is not None and conn.learning_enabled:
            c = rule.compiled
            if rule.arrival or c.synapse or c.on_step or c.uses_reward:
                return (f"learning rule {rule.kind} on connection {name!r}: arrival timing, synapse variables, "
                        f"on_step and the reward are not generated for CUDA yet")
            why = _assign_order(c)
            if why:
                return f"learning rule {rule.kind} on connection {name!r}: {why}"
    return None


def _assign_order(c: Any) -> Optional[str]:
    """The kernel runs a rule's trace assignments after every synapse's terms: fine when, in
    ``on_pre`` and ``on_post``, assignments follow the terms and no ``on_post`` term reads a
    trace that ``on_pre`` assigns (the reference runs the presynaptic events first)."""
    from ..models.ir import symbols

    for field in ("on_pre", "on_post"):
        ops = getattr(c, field)
        kinds = [isinstance(op, Term) for op in ops]
        if any(not a and b for a, b in zip(kinds, kinds[1:])):
            return f"a term after a trace assignment in {field} is not generated for CUDA yet"
    assigned = {op.target for op in c.on_pre if not isinstance(op, Term)}
    read = set()
    for t in c.on_post:
        if isinstance(t, Term):
            for f in t.pre + t.post + t.syn:
                read |= symbols(f)
    if assigned & read:
        return f"on_post reads {', '.join(sorted(assigned & read))}, which on_pre assigns: not generated for CUDA yet"
    return None


class Launch:
    """What one launch reads: inputs ``[T, B, n]``, spike counts, scratch buffers."""

    def __init__(self, sim: "CudaSimulator", inputs: dict, counts: dict):
        self.sim, self.inputs, self.counts = sim, inputs, counts

    def scratch(self, name: str, n: int) -> torch.Tensor:
        """A zeroed ``[B, n]`` input buffer, kept across launches (the kernel leaves it 0)."""
        net = self.sim.net
        buf = self.sim._scratch.get(name)
        if buf is None or buf.shape != (net.batch, n) or not _on(buf, net.device):
            buf = self.sim._scratch[name] = torch.zeros((net.batch, n), dtype=torch.float32, device=net.device)
        return buf

    def mask(self, conn: Any) -> torch.Tensor:
        m = self.sim._masks.get(id(conn))
        if m is None:
            m = self.sim._masks[id(conn)] = conn.mask.expand_as(conn.w).contiguous().to(torch.float32)
        return m

    def dummy(self, ndim: int) -> torch.Tensor:
        """A placeholder array (a connection without a mask), the same one every launch."""
        d = self.sim._dummies.get(ndim)
        if d is None or not _on(d, self.sim.net.device):
            d = self.sim._dummies[ndim] = torch.zeros((1,) * ndim, dtype=torch.float32, device=self.sim.net.device)
        return d


class CudaSimulator:
    """Runs presentations with the network's CUDA kernel; state shared with the network."""

    backend = "cuda"

    def __init__(self, net: Network, counted: Sequence[str], threads: Optional[int] = None, check: bool = True):
        reason = unsupported_reason(net) if check else None
        if reason is not None:
            raise ValueError(f"cuda backend: {reason}")
        self.net = net
        self.counted = net.check_populations(counted)
        biggest = max(p.n for p in net.populations.values())
        self.threads = int(threads or os.environ.get("SNNRUN_CUDA_THREADS") or min(MAX_THREADS, -(-biggest // 32) * 32))
        self.counts: dict[str, torch.Tensor] = {}
        self.seeds: Optional[torch.Generator] = None  # presentation seeds from here (None: torch's global RNG)
        self._kernels: dict[tuple, tuple] = {}
        self._scratch: dict[str, torch.Tensor] = {}
        self._masks: dict[int, torch.Tensor] = {}
        self._views: dict[tuple, Any] = {}
        self._views_of = -1
        self._streams: dict[int, Any] = {}
        self._dummies: dict[int, torch.Tensor] = {}

    def source(self, inputs: Sequence[str] = (), learning: bool = False, batch: int = 1, prob: bool = False) -> str:
        """The kernel module's text for input populations ``inputs`` (given probabilities
        when ``prob``, else spikes per step): what :meth:`run` compiles."""
        kinds = tuple((name, "prob" if prob else "steps") for name in sorted(inputs))
        return self._build(kinds, batch if learning else 1)[0].text

    def _build(self, inputs: tuple, spb: int) -> tuple:
        from .plan import Plan
        from .source import KernelSource, words

        key = (inputs, spb, self.net.batch)
        hit = self._kernels.get(key)
        if hit is None:
            plan = Plan(self.net, self.counted, inputs, spb)
            shared = sum(2 * spb * words(P.pop.n) * 4 for P in plan.pops)
            if shared > SHARED_BYTES:
                raise ValueError(f"cuda backend: {spb} samples per block need {shared // 1024} KiB of spike bitsets "
                                 f"(at most {SHARED_BYTES // 1024} KiB): learn with a smaller batch")
            src = KernelSource(plan)
            hit = self._kernels[key] = (src, plan, torch.tensor(src.k.values, dtype=torch.float32, device=self.net.device))
        return hit

    def _inputs(self, inputs: Mapping[str, Any], n_steps: Optional[int], seed: int) -> tuple:
        """(T, batch, {population: tensor}, ((population, kind), ...)): Bernoulli trains as
        their integer thresholds ``[B, n]`` (``floor(p 2^32)``, models.rng; drawn in the
        kernel), other inputs as ``[T, B, n]`` spikes (uint8) or values (float32)."""
        net = self.net
        shaped = {k: (v.prob.expand(v.n_steps, *v.prob.shape) if isinstance(v, BernoulliTrain) else v)
                  for k, v in inputs.items()}
        T, batch = net._check_inputs(shaped, n_steps)
        out, kinds = {}, []
        for k, v in sorted(inputs.items()):
            pop = net.populations[k]
            if isinstance(v, BernoulliTrain) and pop.compiled.input:
                p = v.prob.to(net.device).reshape(batch, -1)
                if not bool(torch.isfinite(p).all()):
                    raise ValueError("spike probabilities contain NaN or inf")
                out[k], kind = torch.floor(p.to(torch.float64) * 4294967296.0).to(torch.int64), "prob"
            else:
                if isinstance(v, BernoulliTrain):  # into a population that is not an input: drawn as torch does
                    v = v.draw(seed, input_stream(list(net.populations).index(k)))
                x = v[:T].to(net.device).reshape(T, batch, -1)
                binary = pop.compiled.input and x.dtype in (torch.bool, torch.uint8)
                out[k], kind = x.to(torch.uint8 if binary else torch.float32).contiguous(), "steps"
            kinds.append((k, kind))
        return T, batch, out, tuple(kinds)

    def compile_target(self, inputs: Mapping[str, Any], learning: bool) -> tuple:
        """(the kernel's module, the numba signature of its launch) for ``inputs`` (as for
        :meth:`run`) on the CPU: what compiles the kernel ahead, e.g. to PTX without a GPU."""
        import numba

        from ..fused.loader import load_source

        T, batch, steps, kinds = self._inputs(inputs, None, 0)
        src, plan, kc = self._build(kinds, batch if learning else 1)
        counts = {n: torch.zeros((batch, self.net.populations[n].n), dtype=torch.int32) for n in self.counted}
        arrays = [kc] + plan.tensors(Launch(self, steps, counts))
        sig = tuple([numba.int64, numba.boolean, numba.int64] + [numba.typeof(t.detach().numpy()) for t in arrays])
        return load_source(src.text, "cuda"), sig

    def _args(self, tensors: list, fresh: set) -> list:
        """The kernel's arguments: numpy views in the simulator, else numba views of the CUDA
        tensors (no copies).  The views of the network's own tensors are kept from launch to
        launch (until it re-allocates); those at indices ``fresh`` (this launch's inputs) are not."""
        if simulated():
            return [t.detach().numpy() for t in tensors]
        cuda = _cuda()
        if self._views_of != self.net.generation:
            self._views, self._views_of = {}, self.net.generation
        out = []
        for k, t in enumerate(tensors):
            key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype)
            view = None if k in fresh else self._views.get(key)
            if view is None:
                view = cuda.as_cuda_array(t.detach())
                if k not in fresh:
                    self._views[key] = view
            out.append(view)
        return out

    def _launch(self, kernel: Any, blocks: int, args: tuple) -> None:
        """Launch on torch's current stream of the network's device (numba's own context
        for that device), or in the simulator."""
        if simulated():
            kernel[blocks, self.threads](*args)
            return
        cuda = _cuda()
        index = self.net.device.index if self.net.device.index is not None else torch.cuda.current_device()
        ptr = torch.cuda.current_stream(index).cuda_stream
        with cuda.gpus[index]:
            stream = self._streams.get(ptr)
            if stream is None:
                stream = self._streams[ptr] = cuda.external_stream(ptr)
            kernel[blocks, self.threads, stream](*args)

    def run(self, inputs: Mapping[str, Any], learning: bool, n_steps: Optional[int] = None,
            recorders: Sequence = ()) -> dict[str, torch.Tensor]:
        from ..fused.loader import load_source

        net = self.net
        if recorders:
            raise ValueError("the cuda kernel does not record per step; record with the torch backend "
                             "(Network.run(..., recorders=[...]) or backend=torch)")
        seed = presentation_seed(self.seeds)
        T, batch, steps, kinds = self._inputs(inputs, n_steps, seed)
        if batch != net.batch or net._plan is None:
            net.allocate(batch)
        learn = bool(learning)
        src, plan, kc = self._build(kinds, batch if learn else 1)
        for name in self.counted:
            pop = net.populations[name]
            buf = self.counts.get(name)
            if buf is None or buf.shape != (batch, pop.n) or not _on(buf, net.device):
                buf = self.counts[name] = torch.zeros((batch, pop.n), dtype=torch.int32, device=net.device)
            buf.zero_()
        for pop in net.populations.values():
            pop.learning = learn
        kernel = load_source(src.text, "cuda").kernel
        tensors = [kc] + plan.tensors(Launch(self, steps, self.counts))
        fresh = {k + 1 for k, name in enumerate(plan.arg_names()) if name.endswith(("_xin", "_thr", "_ext"))}
        self._launch(kernel, 1 if learn else -(-batch // plan.spb), (T, learn, seed, *self._args(tensors, fresh)))
        if learn:
            net.normalize()
        return {name: buf.view(batch, *net.populations[name].shape).clone() for name, buf in self.counts.items()}


def _on(t: torch.Tensor, device: torch.device) -> bool:
    """``t`` is on ``device`` (``cuda`` without an index means the current device)."""
    return t.device.type == device.type and (device.index is None or t.device.index == device.index)


__all__ = ["CudaSimulator", "unsupported_reason", "simulated"]
