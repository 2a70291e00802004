"""Leaky integrate-and-fire neurons, current- or conductance-based.

Current-based (``synapse="current"``, BindsNET's ``LIFNodes`` update order), per step::

    v <- v_rest + (v - v_rest) * exp(-dt / tau_mem_ms)
    I <- 0                                  where the neuron is refractory
    v <- v + I
    s <- v >= v_thresh
    v <- v_reset, refractory for refrac_ms   where s  (input blocked for ceil(refrac_ms/dt) steps)
    v <- max(v, v_lbound)                   if v_lbound is set

Conductance-based (``synapse="conductance"``, the Diehl & Cook 2015 paper), per step::

    g_e <- g_e + I_exc ;  g_i <- g_i + I_inh
    tau_mem dv/dt = (v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v), integrated exactly over
    the step with each conductance replaced by its exact mean over the step,
    gbar = g tau/dt (1 - exp(-dt/tau)) (unchanged while refractory):
        g = 1 + gbar_e + gbar_i ;  v_inf = (v_rest + gbar_e E_exc + gbar_i E_inh) / g
        v <- v_inf + (v - v_inf) exp(-g dt / tau_mem_ms)
    g_e <- g_e exp(-dt/tau_ge_ms) ;  g_i <- g_i exp(-dt/tau_gi_ms)
    The step is stable for any conductance (forward Euler is not), and an input pulse w
    delivers exactly the charge of the continuous model (integral of g_e = w tau_ge):
    holding g at its start-of-step value instead would give 27 % more excitation at
    dt = 0.5 ms, tau_ge = 1 ms.

    ``integration: held`` holds each conductance at its start-of-step value instead of its
    mean (27 % more charge per excitatory pulse at dt 0.5 ms, tau_ge 1 ms; the scheme of
    the first measured ``diehl_cook`` figures).

    ``integration: euler`` instead steps every variable by forward Euler, as Brian 1 did for
    the Diehl & Cook (2015) paper's simulations (dt 0.5 ms), for faithful reproduction::

        v <- v + dt/tau_mem [(v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v)]
        g_e <- g_e (1 - dt/tau_ge) ;  g_i <- g_i (1 - dt/tau_gi)

    with v kept within [E_inh, E_exc] (where the continuous model keeps it; Euler would
    overshoot, and diverge once dt/tau_mem (1 + g_e + g_i) > 2).
    then threshold, reset and refractoriness as above.

With constant input current I and no spikes, the current-based voltage follows the
closed form ``v_t = v_rest + I (1 - a^t) / (1 - a)`` with ``a = exp(-dt/tau)``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from ..registry import check
from .base import NEURONS, NeuronParams, Population, decay


G_TINY = 1e-30  # conductances are flushed to zero below this


@dataclasses.dataclass
class LIFParams(NeuronParams):
    v_rest_mv: float = -65.0
    v_reset_mv: float = -65.0
    v_thresh_mv: float = -52.0
    tau_mem_ms: float = 100.0
    refrac_ms: float = 5.0
    v_lbound_mv: Optional[float] = None
    synapse: str = "current"
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    e_exc_mv: float = 0.0
    e_inh_mv: float = -100.0
    integration: str = "exact"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.tau_mem_ms > 0, "tau_mem_ms", f"must be > 0, got {self.tau_mem_ms}")
        check(self.integration in ("exact", "held", "euler"), "integration",
              f"{self.integration!r} is not one of: exact, held, euler")
        check(self.synapse in ("current", "conductance"), "synapse", f"{self.synapse!r} is not one of: current, conductance")
        check(self.tau_ge_ms > 0, "tau_ge_ms", f"must be > 0, got {self.tau_ge_ms}")
        check(self.tau_gi_ms > 0, "tau_gi_ms", f"must be > 0, got {self.tau_gi_ms}")


@NEURONS.register("lif", LIFParams)
class LIF(Population):
    """Leaky integrate-and-fire neurons (current- or conductance-based)."""

    def __init__(self, params: LIFParams, dt: float = 1.0):
        super().__init__(params, dt)
        p = params
        self.v_rest = float(p.v_rest_mv)
        self.v_reset = float(p.v_reset_mv)
        self.v_thresh = float(p.v_thresh_mv)
        self.decay = decay(self.dt, p.tau_mem_ms)
        self.v_lbound = p.v_lbound_mv
        self.conductance = p.synapse == "conductance"
        self.dt_over_tau = self.dt / p.tau_mem_ms
        self.ge_decay = decay(self.dt, p.tau_ge_ms)
        self.gi_decay = decay(self.dt, p.tau_gi_ms)
        # mean of an exponentially decaying conductance over one step, relative to its start
        self.ge_mean = p.tau_ge_ms / self.dt * (1.0 - self.ge_decay)
        self.gi_mean = p.tau_gi_ms / self.dt * (1.0 - self.gi_decay)
        self.euler = p.integration == "euler"
        if p.integration == "held":
            self.ge_mean = self.gi_mean = 1.0
        if self.euler:
            self.ge_decay = 1.0 - self.dt / p.tau_ge_ms
            self.gi_decay = 1.0 - self.dt / p.tau_gi_ms
            check(min(self.ge_decay, self.gi_decay) >= 0, "integration",
                  f"euler needs dt <= tau_ge_ms and tau_gi_ms (dt = {self.dt} ms)")
        self.e_exc = float(p.e_exc_mv)
        self.e_inh = float(p.e_inh_mv)
        self.v = torch.zeros(0)

    def _init_state(self) -> None:
        self.v = self.zeros()
        if self.conductance:
            self.ge = self.zeros()
            self.gi = self.zeros()

    def _reset(self) -> None:
        self.v.fill_(self.v_rest)
        if self.conductance:
            self.ge.zero_()
            self.gi.zero_()

    def threshold(self) -> torch.Tensor | float:
        return self.v_thresh

    def _integrate(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        """Leak and input integration with refractory blocking (no threshold)."""
        active = self._active()
        if self.conductance:
            self.ge.add_(i_exc)
            if i_inh is not None:
                self.gi.add_(i_inh)
            if self.euler:  # Brian 1's scheme, kept between the reversal potentials
                dv = (self.v_rest - self.v) + self.ge * (self.e_exc - self.v) + self.gi * (self.e_inh - self.v)
                v_new = (self.v + dv * self.dt_over_tau).clamp_(min=self.e_inh, max=self.e_exc)
            else:
                # exact over the step with g_e, g_i held at their step means ("held": start
                # values): stable for any conductance, where forward Euler diverges once
                # dt/tau * (1 + g_e + g_i) > 2 (many inhibitory neurons firing together)
                ge = self.ge * self.ge_mean
                gi = self.gi * self.gi_mean
                g = 1.0 + ge + gi
                v_inf = (self.v_rest + ge * self.e_exc + gi * self.e_inh) / g
                v_new = v_inf + (self.v - v_inf) * torch.exp(g * -self.dt_over_tau)
            torch.where(active, v_new, self.v, out=self.v)
            # decayed conductances below G_TINY are set to 0: they would otherwise become
            # denormal floats, which the CPU processes ~100x slower
            for g_, d_ in ((self.ge, self.ge_decay), (self.gi, self.gi_decay)):
                g_.mul_(d_)
                g_.masked_fill_(g_.abs() < G_TINY, 0.0)
        else:
            self.v.sub_(self.v_rest).mul_(self.decay).add_(self.v_rest)
            self.v.addcmul_(i_exc, active)
        if self.refrac > 0:
            self.refrac_count.sub_(self.dt).clamp_(min=0.0)

    def _fire(self) -> None:
        torch.ge(self.v, self.threshold(), out=self.s)
        self._gate()
        self._start_refractory()
        self.v.masked_fill_(self.s, self.v_reset)
        if self.v_lbound is not None:
            self.v.clamp_(min=self.v_lbound)

    def _gate(self) -> None:
        """Veto threshold crossings in ``s`` before reset (subclasses, e.g. a lockout)."""

    def _update(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self._integrate(i_exc, i_inh)
        self._fire()


@dataclasses.dataclass
class IFParams(NeuronParams):
    v_rest_mv: float = -65.0
    v_reset_mv: float = -65.0
    v_thresh_mv: float = -52.0
    refrac_ms: float = 5.0
    v_lbound_mv: Optional[float] = None


@NEURONS.register("if", IFParams)
class IF(LIF):
    """Integrate-and-fire neurons without leak: ``v <- v + I``; spike and reset as LIF."""

    def __init__(self, params: IFParams, dt: float = 1.0):
        Population.__init__(self, params, dt)
        self.v_rest = float(params.v_rest_mv)
        self.v_reset = float(params.v_reset_mv)
        self.v_thresh = float(params.v_thresh_mv)
        self.v_lbound = params.v_lbound_mv
        self.decay = 1.0
        self.conductance = False
        self.v = torch.zeros(0)

    def _integrate(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self.v.addcmul_(i_exc, self._active())
        if self.refrac > 0:
            self.refrac_count.sub_(self.dt).clamp_(min=0.0)


@dataclasses.dataclass
class CurrentLIFParams(LIFParams):
    tau_syn_ms: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.synapse == "current", "synapse", "current_lif is current-based; use kind lif for conductance synapses")
        check(self.tau_syn_ms > 0, "tau_syn_ms", f"must be > 0, got {self.tau_syn_ms}")


@NEURONS.register("current_lif", CurrentLIFParams)
class CurrentLIF(LIF):
    """LIF with an exponentially decaying synaptic current ``i``::

        i <- i * exp(-dt / tau_syn_ms) + I
        v <- v_rest + (v - v_rest) exp(-dt / tau_mem_ms) + i     (i blocked while refractory)
    """

    def __init__(self, params: CurrentLIFParams, dt: float = 1.0):
        super().__init__(params, dt)
        self.syn_decay = decay(self.dt, params.tau_syn_ms)
        self.i = torch.zeros(0)

    def _init_state(self) -> None:
        super()._init_state()
        self.i = self.zeros()

    def _reset(self) -> None:
        super()._reset()
        self.i.zero_()

    def _integrate(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor]) -> None:
        self.i.mul_(self.syn_decay).add_(i_exc)
        super()._integrate(self.i, None)
