"""Neuron models as data: one definition, from which every backend's step is generated.

A :class:`NeuronModel` declares

* ``params``: name -> :class:`Param` (default, allowed choices, a check);
* ``constants``: name -> expression of parameters and ``dt`` (``exp(-dt / tau_mem_ms)``),
  computed once in float64 when the population is built;
* ``state``: fast state, name -> initial value (reset before every sample); ``slow``: slow
  state, one value per neuron shared by the batch, kept across samples, saved in the
  ``state_dict``, changed only while learning;
* ``update``: statements run for every neuron every step, before the threshold; they read
  ``I`` (the summed synaptic and external input of the step), ``I_inh`` (the inhibitory
  receptor's, for conductance models), ``dt`` (ms) and ``active`` (false while refractory);
* ``threshold``: the spike condition; ``reset``: statements run where it holds;
* ``slow_update``: statements run once per neuron per step, while learning, before
  ``update`` (e.g. the decay of an adaptive threshold).  In ``update`` / ``reset`` slow
  variables can only be incremented (``theta += theta_plus_mv``): the increments of the
  samples of a batch are summed and applied after the step.

Common to every kind (the ``NeuronParams`` of :mod:`snnrun.core.neurons.base`): ``n`` /
``shape``, ``refrac_ms`` (a spike starts a counter; ``active`` is false until
``ceil(refrac_ms / dt)`` steps have passed), spike traces and ``one_spike``.  A model that
never reads ``active`` rejects ``refrac_ms > 0`` rather than ignore it.

:func:`compile_neuron` resolves a model for parameter values and ``dt``: constants are
evaluated, code on parameters is decided (``if synapse == "conductance":``), and the
result (:class:`CompiledNeuron`) is what the torch step and the fused kernel are printed from.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional

from .fold import BOOL, FLOAT, Scope, const_value, fold_block, fold_expr, runtime_symbols, type_of
from .ir import ModelError, parse_block, parse_expr, symbols

INPUTS = ("I", "I_inh")


@dataclasses.dataclass(frozen=True)
class Param:
    """A model parameter: ``default`` (a number, bool, string or None), ``choices`` (for
    strings), ``check`` (a condition on the value written after its name, e.g. ``"> 0"``)."""

    default: Any
    choices: Optional[tuple] = None
    check: Optional[str] = None
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class NeuronModel:
    kind: str
    doc: str = ""
    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    state: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    slow: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    update: str = ""
    threshold: str = "False"
    reset: str = ""
    slow_update: str = ""
    #: cross-parameter checks: (condition, parameter to blame, message)
    checks: tuple = ()
    #: defaults of the common parameters (refrac_ms, one_spike, ...) for this kind
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: preset name -> parameter values, chosen by the parameter ``preset``
    presets: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    #: spikes are the external input (``s = I != 0``); no update
    input: bool = False

    def replace(self, **changes: Any) -> "NeuronModel":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class CompiledNeuron:
    """A model resolved for parameter values and ``dt``: folded code and the variables it uses."""

    model: NeuronModel
    values: dict                 # parameter values (presets applied)
    consts: dict                 # derived constants (float64)
    fast: list                   # [(name, initial value)] of fast state the code uses
    slow: list                   # [(name, initial value)] of slow state the code uses
    update: tuple
    threshold: Any               # folded expression
    reset: tuple
    slow_update: tuple
    temps: dict                  # temporaries of update/threshold/reset -> type
    slow_incremented: list       # slow variables incremented per sample
    refrac: float                # ms, rounded up to whole steps (0: none)
    refrac_tol: float
    uses_inh: bool
    dt: float

    @property
    def input(self) -> bool:
        return self.model.input


def refractory_ms(refrac_ms: float, dt: float) -> float:
    """Refractory period rounded up to whole steps of ``dt`` (0 for no refractoriness);
    a ratio within 1e-6 of an integer counts as that integer."""
    if refrac_ms <= 0:
        return 0.0
    return math.ceil(refrac_ms / dt - 1e-6) * dt


def param_scope(values: Mapping[str, Any], dt: float) -> Scope:
    scope = Scope()
    for name, value in values.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            scope.const(name, value)
    scope.const("dt", float(dt), "the step")
    return scope


def check_params(model: NeuronModel | Any, values: Mapping[str, Any], dt: Optional[float] = None) -> None:
    """Raise :class:`ModelError` (``symbol`` = the parameter) for a value outside its
    choices or failing its check or a model check."""
    scope = param_scope(values, 1.0 if dt is None else dt)
    for name, p in model.params.items():
        v = values.get(name)
        if p.choices is not None and v not in p.choices:
            raise ModelError(f"{v!r} is not one of: {', '.join(map(str, p.choices))}", symbol=name)
        if p.check is not None and v is not None and not const_value(f"{name} {p.check}", scope, "a check"):
            raise ModelError(f"must be {p.check}, got {v!r}", symbol=name)
    for cond, field, message in model.checks:
        if dt is None and "dt" in symbols(parse_expr(cond)):
            continue  # decided when the population is built for a step
        if not const_value(cond, scope, "a check"):
            raise ModelError(f"{message}, got {field} = {values.get(field)!r}", symbol=field)


def apply_presets(model: NeuronModel | Any, values: dict) -> dict:
    """Fill parameters left ``None`` from the chosen ``preset``."""
    if not model.presets:
        return values
    preset = values.get("preset")
    if preset == "custom":
        for name in next(iter(model.presets.values())):
            if values.get(name) is None:
                raise ModelError("required with preset 'custom'", symbol=name)
        return values
    out = dict(values)
    for name, v in model.presets[preset].items():
        if out.get(name) is None:
            out[name] = v
    return out


RESERVED = ("I", "I_inh", "dt", "active", "s", "x", "refrac_count", "learning")


def check_names(model: Any, tables: tuple) -> None:
    """Names must be distinct across ``tables`` (field name, mapping) and not reserved."""
    seen: dict[str, str] = {}
    for field, table in tables:
        for name in table:
            if not isinstance(name, str) or not name.isidentifier():
                raise ModelError(f"{name!r} is not a valid name", symbol=field)
            if name in RESERVED:
                raise ModelError(f"{name!r} is reserved ({', '.join(RESERVED)})", symbol=field)
            if name in seen:
                raise ModelError(f"{name!r} is declared in both {seen[name]} and {field}", symbol=field)
            seen[name] = field


def resolve_constants(model: Any, values: Mapping[str, Any], dt: float) -> tuple[dict, Scope, dict[str, float]]:
    """Presets applied and checked parameter ``values``, the scope of parameters, ``dt`` and
    the model's ``constants`` (each evaluated once, in order), and those constants."""
    values = apply_presets(model, dict(values))
    check_params(model, values, dt)
    scope = param_scope(values, dt)
    consts: dict[str, float] = {}
    for name, text in model.constants.items():
        consts[name] = _in("constants", lambda: const_value(text, scope, f"constant {name!r}"), name)
        scope.const(name, consts[name], "constant")
    return values, scope, consts


def compile_neuron(model: NeuronModel, values: Mapping[str, Any], dt: float) -> CompiledNeuron:
    """Resolve ``model`` for parameter ``values`` (model and common parameters) and ``dt``.
    Errors are :class:`ModelError` with ``symbol`` naming the culprit and, for code, the
    field (``update``, ``threshold``, ...) in ``field``."""
    check_names(model, (("params", model.params), ("constants", model.constants), ("state", model.state),
                        ("slow", model.slow)))
    values, scope, consts = resolve_constants(model, values, dt)
    refrac = 0.0 if model.input else refractory_ms(float(values.get("refrac_ms") or 0.0), dt)
    init = {}
    for field, table in (("state", model.state), ("slow", model.slow)):
        for name, text in table.items():
            try:
                init[name] = float(const_value(text, scope, f"the initial value of {name!r}"))
            except ModelError as exc:
                raise _tag(ModelError(f"initial value of {name!r}: {exc.message}", symbol=name), field) from None
    why_slow = "it is slow state shared by the batch (the batch's increments are summed)"
    for name in model.state:
        scope.var(name, role="state variable", write="set")
    for name in model.slow:
        scope.var(name, role="slow variable", write="inc", why=why_slow)
    scope.var("I", role="input", why="the step's input")
    scope.var("I_inh", role="input", why="the step's inhibitory input")
    if refrac > 0:
        scope.var("active", BOOL, "refractory flag", why="set by refrac_ms")
    else:
        scope.const("active", True, "refractory flag")
    temps: dict[str, str] = {}
    update = _in("update", lambda: fold_block(parse_block(model.update), scope, temps))
    threshold = _in("threshold", lambda: fold_expr(parse_expr(model.threshold), scope, 1, set(temps)))
    if _in("threshold", lambda: type_of(threshold, scope, temps, 1)) != BOOL:
        raise ModelError("the threshold must be a condition (e.g. v >= v_thresh)", symbol="threshold")
    reset = _in("reset", lambda: fold_block(parse_block(model.reset), scope, temps))
    slow_scope = param_scope(values, dt)
    for name, v in consts.items():
        slow_scope.const(name, v, "constant")
    for name in model.slow:
        slow_scope.var(name, role="slow variable", write="set")
    slow_update = _in("slow_update", lambda: fold_block(parse_block(model.slow_update), slow_scope))
    used = (runtime_symbols(update) | runtime_symbols(threshold) | runtime_symbols(reset)
            | runtime_symbols(slow_update))
    if refrac > 0 and "active" not in used:
        raise ModelError(f"refrac_ms = {values.get('refrac_ms')} has no effect: the model never reads `active` "
                         f"(e.g. `if active: v = v + I`)", symbol="refrac_ms")
    incremented = sorted(_incremented(update) | _incremented(reset))
    return CompiledNeuron(
        model=model, values=values, consts=consts,
        fast=[(n, init[n]) for n in model.state if n in used],
        slow=[(n, init[n]) for n in model.slow if n in used],
        update=update, threshold=threshold, reset=reset, slow_update=slow_update, temps=temps,
        slow_incremented=[n for n in incremented if n in model.slow],
        refrac=refrac, refrac_tol=0.5 * dt, uses_inh="I_inh" in used, dt=float(dt))


def _incremented(stmts: tuple) -> set[str]:
    from .ir import Assign

    out: set[str] = set()
    for s in stmts:
        if isinstance(s, Assign):
            if s.op in ("+=", "-="):
                out.add(s.target)
        else:
            out |= _incremented(s.body) | _incremented(s.orelse)
    return out


def _in(field: str, fn: Any, symbol: Optional[str] = None) -> Any:
    """Run ``fn``; tag a :class:`ModelError` with the definition field it comes from."""
    try:
        return fn()
    except ModelError as exc:
        exc.field = field
        if symbol and exc.symbol is None:
            exc.symbol = symbol
        raise


def _tag(exc: ModelError, field: str) -> ModelError:
    exc.field = field
    return exc


def field_of(exc: ModelError) -> str:
    """The definition field (``update``, ``threshold``, ...) or parameter an error names."""
    return getattr(exc, "field", None) or exc.symbol or "model"


__all__ = ["Param", "NeuronModel", "CompiledNeuron", "compile_neuron", "refractory_ms", "field_of", "FLOAT", "BOOL"]
