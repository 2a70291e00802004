"""Reward-modulated STDP (Florian 2007), as in BindsNET's ``MSTDP`` and ``MSTDPET``.

Rule-owned traces (reset per episode/sample)::

    p_plus  <- p_plus  exp(-dt / tau_plus_ms)  + a_plus  s_pre
    p_minus <- p_minus exp(-dt / tau_minus_ms) + a_minus s_post          (a_minus < 0)
    zeta     = outer(p_plus, s_post) + outer(s_pre, p_minus)             (STDP eligibility)

``mstdp``:   ``dw = nu r zeta``
``mstdpet``: ``e <- e exp(-dt / tau_e_ms) + zeta / tau_e_ms``;  ``dw = nu r e dt``

``r`` is the network's reward: a scalar, or one value per sample ``[B]`` (``mstdp`` only).
With ``reward_mode: episode`` nothing is applied during the episode: the rule accumulates
the updates for ``r = 1`` and applies ``R x`` them when the episode's reward ``R`` is known.
"""

from __future__ import annotations

from ..models.neuron import Param
from ..models.rule import RuleModel
from .base import register_rule

PARAMS = {"nu": Param(1e-2), "a_plus": Param(1.0), "a_minus": Param(-1.0),
          "tau_plus_ms": Param(20.0, check="> 0"), "tau_minus_ms": Param(20.0, check="> 0")}
TRACES = {"p_plus": {"side": "pre", "tau_ms": "tau_plus_ms", "add": "a_plus"},
          "p_minus": {"side": "post", "tau_ms": "tau_minus_ms", "add": "a_minus"}}

MSTDP_MODEL = RuleModel(
    kind="mstdp",
    doc="Reward-modulated STDP: ``dw = nu * reward * zeta`` every step (see the module docstring).",
    params=PARAMS,
    traces=TRACES,
    on_pre="w += nu * reward * p_minus",
    on_post="w += nu * reward * p_plus",
)

MSTDPET_MODEL = RuleModel(
    kind="mstdpet",
    doc="Reward-modulated STDP with an eligibility trace ``e`` (time constant ``tau_e_ms``).",
    params={**PARAMS, "tau_e_ms": Param(25.0, check="> 0")},
    traces=TRACES,
    synapse={"e": {"init": 0.0, "tau_ms": "tau_e_ms"}},
    on_pre="e += p_minus / tau_e_ms",
    on_post="e += p_plus / tau_e_ms",
    on_step="w += nu * reward * e * dt",
)

MSTDP = register_rule(MSTDP_MODEL, "MSTDP")
MSTDPET = register_rule(MSTDPET_MODEL, "MSTDPET")
MSTDPParams, MSTDPETParams = MSTDP.Params, MSTDPET.Params
