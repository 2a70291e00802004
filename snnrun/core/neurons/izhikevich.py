"""Izhikevich (2003) neurons::

    v' = 0.04 v^2 + 5 v + 140 - u + I        (mV, ms)
    u' = a (b v - u)
    if v >= v_peak_mv (30 mV): v <- c, u <- u + d

Integrated as in Izhikevich's reference code: ``v`` in two half steps of ``dt / 2``, then
``u`` with the new ``v``.  ``preset`` fills (a, b, c, d) for the classic firing classes:
``regular_spiking`` (0.02, 0.2, -65, 8), ``fast_spiking`` (0.1, 0.2, -65, 2),
``chattering`` (0.02, 0.2, -50, 2), ``intrinsically_bursting`` (0.02, 0.2, -55, 4),
``low_threshold_spiking`` (0.02, 0.25, -65, 2); ``custom`` takes ``a, b, c, d`` as given.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from ..registry import check
from .base import NEURONS, NeuronParams, Population

PRESETS = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
}


@dataclasses.dataclass
class IzhikevichParams(NeuronParams):
    preset: str = "regular_spiking"
    a: Optional[float] = None
    b: Optional[float] = None
    c: Optional[float] = None
    d: Optional[float] = None
    v_peak_mv: float = 30.0
    v_init_mv: float = -65.0

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = [*PRESETS, "custom"]
        check(self.preset in choices, "preset", f"{self.preset!r} is not one of: {', '.join(choices)}")
        if self.preset == "custom":
            for name in "abcd":
                check(getattr(self, name) is not None, name, "required with preset 'custom'")
        else:
            for name, value in zip("abcd", PRESETS[self.preset]):
                if getattr(self, name) is None:
                    setattr(self, name, value)


@NEURONS.register("izhikevich", IzhikevichParams)
class Izhikevich(Population):
    """Izhikevich (2003) two-variable spiking neurons."""

    def __init__(self, params: IzhikevichParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.a, self.b, self.c, self.d = (float(params.a), float(params.b), float(params.c), float(params.d))
        self.v_peak = float(params.v_peak_mv)
        self.v_init = float(params.v_init_mv)
        self.half = 0.5 * self.dt
        self.v = torch.zeros(0)
        self.u = torch.zeros(0)

    def _init_state(self) -> None:
        self.v = self.zeros()
        self.u = self.zeros()

    def _reset(self) -> None:
        self.v.fill_(self.v_init)
        self.u.fill_(self.b * self.v_init)

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        v, u = self.v, self.u
        i = i_exc * self._active() if self.refrac > 0 else i_exc
        for _ in range(2):
            v.add_((0.04 * v * v + 5.0 * v + 140.0 - u + i) * self.half)
        u.add_((self.b * v - u) * (self.a * self.dt))
        torch.ge(v, self.v_peak, out=self.s)
        v.masked_fill_(self.s, self.c)
        u.add_(self.s, alpha=self.d)
        if self.refrac > 0:
            self.refrac_count.sub_(self.dt).clamp_(min=0.0)
            self._start_refractory()
