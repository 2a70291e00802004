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
* ``auto`` -- ``numba`` on CPU when the network is supported and numba is installed,
  else ``torch``.
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

    def __init__(self, net: Network, counted: Sequence[str]):
        self.net = net
        self.counter = SpikeCounter(counted)

    def run(self, inputs: Mapping[str, torch.Tensor], learning: bool, n_steps: Optional[int] = None,
            recorders: Sequence = ()) -> dict[str, torch.Tensor]:
        seed = presentation_seed()
        names = list(self.net.populations)
        inputs = {k: v.draw(seed, input_stream(names.index(k))) if isinstance(v, BernoulliTrain) else v
                  for k, v in inputs.items()}
        self.net.run(inputs, n_steps=n_steps, learning=learning, recorders=[self.counter, *recorders], seed=seed)
        return {k: v.clone() for k, v in self.counter.counts.items()}


def make_simulator(net: Network, counted: Sequence[str], backend: str = "auto"):
    """Pick a simulation backend (see module docstring)."""
    if backend not in ("auto", "torch", "numba", "compile"):
        raise ValueError(f"backend: {backend!r} is not one of: auto, torch, numba, compile")
    if backend == "compile":
        net.compile(mode="reduce-overhead" if net.device.type == "cuda" else None)
        sim = TorchSimulator(net, counted)
        sim.backend = "compile"
        return sim
    if backend in ("auto", "numba"):
        try:
            from .fused import FusedSimulator, unsupported_reason
        except ImportError as exc:
            if backend == "numba":
                raise ValueError(f"backend: numba is not available ({exc})") from None
            return TorchSimulator(net, counted)
        reason = unsupported_reason(net)
        if reason is None:
            return FusedSimulator(net, counted)
        if backend == "numba":
            raise ValueError(f"backend: numba cannot run this network: {reason}")
    return TorchSimulator(net, counted)
