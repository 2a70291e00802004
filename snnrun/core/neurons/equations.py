"""``kind: equations``: a neuron model written in the config.

::

    populations:
      E:
        kind: equations
        n: 100
        params: {tau_ms: 20.0, v_th: 1.0}     # name: value (numbers, true/false, strings)
        state: {v: 0.0}                       # fast state: name: initial value
        update: |
          v = v + dt / tau_ms * (-v) + I
        threshold: v >= v_th
        reset: v = 0.0
        refrac_ms: 2.0                        # then `active` is false while refractory

Optional: ``constants`` (name: expression of params and ``dt``), ``slow`` (slow state, kept
across samples, changed only while learning) with ``slow_update``.  The symbols and
statements are those of :mod:`snnrun.core.models.neuron`; the model runs on every backend
exactly as a built-in kind does (built-ins are written the same way).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..models.ir import ModelError
from ..models.neuron import NeuronModel, Param
from .base import NEURONS, NeuronParams, Population, check_param_table, param_values

CODE_FIELDS = ("params", "constants", "state", "slow", "update", "threshold", "reset", "slow_update")


@dataclasses.dataclass(kw_only=True)
class EquationsParams(NeuronParams):
    threshold: str
    params: dict = dataclasses.field(default_factory=dict)
    constants: dict = dataclasses.field(default_factory=dict)
    state: dict = dataclasses.field(default_factory=dict)
    slow: dict = dataclasses.field(default_factory=dict)
    update: str = ""
    reset: str = ""
    slow_update: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_param_table(self.params)


def model_of(p: EquationsParams) -> NeuronModel:
    return NeuronModel(kind="equations", doc="a model written in the config",
                       params={k: Param(float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                               for k, v in p.params.items()},
                       constants=dict(p.constants), state=dict(p.state), slow=dict(p.slow), update=p.update,
                       threshold=p.threshold, reset=p.reset, slow_update=p.slow_update)


@NEURONS.register("equations", EquationsParams)
class Equations(Population):
    """A population of a model given in the config (see the module docstring)."""

    def _model_from(self, params: Any) -> NeuronModel:
        return model_of(params)

    def _values(self, params: Any) -> dict[str, Any]:
        values = {k: v for k, v in param_values(params).items() if k not in CODE_FIELDS}
        values.update({k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                       for k, v in params.params.items()})
        return values


__all__ = ["Equations", "EquationsParams", "ModelError"]
