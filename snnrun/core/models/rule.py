"""Learning rules as data: one definition, from which every backend's update is generated.

A :class:`RuleModel` declares

* ``params`` / ``constants`` as a neuron model does;
* ``traces``: name -> ``{side: pre|post, tau_ms: ..., set: value}`` (or ``add: value``):
  one value per sample and pre- (post-) synaptic neuron, decaying by ``exp(-dt / tau_ms)``
  every step and set to (or incremented by) the value at the neuron's spikes, before the
  weight update of the step;
* ``synapse``: per-synapse variables besides the weight ``w`` (shared by the batch), name ->
  initial value or ``{init: ..., tau_ms: ...}`` (decaying every step);
* ``on_pre``: statements run for every presynaptic spike and each of its synapses;
  ``on_post``: for every postsynaptic spike and each of its synapses; ``on_step``: for every
  synapse every step, after the spike events.

In ``on_pre`` / ``on_post`` a synapse variable (``w`` included) can only be incremented
(``w -= nu_pre * x_post``): the increments of all events and samples are summed (averaged
with ``reduction: mean``) and applied after the events; ``on_pre`` may set its own side's
traces (``on_post`` likewise), sequentially.  Reads of ``w`` see the weight at the start of
the step; the new weights are clamped to ``[wmin, wmax]`` (and masked).  Available symbols:
the rule's traces, synapse variables and parameters, ``w``, ``wmin``, ``wmax``, ``dt``,
``reward`` (the network's reward: a scalar, or one value per sample in ``on_pre``/``on_post``)
and the populations' variables with ``_pre`` / ``_post`` (``x_pre``: the source's spike
trace, ``v_post``: the target's voltage, ...).

Every increment must be a sum of products whose factors each depend on one side only
(presynaptic, postsynaptic, or the synapse): then a rule is the correlation
``outer(pre, post)`` of each connection kind (dense, conv, local, sparse) times
per-synapse factors, and the fused kernel visits only the rows and columns of this step's
spikes.  :func:`compile_rule` checks that and returns the terms.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional

from .fold import FLOAT, Scope, const_value, fold_block, type_of
from .ir import Assign, Bin, Expr, If, ModelError, Num, Sym, Un, map_expr, parse_block, symbols
from .neuron import Param, _in, check_names, resolve_constants

PRE, POST, SYN, REWARD = "pre", "post", "syn", "reward"


@dataclasses.dataclass(frozen=True)
class RuleModel:
    kind: str
    doc: str = ""
    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    traces: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    synapse: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_pre: str = ""
    on_post: str = ""
    on_step: str = ""
    checks: tuple = ()
    presets: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)

    def replace(self, **changes: Any) -> "RuleModel":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class Trace:
    name: str
    side: str
    decay: float            # per step (float64)
    tau_ms: float
    set: Optional[float]    # value at a spike ("set")
    add: Optional[float]    # increment at a spike ("add")


@dataclasses.dataclass
class Term:
    """``target += coeff * [reward] * prod(pre) * prod(post) * prod(syn)`` (each event's
    share, summed over events and samples).  ``coeff`` includes the sign."""

    target: str
    coeff: float
    pre: tuple
    post: tuple
    syn: tuple
    reward: bool
    line: int


@dataclasses.dataclass
class CompiledRule:
    model: RuleModel
    values: dict
    consts: dict
    traces: list              # [Trace]
    synapse: list             # [(name, init, decay or None)]
    on_pre: list              # [Term | Assign] in order
    on_post: list
    on_step: list             # [Term]
    pop_vars: dict            # {"pre": {var, ...}, "post": {...}} population variables read
    uses_reward: bool
    reward_linear: bool       # every use of reward is one factor of a weight increment
    reward_in_step: bool      # on_step reads reward (needs one scalar reward)

    def terms(self) -> list:
        return [op for op in self.on_pre + self.on_post + self.on_step if isinstance(op, Term)]


def compile_rule(model: RuleModel, values: Mapping[str, Any], dt: float, *, wmin: float = -math.inf,
                 wmax: float = math.inf, pre_vars: tuple = (), post_vars: tuple = ()) -> CompiledRule:
    """Resolve ``model`` for parameter ``values``, ``dt`` and its connection (bounds, the
    variables of the source and target populations)."""
    check_names(model, (("params", model.params), ("constants", model.constants), ("traces", model.traces),
                        ("synapse", model.synapse)))
    values, scope, consts = resolve_constants(model, values, dt)
    traces = []
    for name, spec in model.traces.items():
        traces.append(_in("traces", lambda: _trace(name, spec, scope, dt), name))
    synapse = []
    for name, spec in model.synapse.items():
        spec = spec if isinstance(spec, Mapping) else {"init": spec}
        bad = set(spec) - {"init", "tau_ms"}
        if bad:
            raise ModelError(f"synapse variable {name!r}: unknown key {sorted(bad)[0]!r} (init, tau_ms)", symbol="synapse")
        init = float(_in("synapse", lambda: const_value(spec.get("init", 0.0), scope, f"{name}.init"), name))
        tau = spec.get("tau_ms")
        d = None if tau is None else math.exp(-dt / float(_in("synapse", lambda: const_value(tau, scope, f"{name}.tau_ms"), name)))
        synapse.append((name, init, d))
    side = {t.name: t.side for t in traces}
    for bound, value in (("wmin", wmin), ("wmax", wmax)):
        if math.isfinite(value):
            scope.const(bound, value, "weight bound")
        else:
            scope.var(bound, role="weight bound", why=f"the connection has no {bound}")
    why_syn = "synapse variables are incremented (+= / -=) by events; the sum is applied after them"
    scope.var("w", role="weight", write="inc", why=why_syn)
    for name, _, _ in synapse:
        scope.var(name, role="synapse variable", write="inc", why=why_syn)
    scope.var("reward", role="reward", why="set by the task")
    for end, names in ((PRE, pre_vars), (POST, post_vars)):
        for var in names:
            scope.var(f"{var}_{end}", "bool" if var == "s" else FLOAT, role=f"{end}synaptic population variable",
                      why="populations update themselves")
    classes = {name: s for name, s in side.items()}
    classes.update({f"{v}_{PRE}": PRE for v in pre_vars})
    classes.update({f"{v}_{POST}": POST for v in post_vars})
    classes.update({"w": SYN, "wmin": SYN, "wmax": SYN, "reward": REWARD})
    classes.update({name: SYN for name, _, _ in synapse})
    blocks = {}
    for field, own in (("on_pre", PRE), ("on_post", POST), ("on_step", None)):
        for name, s in side.items():
            scope.var(name, role=f"{s}synaptic trace", write="set" if s == own else None,
                      why=f"{field} runs for every synapse of a spike; set {s} traces in on_{s}")
        text = getattr(model, field)
        stmts = _in(field, lambda: fold_block(parse_block(text), scope))
        blocks[field] = _in(field, lambda: _ops(stmts, classes, scope, field, own))
    all_terms = [op for ops in blocks.values() for op in ops if isinstance(op, Term)]
    reads = set()
    for ops in blocks.values():
        for op in ops:
            reads |= _op_symbols(op)
    pop_vars = {end: {v for v in names if f"{v}_{end}" in reads} for end, names in ((PRE, pre_vars), (POST, post_vars))}
    reward_terms = [t for t in all_terms if t.reward]
    uses_reward = "reward" in reads
    return CompiledRule(
        model=model, values=values, consts=consts, traces=traces, synapse=synapse,
        on_pre=blocks["on_pre"], on_post=blocks["on_post"], on_step=blocks["on_step"], pop_vars=pop_vars,
        uses_reward=uses_reward,
        reward_linear=uses_reward and all(t.target == "w" for t in reward_terms)
        and not any(isinstance(op, Assign) and "reward" in symbols(op.value) for ops in blocks.values() for op in ops),
        reward_in_step=any(t.reward for t in blocks["on_step"]))


def _trace(name: str, spec: Any, scope: Scope, dt: float) -> Trace:
    if not isinstance(spec, Mapping):
        raise ModelError(f"trace {name!r}: expected {{side: pre|post, tau_ms: ..., set: ... or add: ...}}")
    bad = set(spec) - {"side", "tau_ms", "set", "add"}
    if bad:
        raise ModelError(f"trace {name!r}: unknown key {sorted(bad)[0]!r} (side, tau_ms, set, add)")
    side = spec.get("side")
    if side not in (PRE, POST):
        raise ModelError(f"trace {name!r}: side must be pre or post, got {side!r}")
    if "set" in spec and "add" in spec:
        raise ModelError(f"trace {name!r}: give set or add, not both")
    tau = float(const_value(spec.get("tau_ms", 20.0), scope, f"{name}.tau_ms"))
    if not tau > 0:
        raise ModelError(f"trace {name!r}: tau_ms must be > 0, got {tau}")
    value = {k: float(const_value(spec[k], scope, f"{name}.{k}")) for k in ("set", "add") if k in spec}
    return Trace(name, side, math.exp(-dt / tau), tau, value.get("set"), value.get("add"))


def _op_symbols(op: Any) -> set[str]:
    if isinstance(op, Term):
        out: set[str] = {"reward"} if op.reward else set()
        for f in op.pre + op.post + op.syn:
            out |= symbols(f)
        return out
    return symbols(op.value) | {op.target}


# ----------------------------------------------------------------------------- decomposition
def _ops(stmts: tuple, classes: dict, scope: Scope, field: str, own: Optional[str]) -> list:
    """Statements -> ordered [Term | Assign]; temporaries are substituted into later uses."""
    temps: dict[str, Expr] = {}
    out: list = []
    for s in stmts:
        if isinstance(s, If):
            raise ModelError(f"'if' is not supported in {field}; use a conditional factor "
                             f"(e.g. `(1.0 if x_post > 0.5 else 0.0)`)", s.line)
        value = map_expr(s.value, lambda e: temps.get(e.name, e) if isinstance(e, Sym) else e)
        target = scope.get(s.target)
        if target is None:  # a temporary
            temps[s.target] = value if s.op == "=" else Bin(s.op[0], temps[s.target], value)
            continue
        if target.role in ("weight", "synapse variable"):
            sign = 1.0 if s.op == "+=" else -1.0
            for coeff, factors in _terms(value, s.line):
                out.append(_term(s.target, sign * coeff, factors, classes, field, s.line))
            continue
        cls = {classes.get(n) for n in symbols(value) if n in classes}
        if cls - {own}:
            raise ModelError(f"{s.target} is a {own}synaptic trace: its new value can only read {own}synaptic "
                             f"values and parameters", s.line, s.target)
        out.append(Assign(s.target, s.op, value, s.line))
    return out


def _terms(e: Expr, line: int) -> list[tuple[float, list]]:
    """``e`` as a sum of (coefficient, [factors])."""
    if isinstance(e, Bin) and e.op in "+-":
        right = _terms(e.b, line)
        if e.op == "-":
            right = [(-c, f) for c, f in right]
        return _terms(e.a, line) + right
    if isinstance(e, Un) and e.op == "-":
        return [(-c, f) for c, f in _terms(e.a, line)]
    coeff, factors = 1.0, []
    for f in _factors(e):
        if isinstance(f, Num):
            coeff *= f.value
        else:
            factors.append(f)
    return [(coeff, factors)]


def _factors(e: Expr) -> list:
    if isinstance(e, Bin) and e.op == "*":
        return _factors(e.a) + _factors(e.b)
    return [e]


def _term(target: str, coeff: float, factors: list, classes: dict, field: str, line: int) -> Term:
    parts: dict[str, list] = {PRE: [], POST: [], SYN: [], REWARD: []}
    for f in factors:
        cls = {classes[n] for n in symbols(f) if n in classes}
        if len(cls) != 1:
            from .ir import unparse

            raise ModelError(f"the factor {unparse(f)} mixes {' and '.join(sorted(cls))} values; write the "
                             f"increment as a sum of products of one-sided factors", line)
        (c,) = cls
        if c == REWARD and not (isinstance(f, Sym) and f.name == "reward"):
            raise ModelError("use `reward` as a factor of its own (reward * ...)", line, "reward")
        parts[c].append(f)
    if len(parts[REWARD]) > 1:
        raise ModelError("reward appears more than once in a product", line, "reward")
    if target != "w" and field == "on_step" and (parts[PRE] or parts[POST]):
        raise ModelError(f"on_step: {target} += ... reads neuron values; increment it in on_pre / on_post", line)
    return Term(target, coeff, tuple(parts[PRE]), tuple(parts[POST]), tuple(parts[SYN]), bool(parts[REWARD]), line)


__all__ = ["RuleModel", "CompiledRule", "Term", "Trace", "compile_rule", "PRE", "POST", "SYN", "type_of"]
