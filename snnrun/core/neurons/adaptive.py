"""Adaptive-threshold LIF neurons: ``adaptive_lif`` (fast, per-sample adaptation) and
``diehl_cook`` (slow homeostatic threshold of Diehl & Cook 2015).

Both spike when ``v >= v_thresh + theta`` and grow ``theta`` by ``theta_plus_mv`` per
spike; between spikes ``theta <- theta * exp(-dt / tau_theta_ms)``.  The difference:

* ``adaptive_lif``: ``theta`` is fast state shaped ``[B, *shape]``, reset to 0 with the
  voltages before every sample, and adapts in test mode too.
* ``diehl_cook``: ``theta`` is slow state shaped ``[*shape]``, shared by the batch and
  kept across samples (it is in ``state_dict()``).  It only grows and decays while
  learning is on (frozen at test), growing by ``theta_plus * (spikes summed over the
  batch)``.  With ``one_spike`` (BindsNET's default) at most one neuron per sample emits a
  spike each step, chosen uniformly among those that crossed threshold; every crosser is
  still reset, made refractory and has its threshold raised.

``diehl_cook`` also takes ``lockout_ms``: after a spike the neuron cannot fire again for
that long, although its voltage integrates again once the (shorter) refractory period is
over.  This is the ``timer`` of Diehl & Cook's code: reset to 0 by a spike, growing at
0.1 ms per ms (``dtimer/dt = 0.1``) and required to exceed ``refrac_e = 5 ms``, so 50 ms
between an excitatory neuron's spikes (20 Hz at most).  A counter like the refractory one
(set to ``lockout_ms`` rounded up to whole steps, decremented each step) gates the spike.

``theta_offset_mv`` (Diehl & Cook's ``offset``, 20 mV in their code): ``theta`` starts at
the offset and the threshold is ``v_thresh + theta - offset``, so the neuron starts at
``v_thresh`` as with offset 0, but the decay ``theta / tau_theta`` acts on the offset too:
over the paper's 60,000 x 500 ms = 3 tau_theta of training, the 20 mV decays to 1 mV and
every threshold drifts down by up to 19 mV (minus what extra spikes add back).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from ..registry import check
from .base import NEURONS, decay, refractory_ms
from .lif import LIF, LIFParams


@dataclasses.dataclass
class AdaptiveLIFParams(LIFParams):
    theta_plus_mv: float = 0.05
    tau_theta_ms: float = 1e7

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.theta_plus_mv >= 0, "theta_plus_mv", f"must be >= 0, got {self.theta_plus_mv}")
        check(self.tau_theta_ms > 0, "tau_theta_ms", f"must be > 0, got {self.tau_theta_ms}")


@NEURONS.register("adaptive_lif", AdaptiveLIFParams)
class AdaptiveLIF(LIF):
    """LIF with a per-sample adaptive threshold ``theta`` (reset every sample)."""

    def __init__(self, params: AdaptiveLIFParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.theta_plus = float(params.theta_plus_mv)
        self.theta_decay = decay(self.dt, params.tau_theta_ms)
        self.thresh = torch.zeros(0)

    def _init_state(self) -> None:
        super()._init_state()
        self.theta = self.zeros()
        self.thresh = self.zeros()

    def _reset(self) -> None:
        super()._reset()
        self.theta.zero_()

    def threshold(self) -> torch.Tensor:
        return torch.add(self.theta, self.v_thresh, out=self.thresh)

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self._integrate(i_exc, i_inh)
        self.theta.mul_(self.theta_decay)
        self._fire()
        self.theta.add_(self.s, alpha=self.theta_plus)


@dataclasses.dataclass
class DiehlCookParams(LIFParams):
    v_reset_mv: float = -60.0
    theta_plus_mv: float = 0.05
    tau_theta_ms: float = 1e7
    one_spike: bool = True
    lockout_ms: float = 0.0
    theta_offset_mv: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.theta_plus_mv >= 0, "theta_plus_mv", f"must be >= 0, got {self.theta_plus_mv}")
        check(self.tau_theta_ms > 0, "tau_theta_ms", f"must be > 0, got {self.tau_theta_ms}")
        check(self.lockout_ms >= 0, "lockout_ms", f"must be >= 0, got {self.lockout_ms}")
        check(self.theta_offset_mv >= 0, "theta_offset_mv", f"must be >= 0, got {self.theta_offset_mv}")


@NEURONS.register("diehl_cook", DiehlCookParams)
class DiehlCook(LIF):
    """Diehl & Cook (2015) excitatory neurons: LIF with a slow, learned threshold ``theta``."""

    slow_state = ("theta",)

    def __init__(self, params: DiehlCookParams, dt: float = 1.0):
        self.theta = torch.zeros(0)
        super().__init__(params, dt)
        self.theta_plus = float(params.theta_plus_mv)
        self.theta_decay = decay(self.dt, params.tau_theta_ms)
        self.one_spike = bool(params.one_spike)
        self.lockout = refractory_ms(float(params.lockout_ms), self.dt)
        self.theta_offset = float(params.theta_offset_mv)
        self.v_thresh = self.v_thresh - self.theta_offset  # threshold v_thresh + theta - offset
        self.theta.fill_(self.theta_offset)
        self.lock_count = torch.zeros(0)

    def _init_slow(self, device: torch.device) -> None:
        self.theta = torch.full(self.shape, float(getattr(self, "theta_offset", 0.0)), device=device)

    def _init_state(self) -> None:
        super()._init_state()
        self.thresh = torch.zeros(self.shape, device=self.device)
        self.flat_s = self.s.view(self.batch, -1)
        self.noise = torch.zeros(self.batch, self.n, device=self.device)
        self.winner = torch.zeros(self.batch, 1, dtype=torch.long, device=self.device)
        self.lock_count = self.zeros() if self.lockout > 0 else torch.zeros(0, device=self.device)

    def _reset(self) -> None:
        super()._reset()
        if self.lockout > 0:
            self.lock_count.zero_()

    def threshold(self) -> torch.Tensor:
        return torch.add(self.theta, self.v_thresh, out=self.thresh)

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self._integrate(i_exc, i_inh)
        if self.learning:
            self.theta.mul_(self.theta_decay)
        if self.lockout > 0:
            self.lock_count.sub_(self.dt).clamp_(min=0.0)
        self._fire()
        if self.learning:
            self.theta.add_(self.s.sum(0), alpha=self.theta_plus)
        if self.one_spike:
            self._pick_one()

    def _gate(self) -> None:
        if self.lockout > 0:  # no spike within lockout_ms of the last one
            self.s.logical_and_(self.lock_count < self.refrac_tol)
            self.lock_count.masked_fill_(self.s, self.lockout)

    def _pick_one(self) -> None:
        """Keep one uniformly chosen spike per sample among the crossers (no host sync)."""
        flat = self.flat_s
        self.noise.uniform_()
        self.noise.masked_fill_(~flat, -1.0)
        torch.argmax(self.noise, dim=1, keepdim=True, out=self.winner)
        keep = flat.gather(1, self.winner)  # crossers exist in this sample?
        flat.zero_()
        flat.scatter_(1, self.winner, keep)
