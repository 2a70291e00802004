"""Stateless populations: ``input`` (spikes given from outside) and ``mcculloch_pitts``."""

from __future__ import annotations

from ..models.neuron import NeuronModel, Param
from .base import register_neuron

INPUT_MODEL = NeuronModel(
    kind="input",
    doc="Input population: its spikes at step t are the encoded input ``x[t]`` (non-zero = spike).",
    threshold="I != 0",
    input=True,
)

MCCULLOCH_PITTS_MODEL = NeuronModel(
    kind="mcculloch_pitts",
    doc="McCulloch-Pitts threshold units: ``v = I``; ``s = v >= v_thresh`` (no memory).",
    params={"v_thresh_mv": Param(1.0)},
    state={"v": 0.0},
    update="v = I",
    threshold="v >= v_thresh_mv",
)

Input = register_neuron(INPUT_MODEL)
McCullochPitts = register_neuron(MCCULLOCH_PITTS_MODEL)
InputParams, McCullochPittsParams = Input.Params, McCullochPitts.Params
