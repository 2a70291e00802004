"""Models written only in YAML (``kind: equations``): a copy of a built-in equals it bit for
bit on every backend, and a model no built-in has matches a NumPy reference written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core.fused import FusedSimulator
from snnrun.core.simulate import TorchSimulator

LIF_COPY = """
kind: equations
n: 10
traces: true
params: {v_rest_mv: -65.0, v_reset_mv: -65.0, v_thresh_mv: -52.0, tau_mem_ms: 100.0}
constants: {decay: "exp(-dt / tau_mem_ms)"}
state: {v: v_rest_mv}
update: |
  v = (v - v_rest_mv) * decay + v_rest_mv
  if active:
      v = v + I
threshold: v >= v_thresh_mv
reset: v = v_reset_mv
refrac_ms: 5.0
"""

POST_PRE_COPY = """
kind: equations
params: {nu_pre: 2.0e-3, nu_post: 2.0e-2}
on_pre: w -= nu_pre * x_post
on_post: w += nu_post * x_pre
"""


def net_cfg(pop: dict, rule: dict) -> dict:
    return {"populations": {"X": {"kind": "input", "n": 40, "traces": True}, "E": pop},
            "connections": {"XE": {"kind": "dense", "source": "X", "target": "E", "weight": {"dist": "uniform", "high": 4.0},
                                   "wmin": 0.0, "wmax": 4.0, "learning": rule},
                            "EE": {"kind": "dense", "source": "E", "target": "E", "weight": -3.0, "mask": "all_but_self"}}}


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_yaml_copies_of_lif_and_post_pre_equal_the_built_ins_bit_for_bit(backend):
    builtin = net_cfg({"kind": "lif", "n": 10, "traces": True}, {"kind": "post_pre", "nu_pre": 2e-3, "nu_post": 2e-2})
    copy = net_cfg(yaml.safe_load(LIF_COPY), yaml.safe_load(POST_PRE_COPY))
    a, b = build_network(builtin, seed=1), build_network(copy, seed=1)
    assert b.populations["E"].kind == "equations" and b.connections["XE"].rule.kind == "equations"
    sim = FusedSimulator if backend == "numba" else TorchSimulator
    sa, sb = sim(a, ["E"]), sim(b, ["E"])
    x = torch.rand(100, 2, 40, generator=torch.Generator().manual_seed(0)) < 0.2
    fired = 0
    for t in range(0, 100, 10):  # presentations of 10 steps, state carried over
        ca, cb = sa.run({"X": x[t:t + 10]}, True)["E"], sb.run({"X": x[t:t + 10]}, True)["E"]
        assert torch.equal(ca, cb)
        assert torch.equal(a.populations["E"].v, b.populations["E"].v)
        assert torch.equal(a.populations["E"].x, b.populations["E"].x)
        assert torch.equal(a.weights("XE"), b.weights("XE"))
        fired += int(ca.sum())
    assert fired > 30


ADEX = """
kind: equations
n: 3
params: {C: 281.0, g_L: 30.0, E_L: -70.6, V_T: -50.4, Delta_T: 2.0, tau_w: 144.0, a: 4.0, b: 80.5,
         V_reset: -70.6, V_peak: 20.0}
state: {v: E_L, w: 0.0}
update: |
  dv = (-g_L * (v - E_L) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w + I) / C
  w = w + dt * (a * (v - E_L) - w) / tau_w
  v = v + dt * dv
threshold: v >= V_peak
reset: |
  v = V_reset
  w = w + b
"""


def adex_numpy(current: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Brette & Gerstner (2005) adaptive exponential IF, forward Euler in float32, the same
    operations in the same order: C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T) /
    Delta_T) - w + I, tau_w dw/dt = a (v - E_L) - w; at v >= V_peak: v = V_reset, w += b."""
    f = np.float32
    C, gL, EL, VT, DT, tw, a, b, Vr, Vp = map(f, (281.0, 30.0, -70.6, -50.4, 2.0, 144.0, 4.0, 80.5, -70.6, 20.0))
    dt = f(dt)
    v = np.full(current.shape[1], EL, np.float32)
    w = np.zeros(current.shape[1], np.float32)
    vs, spikes = [], []
    for I in current.astype(np.float32):
        dv = (-gL * (v - EL) + gL * DT * np.exp((v - VT) / DT) - w + I) / C
        w = w + dt * (a * (v - EL) - w) / tw
        v = v + dt * dv
        s = v >= Vp
        v = np.where(s, Vr, v).astype(np.float32)
        w = np.where(s, w + b, w).astype(np.float32)
        vs.append(v.copy())
        spikes.append(s)
    return np.array(vs), np.array(spikes)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_adex_written_in_yaml_matches_a_numpy_reference(backend):
    """Three AdEx neurons (Brette & Gerstner's cortical parameters) at 0.7, 1.0 and 1.5 nA
    for 400 ms at dt = 0.1 ms: regular spiking with adaptation (the interspike intervals
    grow), spikes identical to NumPy's (every step on torch, counts and the final voltage
    from one fused-kernel call), voltages to float32 rounding."""
    dt, T = 0.1, 4000
    net = build_network({"populations": {"E": yaml.safe_load(ADEX)}, "connections": {}}, dt_ms=dt)
    current = np.tile(np.array([700.0, 1000.0, 1500.0], np.float32), (T, 1))
    v_ref, s_ref = adex_numpy(current, dt)
    inp = {"E": torch.as_tensor(current).view(T, 1, 3)}
    if backend == "torch":
        from snnrun.core import Recorder

        rec = Recorder({"E": ["s", "v"]})
        net.run(inp, recorders=[rec])
        s, v = rec.get("E", "s")[:, 0].numpy(), rec.get("E", "v")[:, 0].numpy()
        np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-3)
        assert np.array_equal(s, s_ref)
    else:
        counts = FusedSimulator(net, ["E"]).run(inp, False)["E"][0].numpy()
        assert np.array_equal(counts, s_ref.sum(0))
        np.testing.assert_allclose(net.populations["E"].v[0].numpy(), v_ref[-1], rtol=1e-4, atol=1e-3)
        s = s_ref
    counts = s.sum(0)
    assert counts[0] < counts[1] < counts[2] and counts[0] >= 3
    isi = np.diff(np.flatnonzero(s[:, 2]))
    assert isi[-1] > isi[0], "spike-frequency adaptation: intervals grow"
