"""Encoders: turn a batch of values ``[B, *shape]`` into a spike (or current) train
``[T, B, *shape]`` in one call, on the values' device.

* ``poisson``: Poisson process at ``rate = value * intensity`` Hz, sampled per step as a
  Bernoulli draw with probability ``rate * dt / 1000`` (at most one spike per step; exact
  for ``rate * dt << 1000``).  Zero input never spikes.
* ``bernoulli``: spike with probability ``value * max_prob`` every step (values in [0, 1]).
* ``rank_order``: each input with a positive value spikes exactly once; larger values spike
  earlier -- time ``t = round((1 - value / max) * (T - 1))``.
* ``repeat``: the value itself at every step (current injection).
* ``single``: one spike at the first step for every value above ``threshold``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple, Optional

import torch

from ..registry import Registry, check

ENCODERS: Registry["Encoder"] = Registry("encoder")


@dataclasses.dataclass
class EncoderParams:
    time_ms: float = 250.0

    def __post_init__(self) -> None:
        check(self.time_ms > 0, "time_ms", f"must be > 0, got {self.time_ms}")


class BernoulliTrain(NamedTuple):
    """A spike train given by its per-step spike probability ``prob [B, *shape]`` over
    ``n_steps`` steps (independent Bernoulli draws each step).  Backends that can draw the
    spikes themselves (the fused kernel) take it as is; :meth:`sample` materialises it."""

    prob: torch.Tensor
    n_steps: int

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        p = self.prob
        return torch.rand((self.n_steps, *p.shape), device=p.device, generator=generator) < p


class Encoder:
    kind: ClassVar[str] = "?"
    spikes: ClassVar[bool] = True
    nonnegative: ClassVar[bool] = False

    def __init__(self, params: EncoderParams, dt: float = 1.0):
        self.params = params
        self.dt = float(dt)
        self.n_steps = int(round(params.time_ms / self.dt))

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if torch.is_floating_point(x) and not torch.isfinite(x).all():
            raise ValueError(f"{self.kind} encoder: input contains NaN or inf")
        if self.nonnegative and bool((x < 0).any()):
            raise ValueError(f"{self.kind} encoder: input values must be >= 0 (they scale a rate)")
        return self.encode(x, generator)

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    def train(self, x: torch.Tensor) -> "BernoulliTrain | None":
        """The spike train as a :class:`BernoulliTrain` when it is one (``None`` otherwise)."""
        return None


def _rand(shape, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    return torch.rand(shape, device=x.device, generator=generator)


@dataclasses.dataclass
class PoissonParams(EncoderParams):
    intensity: float = 128.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.intensity >= 0, "intensity", f"must be >= 0, got {self.intensity}")


@ENCODERS.register("poisson", PoissonParams)
class Poisson(Encoder):
    """Poisson spike trains with rate ``value * intensity`` Hz."""

    nonnegative = True

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * (self.params.intensity * self.dt / 1000.0)).clamp_(0.0, 1.0)

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return BernoulliTrain(self.probability(x), self.n_steps).sample(generator)

    def train(self, x: torch.Tensor) -> BernoulliTrain:
        return BernoulliTrain(self.probability(x), self.n_steps)


@dataclasses.dataclass
class BernoulliParams(EncoderParams):
    max_prob: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 <= self.max_prob <= 1, "max_prob", f"must be in [0, 1], got {self.max_prob}")


@ENCODERS.register("bernoulli", BernoulliParams)
class Bernoulli(Encoder):
    """Spike with probability ``value * max_prob`` every step."""

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * self.params.max_prob).clamp_(0.0, 1.0)

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return BernoulliTrain(self.probability(x), self.n_steps).sample(generator)

    def train(self, x: torch.Tensor) -> BernoulliTrain:
        return BernoulliTrain(self.probability(x), self.n_steps)


@ENCODERS.register("rank_order", EncoderParams)
class RankOrder(Encoder):
    """One spike per positive input; larger values spike earlier."""

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        T = self.n_steps
        flat = x.float().reshape(x.shape[0], -1)
        top = flat.amax(1, keepdim=True).clamp(min=1e-12)
        times = torch.round((1.0 - flat / top) * (T - 1)).long().clamp_(0, T - 1)
        out = torch.zeros((T, *flat.shape), dtype=torch.bool, device=x.device)
        out.scatter_(0, times.unsqueeze(0), (flat > 0).unsqueeze(0))
        return out.view(T, *x.shape)


@ENCODERS.register("repeat", EncoderParams)
class Repeat(Encoder):
    """The input value at every step (a constant current)."""

    spikes = False

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return x.float().unsqueeze(0).expand(self.n_steps, *x.shape)


@dataclasses.dataclass
class SingleParams(EncoderParams):
    threshold: float = 0.0


@ENCODERS.register("single", SingleParams)
class Single(Encoder):
    """One spike at the first step for every input above ``threshold``."""

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        out = torch.zeros((self.n_steps, *x.shape), dtype=torch.bool, device=x.device)
        out[0] = x > self.params.threshold
        return out


__all__ = ["ENCODERS", "BernoulliTrain", "Encoder", "EncoderParams", "Poisson", "Bernoulli", "RankOrder", "Repeat", "Single"]
