"""Integrate-and-fire neurons: ``if``, ``lif`` (current- or conductance-based), ``current_lif``.

Current-based ``lif`` (``synapse: current``, BindsNET's ``LIFNodes`` update order), per step::

    v <- v_rest + (v - v_rest) exp(-dt / tau_mem_ms)
    v <- v + I                              unless refractory (input blocked)
    s = v >= v_thresh ;  v <- v_reset where s (then refractory for refrac_ms)

With constant input I and no spikes, ``v_t = v_rest + I (1 - a^t) / (1 - a)``, ``a = exp(-dt/tau)``.

Conductance-based (``synapse: conductance``, the Diehl & Cook 2015 paper)::

    g_e <- g_e + I ;  g_i <- g_i + I_inh
    tau_mem dv/dt = (v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v), integrated exactly over
    the step with each conductance replaced by its exact mean over the step,
    gbar = g tau/dt (1 - exp(-dt/tau)) (v held while refractory):
        g = 1 + gbar_e + gbar_i ;  v_inf = (v_rest + gbar_e E_exc + gbar_i E_inh) / g
        v <- v_inf + (v - v_inf) exp(-g dt / tau_mem_ms)
    (with no conductance, g = 1 and v_inf = v_rest: the leak alone, with the factor
    ``exp(-dt / tau_mem_ms)`` computed once, so no exp or division per neuron and step while a
    neuron receives nothing; the factor is the general formula's ``expf(float32(-dt/tau))``
    bit for bit at the presets' values (dt 0.5 ms, tau 100 and 10 ms), and within 1 ulp
    where float32 rounding of the exponent changes its last bit)
    g_e <- g_e exp(-dt/tau_ge_ms) ;  g_i <- g_i exp(-dt/tau_gi_ms)   (flushed to 0 below 1e-30)

  The step is stable for any conductance (forward Euler is not), and an input pulse w
  delivers exactly the charge of the continuous model (integral of g_e = w tau_ge).
  ``integration: held`` holds each conductance at its start-of-step value instead (27 % more
  charge per excitatory pulse at dt 0.5 ms, tau_ge 1 ms); ``integration: euler`` steps every
  variable by forward Euler, as Brian 1 did for the paper (dt 0.5 ms), keeping v within
  [E_inh, E_exc]::

        v <- v + dt/tau_mem [(v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v)]
        g_e <- g_e (1 - dt/tau_ge) ;  g_i <- g_i (1 - dt/tau_gi)

``v_lbound_mv`` (optional) keeps v from going below it (it must not exceed ``v_reset_mv``).

``if``: ``v <- v + I`` (no leak), spike and reset as above (or reset by subtraction,
``reset_mode: subtract``).
``current_lif``: an exponentially decaying synaptic current ``i``:
``i <- i exp(-dt / tau_syn_ms) + I``, then the current-based ``lif`` step driven by ``i``.
"""

from __future__ import annotations

import textwrap

from ..models.neuron import NeuronModel, Param
from .base import register_neuron

LBOUND = """
if v_lbound_mv is not None:
    v = max(v, v_lbound_mv)
"""

LEAK = """
v = (v - v_rest_mv) * decay + v_rest_mv
if active:
    v = v + I
"""

CONDUCTANCE = """
ge = ge + I
gi = gi + I_inh
if active:
    if integration == "euler":
        dv = (v_rest_mv - v) + ge * (e_exc_mv - v) + gi * (e_inh_mv - v)
        v = v + dv * dt_over_tau
        v = min(max(v, e_inh_mv), e_exc_mv)
    else:
        gem = ge * ge_mean
        gim = gi * gi_mean
        if gem == 0.0 and gim == 0.0:
            v = (v - v_rest_mv) * decay + v_rest_mv
        else:
            g = 1.0 + gem + gim
            vinf = (v_rest_mv + gem * e_exc_mv + gim * e_inh_mv) / g
            v = vinf + (v - vinf) * exp(g * neg_dt_over_tau)
ge = ge * ge_decay
if abs(ge) < 1e-30:
    ge = 0.0
gi = gi * gi_decay
if abs(gi) < 1e-30:
    gi = 0.0
"""

IF_PARAMS = {
    "v_rest_mv": Param(-65.0),
    "v_reset_mv": Param(-65.0),
    "v_thresh_mv": Param(-52.0),
    "v_lbound_mv": Param(None),
}
LBOUND_CHECK = ("v_lbound_mv is None or v_lbound_mv <= v_reset_mv", "v_lbound_mv", "must be <= v_reset_mv")

IF_MODEL = NeuronModel(
    kind="if",
    doc="Integrate-and-fire neurons without leak: ``v <- v + I``; spike and refractoriness as ``lif``; "
        "``reset_mode: zero`` sets v to ``v_reset_mv``, ``subtract`` subtracts ``v_thresh_mv - v_reset_mv`` "
        "(keeps the charge above threshold: ``floor(T I / (v_thresh - v_reset))`` spikes in T steps of a "
        "constant input I, as ANN -> SNN conversion wants).",
    params={**IF_PARAMS, "reset_mode": Param("zero", choices=("zero", "subtract"))},
    state={"v": "v_rest_mv"},
    update="""
if active:
    v = v + I
""" + LBOUND,
    threshold="v >= v_thresh_mv",
    reset="""
if reset_mode == "subtract":
    v = v - (v_thresh_mv - v_reset_mv)
else:
    v = v_reset_mv
""",
    checks=(LBOUND_CHECK,),
    defaults={"refrac_ms": 5.0},
)

LIF_MODEL = NeuronModel(
    kind="lif",
    doc="Leaky integrate-and-fire neurons (current- or conductance-based); see the module docstring.",
    params={
        **IF_PARAMS,
        "tau_mem_ms": Param(100.0, check="> 0"),
        "synapse": Param("current", choices=("current", "conductance")),
        "tau_ge_ms": Param(1.0, check="> 0"),
        "tau_gi_ms": Param(2.0, check="> 0"),
        "e_exc_mv": Param(0.0),
        "e_inh_mv": Param(-100.0),
        "integration": Param("exact", choices=("exact", "held", "euler")),
    },
    constants={
        "decay": "exp(-dt / tau_mem_ms)",
        "dt_over_tau": "dt / tau_mem_ms",
        "neg_dt_over_tau": "-(dt / tau_mem_ms)",
        "ge_decay": "1.0 - dt / tau_ge_ms if integration == 'euler' else exp(-dt / tau_ge_ms)",
        "gi_decay": "1.0 - dt / tau_gi_ms if integration == 'euler' else exp(-dt / tau_gi_ms)",
        "ge_mean": "1.0 if integration == 'held' else tau_ge_ms / dt * (1.0 - exp(-dt / tau_ge_ms))",
        "gi_mean": "1.0 if integration == 'held' else tau_gi_ms / dt * (1.0 - exp(-dt / tau_gi_ms))",
    },
    state={"v": "v_rest_mv", "ge": 0.0, "gi": 0.0},
    update='if synapse == "conductance":\n' + textwrap.indent(CONDUCTANCE, "    ") + "else:\n"
           + textwrap.indent(LEAK, "    ") + LBOUND,
    threshold="v >= v_thresh_mv",
    reset="v = v_reset_mv",
    checks=(LBOUND_CHECK,
            ("integration != 'euler' or (dt <= tau_ge_ms and dt <= tau_gi_ms)", "integration",
             "euler needs dt <= tau_ge_ms and tau_gi_ms")),
    defaults={"refrac_ms": 5.0},
)

CURRENT_LIF_MODEL = NeuronModel(
    kind="current_lif",
    doc="LIF with an exponentially decaying synaptic current: ``i <- i exp(-dt / tau_syn_ms) + I``, "
        "``v <- v_rest + (v - v_rest) exp(-dt / tau_mem_ms) + i`` (i blocked while refractory).",
    params={**IF_PARAMS, "tau_mem_ms": Param(100.0, check="> 0"), "tau_syn_ms": Param(2.0, check="> 0")},
    constants={"decay": "exp(-dt / tau_mem_ms)", "syn_decay": "exp(-dt / tau_syn_ms)"},
    state={"v": "v_rest_mv", "i": 0.0},
    update="""
i = i * syn_decay + I
v = (v - v_rest_mv) * decay + v_rest_mv
if active:
    v = v + i
""" + LBOUND,
    threshold="v >= v_thresh_mv",
    reset="v = v_reset_mv",
    checks=(LBOUND_CHECK,),
    defaults={"refrac_ms": 5.0},
)

IF = register_neuron(IF_MODEL, "IF")
LIF = register_neuron(LIF_MODEL, "LIF")
CurrentLIF = register_neuron(CURRENT_LIF_MODEL, "CurrentLIF")
IFParams, LIFParams, CurrentLIFParams = IF.Params, LIF.Params, CurrentLIF.Params
