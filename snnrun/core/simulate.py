"""Simulation backends behind one interface.

``make_simulator(net, counted, backend)`` returns an object whose
``run(inputs, learning)`` simulates one presentation (``inputs`` as for
:meth:`Network.run`, or :class:`~snnrun.core.encoders.BernoulliTrain` probabilities that the
backend samples itself) and returns on-device spike counts ``{population: [B, *shape]}``.

* ``torch`` -- the reference: :meth:`Network.run`, eager torch, any device.
* ``numba`` -- a fused, event-driven CPU kernel generated for the network at build time
  (see :mod:`snnrun.core.fused`); tested against ``torch`` for identical spikes.
* ``compile`` -- the torch step under ``torch.compile(fullgraph=True)`` (CUDA graphs on
  GPU via ``mode="reduce-overhead"``); same numbers as ``torch``.
* ``cuda`` -- a CUDA kernel generated for the network (numba-cuda, see
  :mod:`snnrun.core.gpu`): a whole presentation per launch; tested against ``torch``.
* ``auto`` -- ``numba`` on CPU, ``cuda`` on a CUDA device, when the network is supported
  (and numba / numba-cuda are installed), else ``torch``; the simulator's ``note`` says
  which and why (the runners print it).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch

from .encoders import BernoulliTrain
from .models.rng import input_stream, presentation_seed
from .network import Network
from .record import SpikeCounter


class TorchSimulator:
    """Reference backend: the network's own eager loop plus an on-device spike counter."""

    backend = "torch"
    note = "torch"

    def __init__(self, net: Network, counted: Sequence[str]):
        self.net = net
        self.counter = SpikeCounter(counted)
        self.seeds: Optional[torch.Generator] = None  # presentation seeds from here (None: torch's global RNG)

    def run(self, inputs: Mapping[str, torch.Tensor], learning: bool, n_steps: Optional[int] = None,
            recorders: Sequence = ()) -> dict[str, torch.Tensor]:
        seed = presentation_seed(self.seeds)
        names = list(self.net.populations)
        inputs = {k: v.draw(seed, input_stream(names.index(k))) if isinstance(v, BernoulliTrain) else v
                  for k, v in inputs.items()}
        self.net.run(inputs, n_steps=n_steps, learning=learning, recorders=[self.counter, *recorders], seed=seed)
        return {k: v.clone() for k, v in self.counter.counts.items()}


BACKENDS = ("auto", "torch", "numba", "compile", "cuda")


def make_simulator(net: Network, counted: Sequence[str], backend: str = "auto"):
    """Pick a simulation backend (see module docstring).  The simulator's ``note`` says in
    one line which backend runs and, when ``auto`` does not run a generated kernel, why."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: {backend!r} is not one of: {', '.join(BACKENDS)}")
    if backend == "cuda" or (backend == "auto" and net.device.type == "cuda"):
        return _kernel_or_torch(net, counted, backend, "cuda")
    if backend == "compile":
        net.compile(mode="reduce-overhead" if net.device.type == "cuda" else None)
        sim = TorchSimulator(net, counted)
        sim.backend = "compile"
        sim.note = "compile (the torch step under torch.compile)"
        return sim
    if backend == "torch":
        sim = TorchSimulator(net, counted)
        sim.note = "torch (the eager torch step, as asked)"
        return sim
    return _kernel_or_torch(net, counted, backend, "numba")


#: the generated kernels: backend -> (module, simulator class, what it is, its short name)
KERNELS = {"numba": ("snnrun.core.fused", "FusedSimulator", "the fused CPU kernel", "the fused kernel"),
           "cuda": ("snnrun.core.gpu", "CudaSimulator", "the generated CUDA kernel", "the CUDA kernel")}


def _kernel_or_torch(net: Network, counted: Sequence[str], backend: str, kernel: str):
    """The ``kernel`` backend's simulator, or (``auto``) the eager torch step with the
    reason it cannot run (an error naming it when the kernel was asked for)."""
    import importlib

    module, cls, what, short = KERNELS[kernel]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if backend == kernel:
            raise ValueError(f"backend: {kernel} is not available ({exc})") from None
        reason = f"{kernel} is not available ({exc})"
    else:
        reason = mod.unsupported_reason(net)
        if reason is None:
            sim = getattr(mod, cls)(net, counted)
            sim.note = f"{kernel} ({what})"
            return sim
    if backend == kernel:
        raise ValueError(f"backend: {kernel} cannot run this network: {reason}")
    sim = TorchSimulator(net, counted)
    sim.note = f"torch, not {short}: {reason}"
    return sim
