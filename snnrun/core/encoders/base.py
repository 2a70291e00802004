"""The encoder base: the registry ``ENCODERS``, :class:`EncoderParams`, :class:`Encoder` (values
``[B, *shape]`` -> train ``[T, B, *shape]``) and :class:`BernoulliTrain`.  The kinds live in
:mod:`snnrun.core.encoders` (and :mod:`~snnrun.core.encoders.events`)."""

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

    def draw(self, seed: int, stream: int) -> torch.Tensor:
        """The spikes every simulation backend draws for this train (counter-based, see
        :mod:`snnrun.core.models.rng`): a spike at (t, b, j) when its draw is below
        ``floor(prob * 2^32)``."""
        if self.prob.is_floating_point() and not bool(torch.isfinite(self.prob).all()):
            raise ValueError("spike probabilities contain NaN or inf")
        from ..models.rng import bernoulli

        return bernoulli(self.prob, self.n_steps, seed, stream)


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

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample shape of the train for inputs of per-sample ``shape``."""
        return tuple(shape)
