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
* ``events``: recorded events (:class:`EventBatch`) binned at ``dt``: step ``floor(t / dt)``
  (:mod:`snnrun.core.encoders.events`).
* ``receptive_field``: population coding of a vector ``[B, d]`` (e.g. a gymnasium
  observation) by ``n_per_dim`` Gaussian receptive fields per feature, centres evenly
  spaced over ``[low_i, high_i]``, width ``sigma = width * spacing``; field k of feature i
  fires Poisson spikes at ``max_rate * exp(-(x_i - c_ik)^2 / (2 sigma^2))`` Hz.  Output
  ``[T, B, d * n_per_dim]`` (feature-major); values outside the range drive the edge field.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from ..registry import check
from .base import ENCODERS, BernoulliTrain, Encoder, EncoderParams
from .events import EventBatch, Events  # registers the ``events`` encoder


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


@dataclasses.dataclass
class ReceptiveFieldParams(EncoderParams):
    n_per_dim: int = 10
    low: list = dataclasses.field(default_factory=lambda: [-1.0])
    high: list = dataclasses.field(default_factory=lambda: [1.0])
    max_rate: float = 200.0
    width: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_per_dim >= 2, "n_per_dim", f"must be >= 2, got {self.n_per_dim}")
        check(len(self.low) == len(self.high) and len(self.low) >= 1, "high",
              f"low and high need one value per feature (got {len(self.low)} and {len(self.high)})")
        bad = [i for i, (a, b) in enumerate(zip(self.low, self.high)) if not float(a) < float(b)]
        check(not bad, "high", f"must exceed low for every feature (feature {bad[0] if bad else ''})")
        check(self.max_rate >= 0, "max_rate", f"must be >= 0, got {self.max_rate}")
        check(self.width > 0, "width", f"must be > 0, got {self.width}")


@ENCODERS.register("receptive_field", ReceptiveFieldParams)
class ReceptiveField(Encoder):
    """Gaussian population coding of a feature vector, then Poisson spikes."""

    def __init__(self, params: ReceptiveFieldParams, dt: float = 1.0):
        super().__init__(params, dt)
        low = torch.tensor([float(v) for v in params.low])
        high = torch.tensor([float(v) for v in params.high])
        k = torch.linspace(0.0, 1.0, params.n_per_dim)
        self.centres = low[:, None] + (high - low)[:, None] * k[None, :]  # [d, K]
        self.sigma = (high - low)[:, None] / (params.n_per_dim - 1) * params.width
        self.d = len(params.low)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.d * self.params.n_per_dim,)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().reshape(x.shape[0], -1)
        if x.shape[1] != self.d:
            raise ValueError(f"receptive_field encoder: got {x.shape[1]} features, low/high describe {self.d}")
        c, sig = self.centres.to(x.device), self.sigma.to(x.device)
        lo, hi = c[:, 0], c[:, -1]
        x = torch.maximum(torch.minimum(x, hi), lo)  # out of range -> the edge field
        act = torch.exp(-0.5 * ((x[:, :, None] - c[None]) / sig[None]) ** 2)
        return (act * (self.params.max_rate * self.dt / 1000.0)).clamp_(0.0, 1.0).reshape(x.shape[0], -1)

    def encode(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return BernoulliTrain(self.probability(x), self.n_steps).sample(generator)

    def train(self, x: torch.Tensor) -> BernoulliTrain:
        return BernoulliTrain(self.probability(x), self.n_steps)


__all__ = ["EventBatch", "Events", "ReceptiveField", "ENCODERS", "BernoulliTrain", "Encoder", "EncoderParams", "Poisson", "Bernoulli", "RankOrder", "Repeat", "Single"]
