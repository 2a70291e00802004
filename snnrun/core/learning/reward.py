"""Reward-modulated STDP (Florian 2007), as in BindsNET's ``MSTDP`` and ``MSTDPET``.

Rule-owned traces (reset per episode/sample)::

    p_plus  <- p_plus  * exp(-dt / tau_plus_ms)  + a_plus  * s_pre
    p_minus <- p_minus * exp(-dt / tau_minus_ms) + a_minus * s_post      (a_minus < 0)
    zeta     = outer(p_plus, s_post) + outer(s_pre, p_minus)             (STDP eligibility)

``mstdp``:   ``dw = nu * r * zeta``
``mstdpet``: ``e <- e * exp(-dt / tau_e_ms) + zeta / tau_e_ms``;  ``dw = nu * r * e * dt``

``r`` is the network's reward tensor: a scalar, or one value per sample ``[B]`` (``mstdp``
only).  With ``reward_mode="episode"`` nothing is applied during the episode: the rule
accumulates ``zeta`` (``mstdp``) or ``e * dt`` (``mstdpet``) and applies
``nu * R * accumulated`` when :meth:`apply_reward` is called with the episode's reward.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..registry import check
from .base import RULES, LearningRule, RuleParams


@dataclasses.dataclass
class MSTDPParams(RuleParams):
    nu: float = 1e-2
    a_plus: float = 1.0
    a_minus: float = -1.0
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    reward_mode: str = "step"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.tau_plus_ms > 0, "tau_plus_ms", f"must be > 0, got {self.tau_plus_ms}")
        check(self.tau_minus_ms > 0, "tau_minus_ms", f"must be > 0, got {self.tau_minus_ms}")
        check(self.reward_mode in ("step", "episode"), "reward_mode", f"{self.reward_mode!r} is not one of: step, episode")


@RULES.register("mstdp", MSTDPParams)
class MSTDP(LearningRule):
    """Reward-modulated STDP: ``dw = nu * reward * zeta`` every step (or per episode)."""

    needs_traces = False

    def __init__(self, params: MSTDPParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.nu = float(params.nu)
        self.a_plus = float(params.a_plus)
        self.a_minus = float(params.a_minus)
        self.d_plus = math.exp(-self.dt / params.tau_plus_ms)
        self.d_minus = math.exp(-self.dt / params.tau_minus_ms)
        self.episode = params.reward_mode == "episode"

    def allocate(self, batch: int) -> None:
        super().allocate(batch)
        dev = self.conn.w.device
        self.p_plus = torch.zeros((batch, *self.conn.source.shape), device=dev)
        self.p_minus = torch.zeros((batch, *self.conn.target.shape), device=dev)
        self.acc = torch.zeros_like(self.conn.w)

    def reset(self) -> None:
        self.p_plus.zero_()
        self.p_minus.zero_()
        self.acc.zero_()

    def to(self, device: torch.device) -> None:
        if self.conn is not None and self.batch:
            self.allocate(self.batch)

    def _zeta(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """STDP eligibility; ``weight`` [B] scales each sample's contribution."""
        c = self.conn
        s_pre = c.source.s.to(self.p_plus.dtype)
        s_post = c.target.s.to(self.p_minus.dtype)
        self.p_plus.mul_(self.d_plus).add_(s_pre, alpha=self.a_plus)
        self.p_minus.mul_(self.d_minus).add_(s_post, alpha=self.a_minus)
        p_plus, s_pre_w = self.p_plus, s_pre
        if weight is not None:
            shape = (-1,) + (1,) * (p_plus.dim() - 1)
            p_plus = p_plus * weight.view(shape)
            s_pre_w = s_pre * weight.view(shape)
        return c.outer(p_plus, s_post).add_(c.outer(s_pre_w, self.p_minus))

    def update(self, reward: torch.Tensor) -> None:
        if self.episode:
            self.acc.add_(self._zeta(), alpha=self.scale)
            return
        if reward.dim() == 0:
            dw = self._zeta().mul_(reward * (self.nu * self.scale))
        else:
            dw = self._zeta(reward).mul_(self.nu * self.scale)
        self._finish(dw)

    def apply_reward(self, reward: float) -> None:
        """Episode mode: apply ``nu * reward * accumulated eligibility`` and clear it."""
        self._finish(self.acc * (self.nu * float(reward)))
        self.acc.zero_()

    def take_eligibility(self, out: torch.Tensor) -> None:
        """Episode mode: move the eligibility accumulated so far into ``out`` and clear it
        (a runner that weighs each environment step's eligibility by its own return)."""
        out.copy_(self.acc)
        self.acc.zero_()

    def apply_eligibility(self, e: torch.Tensor, factor: float) -> None:
        """``dw = nu * factor * e`` through the connection's mask and weight bounds."""
        self._finish(e * (self.nu * float(factor)))


@dataclasses.dataclass
class MSTDPETParams(MSTDPParams):
    tau_e_ms: float = 25.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.tau_e_ms > 0, "tau_e_ms", f"must be > 0, got {self.tau_e_ms}")


@RULES.register("mstdpet", MSTDPETParams)
class MSTDPET(MSTDP):
    """Reward-modulated STDP with an eligibility trace ``e`` (time constant ``tau_e_ms``)."""

    def __init__(self, params: MSTDPETParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.tau_e = float(params.tau_e_ms)
        self.d_e = math.exp(-self.dt / params.tau_e_ms)

    def allocate(self, batch: int) -> None:
        super().allocate(batch)
        self.e = torch.zeros_like(self.conn.w)

    def reset(self) -> None:
        super().reset()
        self.e.zero_()

    def update(self, reward: torch.Tensor) -> None:
        if reward.dim() != 0:
            raise ValueError("mstdpet takes one scalar reward per step (got one per sample)")
        self.e.mul_(self.d_e).add_(self._zeta(), alpha=self.scale / self.tau_e)
        if self.episode:
            self.acc.add_(self.e, alpha=self.dt)
            return
        self._finish(self.e * (reward * (self.nu * self.dt)))
