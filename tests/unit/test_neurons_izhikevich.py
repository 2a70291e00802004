"""Izhikevich neurons against an independent numpy implementation of the reference code
(Izhikevich 2003, "Simple model of spiking neurons", Matlab listing)::

    fired = v >= 30;  v(fired) = c;  u(fired) += d        # top of the loop
    v += 0.5 dt (0.04 v^2 + 5 v + 140 - u + I)           # two half steps
    v += 0.5 dt (0.04 v^2 + 5 v + 140 - u + I)
    u += dt a (b v - u)

The reference detects at the top of iteration t+1 the crossing produced by iteration t;
the engine thresholds at the end of the step, so reference step t <-> engine step t.

Precision note: one step after a crossing v is hundreds of mV and enters u, so tiny
rounding differences move later spikes.  The float64 reference therefore pins the first
spikes exactly and the whole train statistically; a float32 run of the same reference
(same rounding as the engine's float32 tensors) must match the engine spike for spike.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnrun.core import Network, Recorder

PRESETS = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
}


def reference(a, b, c, d, I, T, dt, dtype=np.float64):
    """Spike steps (0-based) and membrane trace of the reference loop above."""
    f = dtype
    v, u = f(-65.0), f(b) * f(-65.0)
    half, adt = f(0.5 * dt), f(a * dt)
    spikes, vs = [], []
    fired = False
    for t in range(T + 1):
        if fired:  # spike produced by iteration t - 1
            spikes.append(t - 1)
            v, u = f(c), f(u + f(d))
        if t == T:
            break
        for _ in range(2):
            v = f(v + (f(0.04) * v * v + f(5.0) * v + f(140.0) - u + f(I)) * half)
        u = f(u + (f(b) * v - u) * adt)
        vs.append(float(v))
        fired = v >= 30.0
    return np.array(spikes), np.array(vs)


def engine(dt: float, T: int, I: float = 10.0):
    net = Network(dt_ms=dt)
    for p in PRESETS:
        net.add_population(p, "izhikevich", n=1, preset=p)
    rec = Recorder({p: ["s", "v"] for p in PRESETS})
    net.run({p: torch.full((T, 1, 1), I) for p in PRESETS}, recorders=[rec])
    return {p: (torch.nonzero(rec.get(p, "s")[:, 0, 0]).flatten().numpy(), rec.get(p, "v")[:, 0, 0].double().numpy()) for p in PRESETS}


@pytest.fixture(scope="module")
def runs():
    """1000 ms at dt = 1 and at dt = 0.25 (used for the firing-pattern checks)."""
    return {dt: engine(dt, round(1000 / dt)) for dt in (1.0, 0.25)}


@pytest.mark.parametrize("dt", [1.0, 0.25])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_spike_times_match_reference(runs, preset, dt):
    a, b, c, d = PRESETS[preset]
    T = round(1000 / dt)
    got, v = runs[dt][preset]
    ref64, v64 = reference(a, b, c, d, 10.0, T, dt)
    ref32, _ = reference(a, b, c, d, 10.0, T, dt, np.float32)
    # first five spikes exactly as in float64
    assert len(got) >= 5
    assert got[:5].tolist() == ref64[:5].tolist()
    # membrane trace before the first spike agrees to float32 accuracy
    k = ref64[0]
    np.testing.assert_allclose(v[:k], v64[:k], rtol=0, atol=1e-3)
    # whole second: the spike count agrees within 2 %, and the float32 reference exactly
    assert abs(len(got) - len(ref64)) <= max(1, 0.02 * len(ref64))
    assert got.tolist() == ref32.tolist()


def isis_ms(runs, preset, dt=0.25):
    s, _ = runs[dt][preset]
    return np.diff(s) * dt


def test_regular_spiking_tonic_with_adaptation(runs):
    """RS (d = 8): u jumps by 8 per spike and recovers slowly (a = 0.02), so the first ISI
    is short and the following ones lengthen, then settle to a steady tonic rate
    (reference at dt = 0.25: 24.75 ms, then ~46 ms)."""
    isi = isis_ms(runs, "regular_spiking")
    assert len(isi) >= 15  # fires all through the second (tonic)
    assert isi[1] > 1.5 * isi[0]  # spike-frequency adaptation
    assert np.all(np.diff(isi[:3]) >= -0.25 - 1e-9)  # non-decreasing at the start (1-step slack)
    tail = isi[5:]
    assert tail.max() - tail.min() <= 1.0  # settled: steady ISIs within 1 ms
    assert 30.0 < tail.mean() < 60.0


def test_fast_spiking_faster_and_regular(runs):
    """FS (a = 0.1, d = 2): u recovers five times faster and jumps only by 2, so it fires at a
    much higher rate than RS and settles within a few spikes to a regular train; the ISI
    lengthening is a few ms, against ~20 ms for RS."""
    fs, rs = isis_ms(runs, "fast_spiking"), isis_ms(runs, "regular_spiking")
    assert len(fs) > 3 * len(rs)
    assert fs.max() < 12.0
    steady = fs[3:]
    assert steady.std() / steady.mean() < 0.1
    assert (steady.mean() - fs[0]) < 0.3 * (rs[5:].mean() - rs[0])


def test_chattering_bursts(runs):
    """CH (c = -50, d = 2): reset high, so after a spike v re-crosses quickly (intra-burst ISIs
    of a few ms) until u has built up, then a long pause: ISIs are bimodal."""
    isi = isis_ms(runs, "chattering")
    short, long_ = isi[isi < 10.0], isi[isi > 30.0]
    assert len(short) + len(long_) == len(isi)  # nothing in between: bimodal
    assert len(long_) >= 10 and len(short) >= 2 * len(long_)  # bursts of >= 3 spikes
    assert long_.min() > 4 * short.max()


def test_custom_preset_and_reset_values():
    """preset custom uses the given (a, b, c, d); reset state is v = v_init, u = b v_init.
    Driving one step with I large enough to cross: v <- c, u <- u' + d, with u' the
    integrated recovery variable computed by hand."""
    from snnrun.core.neurons import Izhikevich, IzhikevichParams

    pop = Izhikevich(IzhikevichParams(n=1, preset="custom", a=0.5, b=0.25, c=-55.0, d=3.0), dt=1.0)
    pop.allocate(1)
    assert pop.v.item() == -65.0 and pop.u.item() == pytest.approx(-16.25)
    pop.step(torch.tensor([[1000.0]]))
    # half step 1: v = -65 + 0.5 (169 - 325 + 140 + 16.25 + 1000) = 435.125
    v = -65.0 + 0.5 * (0.04 * 65 ** 2 - 325 + 140 + 16.25 + 1000)
    v = v + 0.5 * (0.04 * v * v + 5 * v + 140 + 16.25 + 1000)
    u = -16.25 + 0.5 * (0.25 * v + 16.25)
    assert pop.s.item()
    assert pop.v.item() == -55.0
    assert pop.u.item() == pytest.approx(u + 3.0, rel=1e-5)
