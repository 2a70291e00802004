"""Pair-based STDP rules on spike traces (BindsNET's update order: after all populations
have stepped, using the current step's spikes ``s`` and traces ``x``, which include the
current spike).

``post_pre``::

    dw = -nu_pre * outer(s_pre, x_post)      (depression at pre-synaptic spikes)
         +nu_post * outer(x_pre, s_post)     (potentiation at post-synaptic spikes)

``weight_dependent_post_pre`` (soft bounds; needs finite wmin and wmax)::

    dw = -nu_pre * outer(s_pre, x_post) * (w - wmin) + nu_post * outer(x_pre, s_post) * (wmax - w)

``hebbian`` (both terms potentiate)::

    dw = nu_pre * outer(s_pre, x_post) + nu_post * outer(x_pre, s_post)

``triplet_post_pre`` (the Diehl & Cook 2015 paper's rule; the rule keeps its own traces,
pre: tau_pre_ms, post1: tau_post1_ms, post2: tau_post2_ms, all "set to 1" on a spike)::

    at a pre spike:   w -= nu_pre * post1
    at a post spike:  w += nu_post * pre * post2_before     (post2's value before this spike)

With per-synapse delays, ``pre_timing: arrival`` runs the pre-synaptic part where Brian
runs a synapse's ``on_pre`` code: when the spike *arrives* at the synapse, ``delay`` steps
after it was emitted.  Each synapse then keeps its own pre trace (stored lazily as the
step of the last arrival; the trace is ``exp(-(now - last) dt / tau_pre)``, 0 after 40
time constants), so a post spike potentiates exactly the inputs that reached it, and
depression uses the post trace at arrival.  ``emission`` (default) uses one trace per
pre-synaptic neuron, set when it fires.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..registry import ParamError, check
from .base import RULES, LearningRule, RuleParams


@dataclasses.dataclass
class PostPreParams(RuleParams):
    pass


@RULES.register("post_pre", PostPreParams)
class PostPre(LearningRule):
    """Pair STDP: potentiation at post spikes, depression at pre spikes."""

    def update(self, reward: torch.Tensor) -> None:
        c = self.conn
        s_pre, x_pre, s_post, x_post = c.source.s, c.source.x, c.target.s, c.target.x
        dw = c.outer(x_pre, s_post).mul_(self.nu_post * self.scale)
        dw.sub_(c.outer(s_pre, x_post), alpha=self.nu_pre * self.scale)
        self._finish(dw)


@RULES.register("weight_dependent_post_pre", PostPreParams)
class WeightDependentPostPre(LearningRule):
    """Pair STDP with soft bounds: updates scale with the distance to wmin / wmax."""

    def bind(self, conn) -> None:
        if math.isinf(conn.wmin) or math.isinf(conn.wmax):
            raise ParamError("learning", "weight_dependent_post_pre needs finite wmin and wmax on its connection")
        super().bind(conn)

    def update(self, reward: torch.Tensor) -> None:
        c = self.conn
        w = c.w
        plus = c.outer(c.source.x, c.target.s).mul_((c.wmax - w) * (self.nu_post * self.scale))
        minus = c.outer(c.source.s, c.target.x).mul_((w - c.wmin) * (self.nu_pre * self.scale))
        self._finish(plus.sub_(minus))


@RULES.register("hebbian", PostPreParams)
class Hebbian(LearningRule):
    """Hebbian STDP: both pre-then-post and post-then-pre pairings potentiate."""

    def update(self, reward: torch.Tensor) -> None:
        c = self.conn
        dw = c.outer(c.source.x, c.target.s).mul_(self.nu_post * self.scale)
        dw.add_(c.outer(c.source.s, c.target.x), alpha=self.nu_pre * self.scale)
        self._finish(dw)


@dataclasses.dataclass
class TripletParams(RuleParams):
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    pre_timing: str = "emission"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tau_pre_ms", "tau_post1_ms", "tau_post2_ms"):
            check(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        check(self.pre_timing in ("emission", "arrival"), "pre_timing",
              f"{self.pre_timing!r} is not one of: emission, arrival")


NEVER = -(1 << 62)  # "last arrival" of a synapse that has seen none


@RULES.register("triplet_post_pre", TripletParams)
class TripletPostPre(LearningRule):
    """Diehl & Cook (2015) triplet-style STDP with rule-owned pre / post1 / post2 traces."""

    needs_traces = False

    def __init__(self, params: TripletParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.d_pre = math.exp(-self.dt / params.tau_pre_ms)
        self.d_post1 = math.exp(-self.dt / params.tau_post1_ms)
        self.d_post2 = math.exp(-self.dt / params.tau_post2_ms)
        self.arrival = params.pre_timing == "arrival"
        self.clock = 0  # learning steps taken (arrival timing)
        # pre trace after k steps without arrival: d_pre^k; 0 from 40 time constants on
        k_max = int(math.ceil(40.0 * params.tau_pre_ms / self.dt))
        self.pre_table = (self.d_pre ** torch.arange(k_max + 1, dtype=torch.float64)).float()
        self.pre_table[-1] = 0.0

    def bind(self, conn) -> None:
        if self.arrival:
            from ..connections.dense import Dense

            if not isinstance(conn, Dense) or conn.delays is None:
                raise ParamError("pre_timing", "arrival timing needs a dense connection with per-synapse "
                                 "delays (delay_ms: {max_ms: D})")
        super().bind(conn)

    def allocate(self, batch: int) -> None:
        super().allocate(batch)
        dev = self.conn.w.device
        self.post1 = torch.zeros((batch, *self.conn.target.shape), device=dev)
        self.post2 = torch.zeros((batch, *self.conn.target.shape), device=dev)
        if self.arrival:
            c = self.conn
            self.pre = torch.zeros(0, device=dev)
            self.last = torch.full((batch, c.source.n, c.target.n), NEVER, dtype=torch.int64, device=dev)
            self.pre_table = self.pre_table.to(dev)
            self._rows = torch.arange(c.source.n, device=dev)[:, None].expand(c.source.n, c.target.n)
            self._now = (c.delays == 0)[None]
        else:
            self.pre = torch.zeros((batch, *self.conn.source.shape), device=dev)

    def reset(self) -> None:
        for t in (self.pre, self.post1, self.post2):
            t.zero_()
        if self.arrival:
            self.last.fill_(NEVER)

    def to(self, device: torch.device) -> None:
        self.pre_table = self.pre_table.to(device)
        if self.conn is not None and self.batch:
            self.allocate(self.batch)

    def arrivals(self) -> torch.Tensor:
        """``[B, n_pre, n_post]``: which synapses a pre-synaptic spike reaches this step
        (emitted ``delay`` steps ago; the delay line holds the spikes of earlier steps)."""
        c = self.conn
        L = c.max_delay + 1
        ring = c.ring.reshape(L, c.ring.shape[1], -1)
        late = ring[(c.pos - c.delays) % L, :, self._rows].permute(2, 0, 1)  # [B, n_pre, n_post]
        now = c.source.s.reshape(c.source.s.shape[0], -1, 1)
        return torch.where(self._now, now, late != 0)

    def update(self, reward: torch.Tensor) -> None:
        c = self.conn
        s_pre, s_post = c.source.s, c.target.s
        self.post1.mul_(self.d_post1)
        self.post2.mul_(self.d_post2)
        B = s_post.shape[0]
        if self.arrival:
            self.clock += 1
            arr = self.arrivals()
            self.last.masked_fill_(arr, self.clock)
            pre = self.pre_table[(self.clock - self.last).clamp_(max=self.pre_table.numel() - 1)]
            post = (s_post.to(self.post2.dtype) * self.post2).reshape(B, -1)
            dw = torch.einsum("bij,bj->ij", pre, post).mul_(self.nu_post * self.scale)
            dw.sub_(torch.einsum("bij,bj->ij", arr.to(pre.dtype), self.post1.reshape(B, -1)),
                    alpha=self.nu_pre * self.scale)
        else:
            self.pre.mul_(self.d_pre).masked_fill_(s_pre, 1.0)
            dw = c.outer(self.pre, s_post.to(self.post2.dtype) * self.post2).mul_(self.nu_post * self.scale)
            dw.sub_(c.outer(s_pre, self.post1), alpha=self.nu_pre * self.scale)
        self.post1.masked_fill_(s_post, 1.0)
        self.post2.masked_fill_(s_post, 1.0)
        self._finish(dw)
