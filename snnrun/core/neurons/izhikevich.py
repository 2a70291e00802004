"""Izhikevich (2003) neurons::

    v' = 0.04 v^2 + 5 v + 140 - u + I        (mV, ms)
    u' = a (b v - u)
    if v >= v_peak_mv (30 mV): v <- c, u <- u + d

Integrated as in Izhikevich's reference code: ``v`` in two half steps of ``dt / 2``, then
``u`` with the new ``v`` (the input is blocked while refractory, if ``refrac_ms`` is set).
``preset`` fills (a, b, c, d) for the classic firing classes: ``regular_spiking``
(0.02, 0.2, -65, 8), ``fast_spiking`` (0.1, 0.2, -65, 2), ``chattering`` (0.02, 0.2, -50, 2),
``intrinsically_bursting`` (0.02, 0.2, -55, 4), ``low_threshold_spiking`` (0.02, 0.25, -65, 2);
``custom`` takes ``a, b, c, d`` as given.
"""

from __future__ import annotations

from ..models.neuron import NeuronModel, Param
from .base import register_neuron

PRESETS = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
}

HALF_STEP = "v = v + (0.04 * v * v + 5.0 * v + 140.0 - u + i) * half\n"

IZHIKEVICH_MODEL = NeuronModel(
    kind="izhikevich",
    doc="Izhikevich (2003) two-variable spiking neurons; see the module docstring.",
    params={"preset": Param("regular_spiking", choices=(*PRESETS, "custom")),
            "a": Param(None), "b": Param(None), "c": Param(None), "d": Param(None),
            "v_peak_mv": Param(30.0), "v_init_mv": Param(-65.0)},
    presets={name: dict(zip("abcd", values)) for name, values in PRESETS.items()},
    constants={"half": "0.5 * dt", "adt": "a * dt"},
    state={"v": "v_init_mv", "u": "b * v_init_mv"},
    update="i = I if active else 0.0\n" + HALF_STEP + HALF_STEP + "u = u + (b * v - u) * adt\n",
    threshold="v >= v_peak_mv",
    reset="v = c\nu = u + d",
)

Izhikevich = register_neuron(IZHIKEVICH_MODEL)
IzhikevichParams = Izhikevich.Params
