"""Learning rules: a rule model (:mod:`snnrun.core.models.rule`) bound to a connection.

A rule is written once for every connection kind: its increments are sums of
``outer(pre, post)`` (the batch-summed correlation in the connection's weight layout) times
per-synapse factors, handed to ``connection.apply_update`` (which re-applies the mask and
the ``[wmin, wmax]`` clamp).  A learning rule kind is a registration of a model
(:func:`register_rule`), not a class with its own code.

Options common to every rule (:class:`RuleParams`):

* ``reduction``: ``sum`` adds the per-sample updates (BindsNET's choice); ``mean`` divides
  by the batch size, so the learning rate does not depend on it;
* ``weight_decay``: ``w <- w - weight_decay * w`` every step;
* ``pre_timing``: ``emission`` (presynaptic events when the neuron fires) or ``arrival``
  (when its spike reaches each synapse: dense connections with per-synapse delays;
  presynaptic traces then belong to synapses, see :mod:`.torch_update`);
* ``reward_mode`` (rules that read ``reward``): ``step`` applies each step's update;
  ``episode`` accumulates the updates computed with reward 1 (the eligibility) and applies
  ``R x eligibility`` when :meth:`LearningRule.apply_reward` gives the episode's reward.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Optional

import torch

from ..models.ir import ModelError, Sym, parse_block
from ..models.neuron import field_of
from ..models.rule import PRE, RuleModel, Term, compile_rule
from ..neurons.base import model_params_class, param_values
from ..registry import ParamError, Registry, check
from .torch_update import make_torch_update

RULES: Registry["LearningRule"] = Registry("learning rule")
NEVER = -(1 << 62)  # "last arrival" of a synapse that has seen none


@dataclasses.dataclass
class RuleParams:
    reduction: str = "sum"
    weight_decay: float = 0.0
    pre_timing: str = "emission"
    reward_mode: str = "step"

    def __post_init__(self) -> None:
        check(self.reduction in ("sum", "mean"), "reduction", f"{self.reduction!r} is not one of: sum, mean")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(self.pre_timing in ("emission", "arrival"), "pre_timing",
              f"{self.pre_timing!r} is not one of: emission, arrival")
        check(self.reward_mode in ("step", "episode"), "reward_mode", f"{self.reward_mode!r} is not one of: step, episode")


COMMON = tuple(f.name for f in dataclasses.fields(RuleParams))


def code_symbols(model: RuleModel) -> set[str]:
    """Every name the rule's code mentions (before it is resolved)."""
    from ..models.ir import block_reads, block_writes

    out: set[str] = set()
    for text in (model.on_pre, model.on_post, model.on_step):
        try:
            stmts = parse_block(text)
        except ModelError:
            continue  # reported with its line by compile_rule
        out |= block_reads(stmts) | block_writes(stmts)
    return out


class LearningRule:
    """A rule model bound to a connection; keeps the rule's traces and synapse variables."""

    kind: ClassVar[str] = "?"
    model: ClassVar[Optional[RuleModel]] = None

    def __init__(self, params: Any, dt: float = 1.0, model: Optional[RuleModel] = None):
        self.params = params
        self.dt = float(dt)
        self.model = model or type(self).model
        self.values = param_values(params)
        self.weight_decay = float(params.weight_decay)
        self.arrival = params.pre_timing == "arrival"
        self._episode = params.reward_mode == "episode"
        self.conn: Any = None
        self.compiled: Any = None
        self.batch = 1
        self.clock = torch.zeros((), dtype=torch.int64)  # learning steps taken (arrival timing)
        self.torch_source = ""

    # ----------------------------------------------------------------- binding
    def bind(self, conn: Any) -> None:
        """Attach to ``conn``: switch on the population traces the code reads (``x_pre``,
        ``x_post``), resolve the model against the connection.  Errors name the field
        under ``learning`` (``learning.on_pre: line 1: unknown symbol 'x'``)."""
        try:
            self._bind(conn)
        except ParamError as exc:
            field = exc.field if exc.field.startswith("learning") else f"learning.{exc.field}"
            raise ParamError(field, exc.message) from None

    def _bind(self, conn: Any) -> None:
        self.conn = conn
        used = code_symbols(self.model)
        for end, pop in ((PRE, conn.source), ("post", conn.target)):
            if f"x_{end}" in used and not pop.traces:
                pop.traces = True
                if pop.batch:
                    pop.allocate(pop.batch)
        for bound, value in (("wmin", conn.wmin), ("wmax", conn.wmax)):
            if bound in used and not math.isfinite(value):
                raise ParamError("learning", f"{self.kind} reads {bound}: give the connection a finite {bound}")
        if self.arrival and (getattr(conn, "delays", None) is None or conn.kind != "dense"):
            raise ParamError("pre_timing", "arrival timing needs a dense connection with per-synapse "
                             "delays (delay_ms: {max_ms: D})")
        try:
            self.compiled = compile_rule(self.model, self.values, self.dt, wmin=conn.wmin, wmax=conn.wmax,
                                         pre_vars=tuple(conn.source.state_vars()),
                                         post_vars=tuple(conn.target.state_vars()))
        except ModelError as exc:
            raise ParamError(field_of(exc), exc.args[0]) from None
        c = self.compiled
        if self.weight_decay:
            c.on_step = c.on_step + [Term("w", -self.weight_decay, (), (), (Sym("w"),), False, 0)]
        if self._episode and not c.reward_linear:
            raise ParamError("reward_mode", f"episode mode needs a rule whose weight increments each read "
                             f"`reward` once; {self.kind} {'does not read it' if not c.uses_reward else 'does not'}")
        if self.arrival:
            for t in c.traces:
                if t.side == PRE and t.set is None:
                    raise ParamError("pre_timing", f"arrival timing keeps presynaptic traces per synapse as the "
                                     f"step of the last arrival: trace {t.name!r} needs `set:`")
            if any(not isinstance(op, Term) for op in c.on_pre):
                raise ParamError("pre_timing", "arrival timing: on_pre cannot assign traces")
        for name in [t.name for t in c.traces] + [n for n, _, _ in c.synapse]:
            if name in vars(self) or hasattr(LearningRule, name):
                raise ParamError("learning", f"{name!r} is reserved by the rule object; rename the variable")

    @property
    def episode(self) -> bool:
        return self._episode

    @episode.setter
    def episode(self, on: bool) -> None:
        if on and not (self.compiled is None or self.compiled.reward_linear):
            raise ValueError(f"{self.kind}: episode mode needs weight increments that each read `reward` once")
        self._episode = bool(on)

    # ----------------------------------------------------------------- state
    @property
    def scale(self) -> float:
        return 1.0 / self.batch if self.params.reduction == "mean" else 1.0

    def allocate(self, batch: int) -> None:
        self.batch = int(batch)
        c, conn = self.compiled, self.conn
        dev = conn.w.device
        for t in c.traces:
            if not (self.arrival and t.side == PRE):
                pop = conn.source if t.side == PRE else conn.target
                setattr(self, t.name, torch.zeros((batch, *pop.shape), device=dev))
        for name, _, _ in c.synapse:
            setattr(self, name, torch.zeros_like(conn.w))
        self.elig = torch.zeros_like(conn.w) if c.reward_linear else torch.zeros(0, device=dev)
        if self.arrival:
            pre = [t for t in c.traces if t.side == PRE]
            k_max = max(int(math.ceil(40.0 * t.tau_ms / self.dt)) for t in pre) if pre else 0
            ks = torch.arange(k_max + 1, dtype=torch.float64)
            tables = [(t.set * t.decay ** ks).float() for t in pre]
            for tab in tables:
                tab[-1] = 0.0  # 0 from 40 time constants on
            self.tables = torch.stack(tables).to(dev) if tables else torch.zeros(0, k_max + 1, device=dev)
            self.last = torch.full((batch, conn.source.n, conn.target.n), NEVER, dtype=torch.int64, device=dev)
            self._rows = torch.arange(conn.source.n, device=dev)[:, None].expand(conn.source.n, conn.target.n)
            self._now = (conn.delays == 0)[None]
        self.clock = self.clock.to(dev)
        self._update, self.torch_source = make_torch_update(c, self.scale, self.arrival)
        self.reset()

    def reset(self) -> None:
        """Reset fast rule state (traces, synapse variables, eligibility) before a sample/episode."""
        c = self.compiled
        if c is None or not hasattr(self, "elig"):  # not allocated yet
            return
        for t in c.traces:
            if not (self.arrival and t.side == PRE):
                getattr(self, t.name).zero_()
        for name, init, _ in c.synapse:
            getattr(self, name).fill_(init)
        self.elig.zero_()
        if self.arrival:
            self.last.fill_(NEVER)

    def to(self, device: torch.device) -> None:
        self.clock = self.clock.to(device)
        if self.conn is not None and self.compiled is not None and hasattr(self, "elig"):
            self.allocate(self.batch)

    # ----------------------------------------------------------------- dynamics
    def update(self, reward: torch.Tensor) -> None:
        if self._episode:
            reward = self._one(reward)
        elif self.compiled.reward_in_step and reward.dim() != 0:
            raise ValueError(f"{self.kind} takes one scalar reward per step (got one per sample)")
        self._update(self, self.conn, reward)

    def _one(self, reward: torch.Tensor) -> torch.Tensor:
        return torch.ones((), dtype=reward.dtype, device=reward.device)

    def apply_w(self, dw: torch.Tensor) -> None:
        """Apply a weight increment, or keep it as eligibility (episode mode)."""
        if self._episode:
            self.elig.add_(dw)
        else:
            self.conn.apply_update(dw)

    def arrivals(self) -> torch.Tensor:
        """``[B, n_pre, n_post]``: which synapses a pre-synaptic spike reaches this step
        (emitted ``delay`` steps ago; the delay line holds the spikes of earlier steps)."""
        c = self.conn
        L = c.max_delay + 1
        ring = c.ring.reshape(L, c.ring.shape[1], -1)
        late = ring[(c.pos - c.delays) % L, :, self._rows].permute(2, 0, 1)
        now = c.source.s.reshape(c.source.s.shape[0], -1, 1)
        return torch.where(self._now, now, late != 0)

    # ----------------------------------------------------------------- episode mode
    def apply_reward(self, reward: float) -> None:
        """Episode mode: apply ``reward x`` the eligibility accumulated so far, and clear it."""
        self.conn.apply_update(self.elig * float(reward))
        self.elig.zero_()

    def take_eligibility(self, out: torch.Tensor) -> None:
        """Episode mode: move the eligibility accumulated so far into ``out`` and clear it."""
        out.copy_(self.elig)
        self.elig.zero_()

    def apply_eligibility(self, e: torch.Tensor, factor: float) -> None:
        """``w += factor * e`` through the connection's mask and weight bounds."""
        self.conn.apply_update(e * float(factor))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind})"


# ----------------------------------------------------------------------------- registration
def rule_params_class(model: RuleModel, base: type = RuleParams) -> type:
    return model_params_class(model, [], COMMON, base)


def register_rule(model: RuleModel, name: Optional[str] = None) -> type:
    """Register ``model`` as a learning rule kind; returns its class (``.Params``: its
    parameter dataclass)."""
    params = rule_params_class(model)
    cls = type(name or "".join(part.title() for part in model.kind.split("_")), (LearningRule,),
               {"model": model, "Params": params, "__doc__": model.doc})
    RULES.register(model.kind, params)(cls)
    return cls


@dataclasses.dataclass
class NoRuleParams:
    pass


@RULES.register("none", NoRuleParams)
class NoRule:
    """No plasticity (the connection is built without a rule)."""

    def __init__(self, params: NoRuleParams, dt: float = 1.0):
        self.params = params
