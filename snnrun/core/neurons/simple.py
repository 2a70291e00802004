"""Stateless populations: ``input`` (spikes given from outside) and ``mcculloch_pitts``."""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from .base import NEURONS, NeuronParams, Population


@dataclasses.dataclass
class InputParams(NeuronParams):
    pass


@NEURONS.register("input", InputParams)
class Input(Population):
    """Input population: its spikes at step t are the encoded input ``x[t]`` (non-zero = spike)."""

    is_input = True

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self.s.copy_(i_exc)


@dataclasses.dataclass
class McCullochPittsParams(NeuronParams):
    v_thresh_mv: float = 1.0


@NEURONS.register("mcculloch_pitts", McCullochPittsParams)
class McCullochPitts(Population):
    """McCulloch-Pitts threshold units: ``v = I``; ``s = v >= v_thresh`` (no memory)."""

    def __init__(self, params: McCullochPittsParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.v_thresh = float(params.v_thresh_mv)
        self.v = torch.zeros(0)

    def _init_state(self) -> None:
        self.v = self.zeros()

    def _reset(self) -> None:
        self.v.zero_()

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self.v.copy_(i_exc)
        torch.ge(self.v, self.v_thresh, out=self.s)
