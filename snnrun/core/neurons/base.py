"""Neuron population base: shapes, refractory bookkeeping and spike traces.

A population owns its state tensors, all shaped ``[B, *shape]`` (always a batch
dimension).  State is updated **in place** by :meth:`Population.step`, so recorders and
compiled loops can hold references to the tensors; :meth:`Population.allocate` (on a batch
size or device change) is the only place that creates them.

Three kinds of data are kept apart:

* constants, computed once in ``__init__`` (``decay = exp(-dt / tau)``);
* fast state, reset before every sample by :meth:`reset` (``v``, refractory counters,
  traces, synaptic conductances);
* slow state, listed in ``slow_state`` and kept across samples (e.g. the adaptive
  thresholds ``theta`` of Diehl & Cook neurons); it appears in ``state_dict()``.

Refractoriness: a spike sets the counter ``refrac_count`` to the refractory period (ms,
rounded up to whole steps: ``ceil(refrac_ms / dt) * dt``, a ratio within 1e-6 of an
integer counting as that integer); every step decrements it by ``dt`` (clamped at 0).  A
neuron is refractory while its counter is at least half a step (``>= dt / 2``), so input
is blocked for exactly ``ceil(refrac_ms / dt)`` steps after a spike even when ``dt`` is
not exact in binary (repeatedly subtracting float32 0.1 from 5.0 does not reach 0 after
50 steps; testing ``counter > 0`` blocked 51).

Spike traces (optional, ``traces=True``), after the spikes of the step are known::

    x <- x * exp(-dt / trace_tau_ms)
    x <- trace_scale            where s          (trace_mode = "set")
    x <- x + trace_scale * s                     (trace_mode = "additive")
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Optional

import torch

from ..registry import Registry, check, load_tensors

NEURONS: Registry["Population"] = Registry("neuron")
SCRATCH = frozenset({"thresh", "noise", "winner", "flat_s"})  # work buffers, not state


@dataclasses.dataclass
class NeuronParams:
    """Parameters common to every population kind.

    Give either ``n`` (a flat population) or ``shape`` (e.g. ``[1, 28, 28]``).
    """

    n: Optional[int] = None
    shape: Optional[list[int]] = None
    refrac_ms: float = 0.0
    traces: bool = False
    trace_tau_ms: float = 20.0
    trace_mode: str = "set"
    trace_scale: float = 1.0

    def __post_init__(self) -> None:
        check(self.n is not None or self.shape is not None, "n", "give the population size `n` (or `shape`)")
        if self.shape is not None:
            shape = [int(d) for d in self.shape]
            check(len(shape) > 0 and all(d > 0 for d in shape), "shape", f"dimensions must be positive, got {list(self.shape)}")
            size = math.prod(shape)
            check(self.n is None or self.n == size, "n", f"n={self.n} does not match shape {shape} (size {size})")
            self.shape = shape
            self.n = size
        check(isinstance(self.n, int) and self.n > 0, "n", f"must be a positive integer, got {self.n!r}")
        check(self.refrac_ms >= 0, "refrac_ms", f"must be >= 0, got {self.refrac_ms}")
        check(self.trace_tau_ms > 0, "trace_tau_ms", f"must be > 0, got {self.trace_tau_ms}")
        check(self.trace_mode in ("set", "additive"), "trace_mode", f"{self.trace_mode!r} is not one of: set, additive")


def refractory_ms(refrac_ms: float, dt: float) -> float:
    """Refractory period rounded up to whole steps of ``dt`` (0 for no refractoriness)."""
    if refrac_ms <= 0:
        return 0.0
    return math.ceil(refrac_ms / dt - 1e-6) * dt


def decay(dt: float, tau: float) -> float:
    """Exact per-step decay factor ``exp(-dt / tau)`` (0 for tau = 0)."""
    return math.exp(-dt / tau) if tau > 0 else 0.0


class Population:
    """Base class of all neuron populations.

    Subclasses set ``state_vars`` (fast state names besides ``s``/``x``/``refrac``),
    optionally ``slow_state`` and ``conductance`` (True when the kind takes separate
    excitatory and inhibitory input), and implement ``_init_state`` / ``_reset`` /
    ``_update``.
    """

    kind: ClassVar[str] = "?"
    slow_state: ClassVar[tuple[str, ...]] = ()
    conductance: ClassVar[bool] = False
    is_input: ClassVar[bool] = False

    def __init__(self, params: NeuronParams, dt: float = 1.0):
        self.params = params
        self.dt = float(dt)
        self.shape: tuple[int, ...] = tuple(params.shape) if params.shape else (int(params.n),)
        self.n = int(params.n)
        self.traces = bool(params.traces)
        self.trace_decay = decay(self.dt, params.trace_tau_ms)
        self.trace_scale = float(params.trace_scale)
        self.trace_additive = params.trace_mode == "additive"
        self.refrac = refractory_ms(float(params.refrac_ms), self.dt)
        self.refrac_tol = 0.5 * self.dt  # counters below this count as elapsed (module docstring)
        self.batch = 0
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.learning = True
        # state tensors; created by allocate()
        self.s = torch.zeros(0, dtype=torch.bool)
        self.x = torch.zeros(0)
        self.refrac_count = torch.zeros(0)
        self._init_slow(self.device)

    # ----------------------------------------------------------------- state management
    def _init_slow(self, device: torch.device) -> None:
        """Create slow state (independent of batch size). Override if any."""

    def _init_state(self) -> None:
        """Create the kind's fast-state tensors for ``self.batch`` on ``self.device``."""

    def _reset(self) -> None:
        """Reset the kind's fast state in place."""

    def zeros(self, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        return torch.zeros((self.batch, *self.shape), device=self.device, dtype=dtype or self.dtype)

    def allocate(self, batch: int, device: torch.device | str | None = None) -> None:
        """(Re)create all fast state for ``batch`` samples on ``device``, then reset it."""
        device = torch.device(device) if device is not None else self.device
        if device != self.device:
            self.to(device)
        self.batch = int(batch)
        self.s = self.zeros(torch.bool)
        self.x = self.zeros() if self.traces else torch.zeros(0, device=self.device)
        self.refrac_count = self.zeros()
        self._init_state()
        self.reset()

    def reset(self) -> None:
        """Reset fast state (voltages, refractory counters, traces, spikes), keep slow state."""
        if self.batch == 0:
            return
        self.s.zero_()
        if self.traces:
            self.x.zero_()
        self.refrac_count.zero_()
        self._reset()

    def to(self, device: torch.device | str) -> "Population":
        device = torch.device(device)
        for name in self.slow_state:
            setattr(self, name, getattr(self, name).to(device))
        self.device = device
        if self.batch:
            self.allocate(self.batch, device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).detach().clone() for name in self.slow_state}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_tensors(self, self.slow_state, state)

    def state_vars(self) -> list[str]:
        """Names of recordable per-neuron variables (tensors shaped [B, *shape] or [*shape])."""
        names = ["s"]
        if self.traces:
            names.append("x")
        for k, v in vars(self).items():
            if k not in names and k not in SCRATCH and isinstance(v, torch.Tensor) and v.dim() >= 1 and tuple(v.shape[-len(self.shape):]) == self.shape:
                names.append(k)
        return names

    # ----------------------------------------------------------------- dynamics
    def step(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Advance one step of ``dt`` with input ``i_exc`` (and ``i_inh`` for conductance
        kinds), update spikes ``s`` and traces ``x`` in place, return ``s``."""
        self._update(i_exc, i_inh)
        if self.traces:
            self._update_traces()
        return self.s

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        raise NotImplementedError

    def _update_traces(self) -> None:
        self.x.mul_(self.trace_decay)
        if self.trace_additive:
            self.x.add_(self.s, alpha=self.trace_scale)
        else:
            self.x.masked_fill_(self.s, self.trace_scale)

    # refractory helpers shared by the integrate-and-fire family
    def _active(self) -> torch.Tensor:
        """Mask of neurons not refractory this step (counter below half a step)."""
        return self.refrac_count < self.refrac_tol

    def _start_refractory(self) -> None:
        if self.refrac > 0:
            self.refrac_count.masked_fill_(self.s, self.refrac)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"
