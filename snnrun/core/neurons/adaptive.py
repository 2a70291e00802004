"""Adaptive-threshold LIF neurons: ``adaptive_lif`` (fast, per-sample adaptation) and
``diehl_cook`` (slow homeostatic threshold of Diehl & Cook 2015).  Both are ``lif`` (every
``lif`` parameter applies, conductance synapses included) with a threshold ``theta``:

* ``adaptive_lif``: ``theta`` is fast state, reset to 0 with the voltages before every
  sample, adapting in test mode too::

      theta <- theta exp(-dt / tau_theta_ms)             (after the voltage update)
      s = v >= v_thresh + theta ;  theta <- theta + theta_plus_mv where s

* ``diehl_cook``: ``theta`` is slow state, one per neuron, shared by the batch and kept
  across samples (in ``state_dict()``).  It changes only while learning (frozen at test)::

      theta <- theta exp(-dt / tau_theta_ms)             (before the voltage update)
      s = v >= v_thresh + theta - theta_offset_mv
      theta <- theta + theta_plus_mv x (crossings summed over the batch)

  ``one_spike`` (BindsNET's default, on here) keeps one spike per sample and step.
  ``lockout_ms``: after a spike the neuron cannot fire again for that long, although its
  voltage integrates again once the (shorter) refractory period is over.  This is the
  ``timer`` of Diehl & Cook's code (reset by a spike, growing at 0.1 ms per ms, required to
  exceed ``refrac_e = 5 ms``: 50 ms between spikes); a counter like the refractory one
  (set to ``lockout_ms`` rounded up to whole steps, decremented each step) gates the spike.
  ``theta_offset_mv`` (Diehl & Cook's ``offset``, 20 mV in their code): ``theta`` starts at
  the offset, so the neuron starts at ``v_thresh``, but the decay acts on the offset too:
  over the paper's 60,000 x 500 ms = 3 tau_theta of training the 20 mV decay to 1 mV and
  every threshold drifts down by up to 19 mV.
"""

from __future__ import annotations

from ..models.neuron import Param
from .base import register_neuron
from .lif import LIF_MODEL

THETA_PARAMS = {"theta_plus_mv": Param(0.05, check=">= 0"), "tau_theta_ms": Param(1e7, check="> 0")}

ADAPTIVE_LIF_MODEL = LIF_MODEL.replace(
    kind="adaptive_lif",
    doc="LIF with a per-sample adaptive threshold ``theta`` (reset every sample); see the module docstring.",
    params={**LIF_MODEL.params, **THETA_PARAMS},
    constants={**LIF_MODEL.constants, "theta_decay": "exp(-dt / tau_theta_ms)"},
    state={**LIF_MODEL.state, "theta": 0.0},
    update=LIF_MODEL.update + "theta = theta * theta_decay\n",
    threshold="v >= theta + v_thresh_mv",
    reset="v = v_reset_mv\ntheta = theta + theta_plus_mv",
)

DIEHL_COOK_MODEL = LIF_MODEL.replace(
    kind="diehl_cook",
    doc="Diehl & Cook (2015) excitatory neurons: LIF with a slow, learned threshold ``theta``; "
        "see the module docstring.",
    params={**LIF_MODEL.params, "v_reset_mv": Param(-60.0), **THETA_PARAMS,
            "lockout_ms": Param(0.0, check=">= 0"), "theta_offset_mv": Param(0.0, check=">= 0")},
    constants={**LIF_MODEL.constants, "theta_decay": "exp(-dt / tau_theta_ms)",
               "v_thresh_eff": "v_thresh_mv - theta_offset_mv",
               "lockout": "ceil(lockout_ms / dt - 1e-6) * dt", "half_dt": "0.5 * dt"},
    state={**LIF_MODEL.state, "lock_count": 0.0},
    slow={"theta": "theta_offset_mv"},
    slow_update="theta = theta * theta_decay",
    update=LIF_MODEL.update + """
if lockout_ms > 0:
    lock_count = max(lock_count - dt, 0.0)
""",
    threshold="v >= theta + v_thresh_eff and (lockout_ms <= 0 or lock_count < half_dt)",
    reset="""
v = v_reset_mv
theta += theta_plus_mv
if lockout_ms > 0:
    lock_count = lockout
""",
    defaults={"refrac_ms": 5.0, "one_spike": True},
)

AdaptiveLIF = register_neuron(ADAPTIVE_LIF_MODEL, "AdaptiveLIF")
DiehlCook = register_neuron(DIEHL_COOK_MODEL)
AdaptiveLIFParams, DiehlCookParams = AdaptiveLIF.Params, DiehlCook.Params
