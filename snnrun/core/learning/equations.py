"""``kind: equations``: a learning rule written in the config.

::

    learning:
      kind: equations
      params: {nu_pre: 1.0e-4, nu_post: 1.0e-2, tau_ms: 20.0}
      traces:
        pre: {side: pre, tau_ms: tau_ms, set: 1.0}     # or add: value
        post: {side: post, tau_ms: tau_ms, set: 1.0}
      on_pre: w -= nu_pre * post          # at every presynaptic spike, for each of its synapses
      on_post: w += nu_post * pre         # at every postsynaptic spike
      on_step: ""                         # every synapse, every step (e.g. w += nu * reward * e * dt)

Optional: ``constants``, ``synapse`` (per-synapse variables besides ``w``: name: initial
value or ``{init: ..., tau_ms: ...}``); the common options ``reduction``, ``weight_decay``,
``pre_timing``, ``reward_mode``.  Symbols and rules: :mod:`snnrun.core.models.rule`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..models.neuron import Param
from ..models.rule import RuleModel
from ..registry import ParamError
from ..neurons.base import check_param_table
from .base import RULES, LearningRule, RuleParams

CODE_FIELDS = ("params", "constants", "traces", "synapse", "on_pre", "on_post", "on_step")


@dataclasses.dataclass(kw_only=True)
class RuleEquationsParams(RuleParams):
    params: dict = dataclasses.field(default_factory=dict)
    constants: dict = dataclasses.field(default_factory=dict)
    traces: dict = dataclasses.field(default_factory=dict)
    synapse: dict = dataclasses.field(default_factory=dict)
    on_pre: str = ""
    on_post: str = ""
    on_step: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_param_table(self.params)
        if not (self.on_pre or self.on_post or self.on_step):
            raise ParamError("on_pre", "give on_pre, on_post or on_step statements")


@RULES.register("equations", RuleEquationsParams)
class RuleEquations(LearningRule):
    """A learning rule given in the config (see the module docstring)."""

    def __init__(self, params: RuleEquationsParams, dt: float = 1.0):
        model = RuleModel(kind="equations", doc="a rule written in the config",
                          params={k: Param(float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                                  for k, v in params.params.items()},
                          constants=dict(params.constants), traces=dict(params.traces), synapse=dict(params.synapse),
                          on_pre=params.on_pre, on_post=params.on_post, on_step=params.on_step)
        super().__init__(params, dt, model)
        values: dict[str, Any] = {k: v for k, v in self.values.items() if k not in CODE_FIELDS}
        values.update({k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                       for k, v in params.params.items()})
        self.values = values
