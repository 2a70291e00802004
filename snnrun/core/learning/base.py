"""Learning-rule base.

A rule is written once for every connection kind: it combines pre- and post-synaptic
spikes ``s`` and traces ``x`` through ``connection.outer(pre, post)`` (the batch-summed
correlation in the connection's weight layout), then hands ``dw`` to
``connection.apply_update`` (which re-applies the mask and the ``[wmin, wmax]`` clamp).

Batch reduction: ``reduction="sum"`` adds the per-sample updates (BindsNET's choice);
``"mean"`` divides by the batch size, so the learning rate does not depend on it.
Learning rates ``nu_pre`` / ``nu_post`` are amounts per spike event (per pre-synaptic /
post-synaptic spike).  ``weight_decay`` subtracts ``weight_decay * w`` every step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..registry import Registry, check

RULES: Registry["LearningRule"] = Registry("learning rule")


@dataclasses.dataclass
class RuleParams:
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    weight_decay: float = 0.0
    reduction: str = "sum"

    def __post_init__(self) -> None:
        check(self.reduction in ("sum", "mean"), "reduction", f"{self.reduction!r} is not one of: sum, mean")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")


class LearningRule:
    """Base class: binds to a connection, keeps any rule state, updates weights per step."""

    kind: ClassVar[str] = "?"
    needs_traces: ClassVar[bool] = True

    def __init__(self, params: RuleParams, dt: float = 1.0):
        self.params = params
        self.dt = float(dt)
        self.nu_pre = float(params.nu_pre)
        self.nu_post = float(params.nu_post)
        self.weight_decay = float(params.weight_decay)
        self.conn: Any = None
        self.batch = 1

    def bind(self, conn: Any) -> None:
        """Attach to ``conn``; switches on the spike traces the rule reads."""
        self.conn = conn
        if self.needs_traces:
            for pop in (conn.source, conn.target):
                if not pop.traces:
                    pop.traces = True
                    if pop.batch:
                        pop.allocate(pop.batch)

    def allocate(self, batch: int) -> None:
        self.batch = int(batch)

    def reset(self) -> None:
        """Reset fast rule state (e.g. eligibility traces) before a sample/episode."""

    def to(self, device: torch.device) -> None:
        pass

    @property
    def scale(self) -> float:
        return 1.0 / self.batch if self.params.reduction == "mean" else 1.0

    def update(self, reward: torch.Tensor) -> None:
        raise NotImplementedError

    def _finish(self, dw: torch.Tensor) -> None:
        if self.weight_decay:
            dw = dw - self.weight_decay * self.conn.w
        self.conn.apply_update(dw)


@dataclasses.dataclass
class NoRuleParams:
    pass


@RULES.register("none", NoRuleParams)
class NoRule(LearningRule):
    """No plasticity."""

    needs_traces = False

    def __init__(self, params: NoRuleParams, dt: float = 1.0):
        self.params = params
        self.dt = dt
        self.conn = None
        self.batch = 1

    def update(self, reward: torch.Tensor) -> None:
        pass
