"""Preallocated, on-device recorders.

* :class:`Recorder` stores any state variable of any population (``s``, ``v``, ``theta``,
  ``x``, ...) for every step of a window ``[start, stop)`` of a run, into buffers shaped
  ``[T_window, B, *shape]`` allocated once on the network's device (spikes as ``bool``).
* :class:`SpikeCounter` keeps per-neuron spike counts ``[B, *shape]`` on the device.

Nothing is copied to the host during a run: read the buffers afterwards.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import torch


class Recorder:
    """Record ``{population: [variable, ...]}`` over steps ``start <= t < stop`` of each run."""

    def __init__(self, spec: Mapping[str, Sequence[str]], start: int = 0, stop: Optional[int] = None):
        self.spec = {pop: list(vars_) for pop, vars_ in spec.items()}
        self.start = int(start)
        self.stop = stop
        self.buffers: dict[tuple[str, str], torch.Tensor] = {}
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._key: tuple = ()

    def bind(self, net, n_steps: int) -> None:
        """Check the spec against ``net`` and (re)allocate buffers if shapes changed."""
        stop = n_steps if self.stop is None else min(self.stop, n_steps)
        length = max(stop - self.start, 0)
        key = (id(net), net.batch, length, str(net.device))
        sources = []
        for pop_name, var_names in self.spec.items():
            if pop_name not in net.populations:
                raise KeyError(f"recorder: no population {pop_name!r}; populations are: {', '.join(net.populations)}")
            pop = net.populations[pop_name]
            valid = pop.state_vars()
            for var in var_names:
                if var not in valid:
                    raise KeyError(f"recorder: population {pop_name!r} has no variable {var!r}; choose one of: {', '.join(valid)}")
                sources.append((pop_name, var, getattr(pop, var)))
        if key != self._key:
            self.buffers = {
                (p, v): torch.zeros((length, *src.shape), dtype=src.dtype, device=src.device) for p, v, src in sources
            }
            self._key = key
        self._pairs = [(self.buffers[(p, v)], src) for p, v, src in sources]
        self._stop = stop

    def record(self, t: int) -> None:
        if self.start <= t < self._stop:
            i = t - self.start
            for buf, src in self._pairs:
                buf[i].copy_(src)

    def get(self, population: str, var: str = "s") -> torch.Tensor:
        """Recorded values ``[T_window, B, *shape]`` (or ``[T_window, *shape]`` for slow state)."""
        return self.buffers[(population, var)]

    __getitem__ = lambda self, key: self.get(*key)  # noqa: E731


class SpikeCounter:
    """On-device spike counts per neuron, summed over each run (reset at the start of a run)."""

    def __init__(self, populations: Iterable[str], dtype: torch.dtype = torch.int32):
        self.names = list(populations)
        self.dtype = dtype
        self.counts: dict[str, torch.Tensor] = {}
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def bind(self, net, n_steps: int) -> None:
        pairs = []
        for name in self.names:
            if name not in net.populations:
                raise KeyError(f"spike counter: no population {name!r}; populations are: {', '.join(net.populations)}")
            s = net.populations[name].s
            buf = self.counts.get(name)
            if buf is None or buf.shape != s.shape or buf.device != s.device:
                buf = torch.zeros(s.shape, dtype=self.dtype, device=s.device)
                self.counts[name] = buf
            buf.zero_()
            pairs.append((buf, s))
        self._pairs = pairs

    def record(self, t: int) -> None:
        for buf, s in self._pairs:
            buf.add_(s)

    def get(self, population: str) -> torch.Tensor:
        return self.counts[population]

    __getitem__ = get
