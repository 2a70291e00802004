"""Populations: a neuron model (:mod:`snnrun.core.models.neuron`) with its state.

A population owns its state tensors, shaped ``[B, *shape]`` (always a batch dimension;
slow state ``[*shape]``), updated **in place** by :meth:`Population.step`, so recorders and
the fused kernel can hold references to them; :meth:`Population.allocate` (on a batch size
or device change) is the only place that creates them.  The step is printed from the
model (:mod:`.torch_step`); a neuron kind is a registration of a model
(:func:`register_neuron`), not a class with its own code.

Three kinds of data are kept apart:

* constants, computed once from the parameters (``decay = exp(-dt / tau)``);
* fast state, reset before every sample by :meth:`reset` (the model's ``state``,
  refractory counters, traces, spikes);
* slow state, the model's ``slow`` variables, kept across samples; it appears in
  ``state_dict()``.

Refractoriness: a spike sets ``refrac_count`` to the refractory period (ms, rounded up to
whole steps); every step decrements it by ``dt`` (clamped at 0).  A neuron is refractory
(``active`` false) while its counter is at least half a step, so it lasts exactly
``ceil(refrac_ms / dt)`` steps even when ``dt`` is not exact in binary.

Spike traces (optional, ``traces=True``), after the spikes of the step are known::

    x <- x * exp(-dt / trace_tau_ms)
    x <- trace_scale            where s          (trace_mode = "set")
    x <- x + trace_scale * s                     (trace_mode = "additive")

``one_spike``: at most one neuron per sample emits a spike each step, chosen uniformly
among those that crossed threshold by the counter-based draw of :mod:`~snnrun.core.models.rng`
(the same choice on every backend); every crosser is still reset and made refractory.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, ClassVar, Optional

import torch

from ..models.ir import ModelError
from ..models.neuron import NeuronModel, apply_presets, check_params, compile_neuron, field_of
from ..registry import ParamError, Registry, check, load_tensors
from .torch_step import make_torch_step

NEURONS: Registry["Population"] = Registry("neuron")


@dataclasses.dataclass
class NeuronParams:
    """Parameters common to every population kind.

    Give either ``n`` (a flat population) or ``shape`` (e.g. ``[1, 28, 28]``).
    """

    n: Optional[int] = None
    shape: Optional[list[int]] = None
    refrac_ms: float = 0.0
    traces: bool = False
    trace_tau_ms: float = 20.0
    trace_mode: str = "set"
    trace_scale: float = 1.0
    one_spike: bool = False

    def __post_init__(self) -> None:
        check(self.n is not None or self.shape is not None, "n", "give the population size `n` (or `shape`)")
        if self.shape is not None:
            shape = [int(d) for d in self.shape]
            check(len(shape) > 0 and all(d > 0 for d in shape), "shape", f"dimensions must be positive, got {list(self.shape)}")
            size = math.prod(shape)
            check(self.n is None or self.n == size, "n", f"n={self.n} does not match shape {shape} (size {size})")
            self.shape = shape
            self.n = size
        check(isinstance(self.n, int) and self.n > 0, "n", f"must be a positive integer, got {self.n!r}")
        check(self.refrac_ms >= 0, "refrac_ms", f"must be >= 0, got {self.refrac_ms}")
        check(self.trace_tau_ms > 0, "trace_tau_ms", f"must be > 0, got {self.trace_tau_ms}")
        check(self.trace_mode in ("set", "additive"), "trace_mode", f"{self.trace_mode!r} is not one of: set, additive")


COMMON = tuple(f.name for f in dataclasses.fields(NeuronParams))


def decay(dt: float, tau: float) -> float:
    """Exact per-step decay factor ``exp(-dt / tau)`` (0 for tau = 0)."""
    return math.exp(-dt / tau) if tau > 0 else 0.0


def param_values(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


class Population:
    """A population of neurons of one model (see the module docstring)."""

    kind: ClassVar[str] = "?"
    model: ClassVar[Optional[NeuronModel]] = None

    def __init__(self, params: NeuronParams, dt: float = 1.0, model: Optional[NeuronModel] = None):
        self.params = params
        self.dt = float(dt)
        self.model = model or self._model_from(params)
        try:
            self.compiled = compile_neuron(self.model, self._values(params), self.dt)
        except ModelError as exc:
            raise ParamError(field_of(exc), exc.args[0]) from None
        c = self.compiled
        self.shape: tuple[int, ...] = tuple(params.shape) if params.shape else (int(params.n),)
        self.n = int(params.n)
        self.traces = bool(params.traces)
        self.trace_decay = decay(self.dt, params.trace_tau_ms)
        self.trace_scale = float(params.trace_scale)
        self.trace_additive = params.trace_mode == "additive"
        self.refrac = c.refrac
        self.refrac_tol = c.refrac_tol
        self.one_spike = bool(params.one_spike)
        self.is_input = c.input
        self.conductance = c.uses_inh
        self.fast_state = tuple(name for name, _ in c.fast)
        self.slow_state = tuple(name for name, _ in c.slow)
        self.batch = 0
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.learning = True
        self.stream = 1  # random stream of the one-spike choice (set by the network)
        self.rng_state = torch.zeros(2, dtype=torch.int64)  # [presentation seed, step] (shared by the network)
        self.s = torch.zeros(0, dtype=torch.bool)
        self.x = torch.zeros(0)
        self.refrac_count = torch.zeros(0)
        self.sites = torch.zeros(0, dtype=torch.int64)
        for name, init in c.slow:
            setattr(self, name, torch.full(self.shape, init))
        for name, _ in c.fast:
            setattr(self, name, torch.zeros(0))
        self._step, self.torch_source = make_torch_step(c, self.one_spike)

    def _model_from(self, params: Any) -> NeuronModel:
        if type(self).model is None:
            raise TypeError(f"{type(self).__name__} has no neuron model; pass model=...")
        return type(self).model

    def _values(self, params: Any) -> dict[str, Any]:
        return param_values(params)

    # ----------------------------------------------------------------- state management
    def zeros(self, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        return torch.zeros((self.batch, *self.shape), device=self.device, dtype=dtype or self.dtype)

    def allocate(self, batch: int, device: torch.device | str | None = None) -> None:
        """(Re)create all fast state for ``batch`` samples on ``device``, then reset it."""
        device = torch.device(device) if device is not None else self.device
        if device != self.device:
            self.to(device)
        self.batch = int(batch)
        self.s = self.zeros(torch.bool)
        self.x = self.zeros() if self.traces else torch.zeros(0, device=self.device)
        self.refrac_count = self.zeros()
        for name in self.fast_state:
            setattr(self, name, self.zeros())
        if self.one_spike:
            from ..models.rng import site_keys

            self.sites = site_keys(self.batch, self.n, self.device)
        self.reset()

    def reset(self) -> None:
        """Reset fast state (model state, refractory counters, traces, spikes), keep slow state."""
        if self.batch == 0:
            return
        self.s.zero_()
        if self.traces:
            self.x.zero_()
        self.refrac_count.zero_()
        for name, init in self.compiled.fast:
            getattr(self, name).fill_(init)

    def to(self, device: torch.device | str) -> "Population":
        device = torch.device(device)
        for name in self.slow_state:
            setattr(self, name, getattr(self, name).to(device))
        self.rng_state = self.rng_state.to(device)
        self.device = device
        if self.batch:
            self.allocate(self.batch, device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).detach().clone() for name in self.slow_state}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_tensors(self, self.slow_state, state)

    def state_vars(self) -> list[str]:
        """Names of recordable per-neuron variables (tensors shaped [B, *shape] or [*shape])."""
        names = ["s"] + (["x"] if self.traces else []) + list(self.fast_state) + list(self.slow_state)
        return names + (["refrac_count"] if self.refrac > 0 else [])

    # ----------------------------------------------------------------- dynamics
    def step(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Advance one step of ``dt`` with input ``i_exc`` (and ``i_inh`` for conductance
        kinds), update spikes ``s`` and traces ``x`` in place, return ``s``."""
        if self.conductance and i_inh is None:
            i_inh = torch.zeros_like(i_exc)
        self._step(self, i_exc, i_inh)
        if self.traces:
            self.x.mul_(self.trace_decay)
            if self.trace_additive:
                self.x.add_(self.s, alpha=self.trace_scale)
            else:
                self.x.masked_fill_(self.s, self.trace_scale)
        return self.s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"


# ----------------------------------------------------------------------------- registration
def _field_type(default: Any) -> Any:
    if isinstance(default, bool):
        return bool
    if isinstance(default, str):
        return str
    if default is None:
        return Optional[float]
    return float


def params_class(model: NeuronModel, base: type = NeuronParams) -> type:
    """The parameter dataclass of ``model``: the common parameters (defaults as the model
    sets them) plus the model's, checked in ``__post_init__``."""
    fields = []
    for name, value in model.defaults.items():
        if name not in COMMON:
            raise TypeError(f"{model.kind}: {name!r} is not a common parameter ({', '.join(COMMON)})")
        tp = typing.get_type_hints(NeuronParams)[name]
        fields.append((name, tp, dataclasses.field(default=value)))
    return model_params_class(model, fields, COMMON, base)


def model_params_class(model: Any, fields: list, common: tuple, base: type) -> type:
    """``<Kind>Params``: ``base`` plus ``fields`` plus one field per model parameter (none
    may shadow a ``common`` one); ``__post_init__`` applies the model's presets and checks
    the values against its declarations (a bad value: :class:`ParamError` naming it)."""
    fields = list(fields)
    for name, p in model.params.items():
        if name in common:
            raise TypeError(f"{model.kind}: parameter {name!r} is a common parameter")
        fields.append((name, _field_type(p.default), dataclasses.field(default=p.default)))

    def __post_init__(self: Any) -> None:
        base.__post_init__(self)
        try:
            for name, value in apply_presets(model, param_values(self)).items():
                setattr(self, name, value)
            check_params(model, param_values(self))
        except ModelError as exc:
            raise ParamError(field_of(exc), exc.message) from None

    cls_name = "".join(part.title() for part in model.kind.split("_")) + "Params"
    return dataclasses.make_dataclass(cls_name, fields, bases=(base,), namespace={"__post_init__": __post_init__})


def check_param_table(params: dict) -> None:
    """The ``params:`` table of a ``kind: equations`` model: identifiers mapped to a number,
    true/false or a string (``None``: required)."""
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ParamError("params", f"{name!r} is not a valid name")
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ParamError(f"params.{name}", f"expected a number, true/false or a string, got {value!r}")


def register_neuron(model: NeuronModel, name: Optional[str] = None) -> type:
    """Register ``model`` as a neuron kind; returns its population class (``.Params`` is
    its parameter dataclass)."""
    params = params_class(model)
    cls = type(name or "".join(part.title() for part in model.kind.split("_")), (Population,),
               {"model": model, "Params": params, "__doc__": model.doc})
    NEURONS.register(model.kind, params)(cls)
    return cls
