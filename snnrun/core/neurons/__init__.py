"""Neuron population kinds; importing this package registers them all in ``NEURONS``.

Each kind is a :class:`~snnrun.core.models.neuron.NeuronModel` (its equations as data)
registered with :func:`register_neuron`; ``kind: equations`` takes a model from the config."""

from . import adaptive, equations, izhikevich, lif, simple  # noqa: F401  (registration)
from .adaptive import AdaptiveLIF, AdaptiveLIFParams, DiehlCook, DiehlCookParams
from .base import NEURONS, NeuronParams, Population, register_neuron
from .izhikevich import Izhikevich, IzhikevichParams
from .lif import IF, LIF, CurrentLIF, CurrentLIFParams, IFParams, LIFParams
from .simple import Input, InputParams, McCullochPitts, McCullochPittsParams

__all__ = [
    "NEURONS", "NeuronParams", "Population", "register_neuron", "Input", "InputParams", "IF", "IFParams", "LIF",
    "LIFParams", "CurrentLIF", "CurrentLIFParams", "AdaptiveLIF", "AdaptiveLIFParams",
    "DiehlCook", "DiehlCookParams", "Izhikevich", "IzhikevichParams", "McCullochPitts",
    "McCullochPittsParams",
]
