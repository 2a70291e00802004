"""Pair-based STDP rules (BindsNET's update order: after all populations have stepped,
using the current step's spikes and traces, which include the current spike).

``post_pre`` (on the populations' spike traces ``x``)::

    at a pre spike:   w -= nu_pre * x_post      (depression)
    at a post spike:  w += nu_post * x_pre      (potentiation)

``weight_dependent_post_pre`` (soft bounds; needs finite wmin and wmax)::

    at a pre spike:   w -= nu_pre * x_post * (w - wmin)
    at a post spike:  w += nu_post * x_pre * (wmax - w)

``hebbian`` (both orders potentiate)::

    at a pre spike:   w += nu_pre * x_post
    at a post spike:  w += nu_post * x_pre

``triplet_post_pre`` (the Diehl & Cook 2015 paper's rule; the rule keeps its own traces,
pre: tau_pre_ms, post1: tau_post1_ms, post2: tau_post2_ms, all set to 1 at a spike)::

    at a pre spike:   w -= nu_pre * post1
    at a post spike:  w += nu_post * pre * post2, then post1 = post2 = 1
                      (post2 read before this spike sets it)

With per-synapse delays, ``pre_timing: arrival`` runs the presynaptic part where Brian runs
a synapse's ``on_pre`` code: when the spike *arrives* at the synapse, ``delay`` steps after
it was emitted; each synapse then keeps its own ``pre`` trace, so a post spike potentiates
exactly the inputs that reached it.
"""

from __future__ import annotations

from ..models.neuron import Param
from ..models.rule import RuleModel
from .base import register_rule

NU = {"nu_pre": Param(1e-4), "nu_post": Param(1e-2)}

POST_PRE_MODEL = RuleModel(
    kind="post_pre",
    doc="Pair STDP: potentiation at post spikes, depression at pre spikes (see the module docstring).",
    params=NU,
    on_pre="w -= nu_pre * x_post",
    on_post="w += nu_post * x_pre",
)

WEIGHT_DEPENDENT_MODEL = RuleModel(
    kind="weight_dependent_post_pre",
    doc="Pair STDP with soft bounds: updates scale with the distance to wmin / wmax.",
    params=NU,
    on_pre="w -= nu_pre * x_post * (w - wmin)",
    on_post="w += nu_post * x_pre * (wmax - w)",
)

HEBBIAN_MODEL = RuleModel(
    kind="hebbian",
    doc="Hebbian STDP: both pre-then-post and post-then-pre pairings potentiate.",
    params=NU,
    on_pre="w += nu_pre * x_post",
    on_post="w += nu_post * x_pre",
)

TRIPLET_MODEL = RuleModel(
    kind="triplet_post_pre",
    doc="Diehl & Cook (2015) triplet-style STDP with rule-owned pre / post1 / post2 traces.",
    params={**NU, "tau_pre_ms": Param(20.0, check="> 0"), "tau_post1_ms": Param(20.0, check="> 0"),
            "tau_post2_ms": Param(40.0, check="> 0")},
    traces={
        "pre": {"side": "pre", "tau_ms": "tau_pre_ms", "set": 1.0},
        "post1": {"side": "post", "tau_ms": "tau_post1_ms"},
        "post2": {"side": "post", "tau_ms": "tau_post2_ms"},
    },
    on_pre="w -= nu_pre * post1",
    on_post="""
w += nu_post * pre * post2
post1 = 1.0
post2 = 1.0
""",
)

PostPre = register_rule(POST_PRE_MODEL)
WeightDependentPostPre = register_rule(WEIGHT_DEPENDENT_MODEL)
Hebbian = register_rule(HEBBIAN_MODEL)
TripletPostPre = register_rule(TRIPLET_MODEL)
PostPreParams, TripletParams = PostPre.Params, TripletPostPre.Params
