"""Connection base: weight initialisation, clamping, normalisation, bias and delays.

A connection maps the spikes of a ``source`` population to input current of a
``target`` population.  Every connection kind stores its weights ``w`` in its own layout
(dense: ``[n_pre, n_post]``; conv2d: ``[C_out, C_in, kh, kw]``; ...) and implements:

* ``compute(s)``: the linear map from source activity ``[B, *source.shape]`` to current
  ``[B, *target.shape]`` (bias excluded);
* ``outer(pre, post)``: ``sum_b pre[b, i] * post[b, j]`` in the weight layout -- the
  Hebbian correlation that every learning rule is built from (so a rule is written once
  for all connection kinds);
* ``incoming_sums()`` / ``scale_incoming(f)``: per-target-neuron sums of incoming weights
  (what ``norm`` fixes);
* ``dense_weights()``: the equivalent ``[n_pre, n_post]`` matrix (tests, plots).

Transmission takes one step, as in BindsNET: spikes emitted at step t reach the target at
t+1.  ``delay_ms`` adds an integer number of steps on top (``delay_ms / dt`` must be an
integer).  A mapping ``{max_ms: D}`` draws a per-synapse delay uniformly from
``{0, dt, ..., D}`` (dense connections).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Optional

import numpy as np
import torch

from ..neurons.base import Population
from ..registry import ParamError, Registry, check, load_tensors
from .rescale import rescale
from .weight_expr import compile_expr

CONNECTIONS: Registry["Connection"] = Registry("connection")
FLOAT32_MAX = 3.4028234663852886e38


@dataclasses.dataclass
class WeightInit:
    """How initial weights are drawn: ``constant`` (``value``), ``uniform`` (``low``..``high``),
    ``normal`` (``mean``, ``std``), or ``grid_distance`` (a recurrent ``[n, n]`` layer whose
    neurons sit row-major on a ``sqrt(n) x sqrt(n)`` grid: ``w_ij = low + (high - low) *
    (d_ij - 1) / (d_max - 1)`` with ``d`` the Euclidean grid distance, so nearest neighbours
    get ``low`` and the farthest pair ``high``; ``w_ii = 0``: e.g. lateral inhibition growing
    with distance, ``low: -1, high: -20``), or ``expr`` (an expression such as
    ``0.05 + 0.1 * N(0, 1)``, see :mod:`.weight_expr`; a string ``weight:`` is one).  The
    weights are multiplied by ``scale``."""

    dist: str = "uniform"
    value: float = 0.0
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    scale: float = 1.0
    expr: str = ""

    def __post_init__(self) -> None:
        check(self.dist in ("constant", "uniform", "normal", "grid_distance", "expr"), "weight.dist",
              f"{self.dist!r} is not one of: constant, uniform, normal, grid_distance, expr")
        check((self.dist == "expr") == bool(self.expr), "weight.expr",
              "dist: expr needs an expression (expr: ...), and an expression needs dist: expr")
        self._expr = compile_expr(self.expr) if self.dist == "expr" else None
        check(self.high >= self.low or self.dist == "grid_distance", "weight.high", f"must be >= low ({self.low}), got {self.high}")
        check(self.std >= 0, "weight.std", f"must be >= 0, got {self.std}")
        for name in ("value", "low", "high", "mean", "std", "scale"):
            x = getattr(self, name)
            check(isinstance(x, (int, float)) and math.isfinite(x) and abs(x) <= FLOAT32_MAX, f"weight.{name}",
                  f"must be a finite number within float32 range (|x| <= 3.4e38), got {x!r}")

    def sample(self, shape: tuple[int, ...], generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self.dist == "constant":
            w = torch.full(shape, float(self.value))
        elif self.dist == "uniform":
            w = torch.rand(shape, generator=generator) * (self.high - self.low) + self.low
        elif self.dist == "grid_distance":
            w = grid_distance_weights(shape, self.low, self.high)
        elif self.dist == "expr":
            w = self._expr(shape, generator)
        else:
            w = torch.randn(shape, generator=generator) * self.std + self.mean
        return w * self.scale


def grid_distance_weights(shape: tuple[int, ...], near: float, far: float) -> torch.Tensor:
    """``[n, n]`` weights between neurons on a square grid, linear in their distance (see
    :class:`WeightInit`)."""
    n = shape[0]
    side = math.isqrt(n)
    if len(shape) != 2 or shape[1] != n or side * side != n or n < 4:
        raise ParamError("weight.dist", f"grid_distance needs a recurrent layer of a square number (>= 4) of neurons, "
                                        f"got weights {tuple(shape)}")
    k = torch.arange(n)
    xy = torch.stack([k // side, k % side], 1).float()
    d = torch.cdist(xy, xy)
    w = near + (far - near) * (d - 1.0) / (float(d.max()) - 1.0)
    return w.fill_diagonal_(0.0)


def parse_weight(value: Any) -> WeightInit:
    if isinstance(value, WeightInit):
        return value
    if isinstance(value, bool):
        raise ParamError("weight", f"expected a number or a mapping, got {value!r}")
    if isinstance(value, (int, float)):
        return WeightInit(dist="constant", value=float(value))
    if isinstance(value, str):
        return WeightInit(dist="expr", expr=value)
    if isinstance(value, dict):
        fields = {f.name for f in dataclasses.fields(WeightInit)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ParamError(f"weight.{unknown[0]}", f"unknown key; valid keys: {', '.join(sorted(fields))}")
        return WeightInit(**value)
    raise ParamError("weight", f"expected a number, an expression or a mapping like {{dist: uniform, low: 0, high: 1}}, "
                               f"got {value!r}")


@dataclasses.dataclass
class ConnectionParams:
    """Parameters common to all connection kinds."""

    weight: Any = dataclasses.field(default_factory=WeightInit)
    wmin: Optional[float] = None
    wmax: Optional[float] = None
    norm: Optional[float] = None
    bias: Optional[float] = None
    delay_ms: Any = 0
    receptor: str = "exc"
    learning_enabled: bool = True

    def __post_init__(self) -> None:
        self.weight = parse_weight(self.weight)
        if self.wmin is not None and self.wmax is not None:
            check(self.wmax >= self.wmin, "wmax", f"must be >= wmin ({self.wmin}), got {self.wmax}")
        check(self.norm is None or self.norm > 0, "norm", f"must be > 0, got {self.norm}")
        check(self.receptor in ("exc", "inh"), "receptor", f"{self.receptor!r} is not one of: exc, inh")
        d = self.delay_ms
        if isinstance(d, dict):
            check(set(d) <= {"max_ms"} and "max_ms" in d, "delay_ms", "a per-synapse delay is {max_ms: D}")
            check(isinstance(d["max_ms"], (int, float)) and d["max_ms"] >= 0, "delay_ms.max_ms", f"must be >= 0, got {d['max_ms']!r}")
        else:
            check(isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0, "delay_ms", f"must be a number >= 0 or {{max_ms: D}}, got {d!r}")


def _steps(ms: float, dt: float, field: str) -> int:
    steps = ms / dt
    if abs(steps - round(steps)) > 1e-6:
        raise ParamError(field, f"{ms} ms is not a whole number of dt={dt} ms steps")
    return int(round(steps))


class Connection:
    """Base class of all connection kinds (see module docstring)."""

    kind: ClassVar[str] = "?"
    per_synapse_delays: ClassVar[bool] = False

    @classmethod
    def memory_bytes(cls, source: Population, target: Population, params: ConnectionParams) -> Optional[int]:
        """Bytes the connection's tensors will take once built (None: small or not known);
        the builder refuses a network that cannot fit before allocating any of it."""
        return None

    def __init__(self, source: Population, target: Population, params: ConnectionParams, dt: float = 1.0,
                 rule: Any = None, generator: Optional[torch.Generator] = None):
        self.source = source
        self.target = target
        self.params = params
        self.dt = float(dt)
        self.wmin = -math.inf if params.wmin is None else float(params.wmin)
        self.wmax = math.inf if params.wmax is None else float(params.wmax)
        self.norm = params.norm
        self.receptor_inh = params.receptor == "inh"
        self.learning_enabled = bool(params.learning_enabled)
        self.rule = rule
        self.device = torch.device("cpu")
        self.w = self.init_weights(params.weight, generator)
        self.mask: Optional[torch.Tensor] = None
        self.b = None if params.bias is None else torch.full(target.shape, float(params.bias))
        # delays
        d = params.delay_ms
        if isinstance(d, dict):
            if not self.per_synapse_delays:
                raise ParamError("delay_ms", f"per-synapse delays are not supported by {self.kind} connections")
            self.max_delay = _steps(float(d["max_ms"]), self.dt, "delay_ms.max_ms")
            self.delays: Optional[torch.Tensor] = torch.randint(0, self.max_delay + 1, self.w.shape, generator=generator)
        else:
            self.max_delay = _steps(float(d), self.dt, "delay_ms")
            self.delays = None
        self.ring = torch.zeros(0)
        self.pos = 0
        self.clamp_()

    # ------------------------------------------------------------ kind-specific
    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        """Current ``[B, *target.shape]`` caused by source activity ``s`` (float)."""
        raise NotImplementedError

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """``sum_b pre[b] (x) post[b]`` in the weight layout."""
        raise NotImplementedError

    def incoming_sums(self) -> torch.Tensor:
        """Sum of incoming weights per target neuron, broadcastable against ``w``."""
        raise NotImplementedError

    def dense_weights(self) -> torch.Tensor:
        """The equivalent dense ``[n_pre, n_post]`` weight matrix."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared machinery
    def allocate(self, batch: int) -> None:
        if self.max_delay > 0:
            self.ring = torch.zeros((self.max_delay + 1, batch, *self.source.shape), device=self.device)
        self.pos = 0

    def reset(self) -> None:
        if self.max_delay > 0:
            self.ring.zero_()
        self.pos = 0

    def propagate(self, out: torch.Tensor) -> None:
        """Add the current caused by the source's (delayed) spikes into ``out``."""
        s = self.source.s
        if self.max_delay == 0:
            out.add_(self.compute(s.to(self.w.dtype)))
        elif self.delays is None:
            self.ring[self.pos].copy_(s)
            self.pos = (self.pos + 1) % (self.max_delay + 1)
            out.add_(self.compute(self.ring[self.pos]))
        else:
            self.ring[self.pos].copy_(s)
            out.add_(self.compute_delayed())
            self.pos = (self.pos + 1) % (self.max_delay + 1)
        if self.b is not None:
            out.add_(self.b)

    def compute_delayed(self) -> torch.Tensor:
        raise NotImplementedError

    def apply_update(self, dw: torch.Tensor) -> None:
        """``w += dw``, then re-apply the mask and the ``[wmin, wmax]`` clamp."""
        self.w.add_(dw)
        self.clamp_()

    def clamp_(self) -> None:
        # clamp first, then mask: masked synapses stay exactly 0 even when wmin > 0
        if self.wmin > -math.inf or self.wmax < math.inf:
            self.w.clamp_(min=self.wmin, max=self.wmax)
        if self.mask is not None:
            self.w.mul_(self.mask)

    def normalize(self) -> None:
        """Rescale every target neuron's incoming weights to sum to ``norm`` (no-op without norm)."""
        if self.norm is None:
            return
        sums = self.incoming_sums()
        if (self.w.device.type == "cpu" and self.w.dtype == sums.dtype == torch.float32 and self.w.is_contiguous()
                and not self.w.requires_grad):
            # the same float32 operations in numpy, without torch's per-op dispatch (per presentation)
            rescale(self.w.numpy(), sums.numpy(), np.float32(self.norm))
            return
        sums = torch.where(sums == 0, 1.0, sums)
        self.w.mul_(sums.reciprocal_().mul_(self.norm))  # = norm / sums, as torch divides a number by a tensor

    def to(self, device: torch.device | str) -> "Connection":
        device = torch.device(device)
        self.device = device
        self.w = self.w.to(device)
        if self.mask is not None:
            self.mask = self.mask.to(device)
        if self.b is not None:
            self.b = self.b.to(device)
        if self.delays is not None:
            self.delays = self.delays.to(device)
        if self.ring.numel():
            self.ring = self.ring.to(device)
        if self.rule is not None:
            self.rule.to(device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"w": self.w.detach().clone()}
        if self.b is not None:
            state["b"] = self.b.detach().clone()
        if self.delays is not None:
            state["delays"] = self.delays.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_tensors(self, ("w", "b", "delays"), state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source.shape} -> {self.target.shape}, w={tuple(self.w.shape)})"
