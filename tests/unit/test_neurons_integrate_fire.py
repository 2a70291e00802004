"""IF / LIF / current_lif / conductance LIF dynamics against closed-form solutions.

Engine order per step (lif.py docstring, BindsNET's LIFNodes):
leak ``v <- v_rest + (v - v_rest) a`` (a = exp(-dt/tau)); input blocked while the
refractory counter is > 0; ``v <- v + I``; ``s = v >= v_thresh``; reset; on a spike the
counter is set to ``refrac_ms`` and it is decremented by ``dt`` every step, so the input
is blocked for exactly ``refrac_ms / dt`` following steps.
"""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.core import Network, Recorder


def spike_steps(s: torch.Tensor) -> list[int]:
    return torch.nonzero(s.reshape(-1)).flatten().tolist()


def run_current(kind: str, currents: list[float], T: int, dt: float, **params) -> Recorder:
    """One population, neuron k driven by the constant current ``currents[k]`` for T steps."""
    net = Network(dt_ms=dt)
    net.add_population("N", kind, n=len(currents), **params)
    rec = Recorder({"N": ["v", "s"]})
    cur = torch.tensor(currents, dtype=torch.float32).expand(T, 1, len(currents)).contiguous()
    net.run({"N": cur}, recorders=[rec])
    return rec


# --------------------------------------------------------------------------- subthreshold
@pytest.mark.parametrize("dt", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("tau", [10.0, 20.0, 100.0])
def test_lif_subthreshold_matches_exponential_solution(dt, tau):
    """v_t - v_rest = a (v_{t-1} - v_rest) + I with v_0 = v_rest  =>
    v_t = v_rest + I (1 - a^t) / (1 - a),  a = exp(-dt / tau)   (t = 1, 2, ...).
    Threshold is out of reach so no spike interferes."""
    currents = [0.0, 0.05, 0.2, 0.5]
    T = 300
    rec = run_current("lif", currents, T, dt, tau_mem_ms=tau, v_rest_mv=-65.0, v_thresh_mv=1e6, refrac_ms=0.0)
    v = rec.get("N", "v")[:, 0, :].double()
    a = math.exp(-dt / tau)
    t = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
    I = torch.tensor(currents, dtype=torch.float64)[None, :]
    expected = -65.0 + I * (1 - a ** t) / (1 - a)
    torch.testing.assert_close(v, expected, rtol=0, atol=5e-4)
    assert not rec.get("N", "s").any()
    # the linearised decay 1 - dt/tau would be off by far more than the tolerance
    wrong = -65.0 + I * (1 - (1 - dt / tau) ** t) / (dt / tau)
    assert (v - wrong).abs().max() > 4 * 5e-4


@pytest.mark.parametrize("dt,tau", [(1.0, 20.0), (0.5, 10.0)])
def test_lif_relaxes_to_rest_exponentially(dt, tau):
    """No input, v_0 = v0: v_t = v_rest + (v0 - v_rest) a^t."""
    from snnrun.core.neurons import LIF, LIFParams

    pop = LIF(LIFParams(n=2, v_rest_mv=-65.0, v_thresh_mv=1e6, tau_mem_ms=tau, refrac_ms=0.0), dt=dt)
    pop.allocate(1)
    pop.v.copy_(torch.tensor([[-40.0, -80.0]]))
    a = math.exp(-dt / tau)
    zero = torch.zeros(1, 2)
    for t in range(1, 51):
        pop.step(zero)
        expected = torch.tensor([[-65.0 + 25.0 * a ** t, -65.0 - 15.0 * a ** t]])
        torch.testing.assert_close(pop.v, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_if_integrates_without_leak(dt):
    """IF: v_t = v_rest + I t (no leak, whatever dt).  Binary fractions make every partial sum
    exactly representable in float32, so the match is exact."""
    currents = [0.0, 2.0 ** -6, 0.0625]
    T = 200
    rec = run_current("if", currents, T, dt, v_thresh_mv=1e6, refrac_ms=0.0)
    t = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
    expected = -65.0 + torch.tensor(currents, dtype=torch.float64)[None] * t
    assert torch.equal(rec.get("N", "v")[:, 0].double(), expected)


@pytest.mark.parametrize("dt,tau_m,tau_s", [(1.0, 20.0, 2.0), (0.5, 10.0, 5.0)])
def test_current_lif_closed_form(dt, tau_m, tau_s):
    """current_lif: i_t = b i_{t-1} + I  =>  i_t = I (1 - b^t) / (1 - b);
    v_t - v_rest = sum_{k=1..t} a^{t-k} i_k
                 = I / (1 - b) * [(1 - a^t) / (1 - a) - b (a^t - b^t) / (a - b)]."""
    I = 0.3
    T = 150
    rec = run_current("current_lif", [I], T, dt, tau_mem_ms=tau_m, tau_syn_ms=tau_s, v_thresh_mv=1e6, refrac_ms=0.0)
    a, b = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
    expected = [
        -65.0 + I / (1 - b) * ((1 - a ** t) / (1 - a) - b * (a ** t - b ** t) / (a - b)) for t in range(1, T + 1)
    ]
    torch.testing.assert_close(rec.get("N", "v")[:, 0, 0].double(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=5e-4)


def test_conductance_lif_first_steps_by_hand():
    """Conductance LIF, one excitatory pulse g = 0.1 at step 1, dt = 1, tau_mem = 100, tau_ge = 1,
    exact integration with the conductance held at its mean over the step,
    gbar = g (1 - e^-1) (tau_ge / dt = 1):
    step 1: ge = 0.1; g = 1 + 0.1 (1 - e^-1); v_inf = -65 / g
            v1 = v_inf + (-65 - v_inf) e^{-g / 100};  ge <- 0.1 e^-1
    step 2: ge = 0.1 e^-1 (no new input); same formula from v1."""
    from snnrun.core.neurons import LIF, LIFParams

    pop = LIF(LIFParams(n=1, synapse="conductance", tau_mem_ms=100.0, tau_ge_ms=1.0, refrac_ms=0.0), dt=1.0)
    pop.allocate(1)
    pop.step(torch.tensor([[0.1]]), torch.zeros(1, 1))
    m = 1.0 - math.exp(-1.0)
    g = 1.0 + 0.1 * m
    v_inf = -65.0 / g
    v1 = v_inf + (-65.0 - v_inf) * math.exp(-g / 100.0)
    assert v1 == pytest.approx(-64.9591, abs=1e-4)  # ~ Euler on the continuous model: -65 + 65 * 0.0632 / 100
    assert pop.v.item() == pytest.approx(v1, abs=1e-5)
    assert pop.ge.item() == pytest.approx(0.1 * math.exp(-1.0), rel=1e-6)
    pop.step(torch.zeros(1, 1), torch.zeros(1, 1))
    g = 1.0 + 0.1 * math.exp(-1.0) * m
    v_inf = -65.0 / g
    v2 = v_inf + (v1 - v_inf) * math.exp(-g / 100.0)
    assert pop.v.item() == pytest.approx(v2, abs=1e-5)


@pytest.mark.parametrize("tau", [100.0, 10.0])
def test_conductance_lif_without_conductance_is_the_leak_bit_for_bit(tau):
    """With g_e = g_i = 0 the exact step has g = 1 and v_inf = v_rest, so it is the leak
    ``v <- v_rest + (v - v_rest) exp(-dt / tau)``: the model takes that branch (no exp or
    division per neuron); the values equal the general formula's in float32, bit for bit,
    and a pulse returns to the general formula until the conductance has decayed to 0."""
    import numpy as np

    from snnrun.core.neurons import LIF, LIFParams

    dt = 0.5  # the paper's dt and time constants (Ae, Ai)
    pop = LIF(LIFParams(n=3, synapse="conductance", tau_mem_ms=tau, v_thresh_mv=0.0, refrac_ms=0.0), dt=dt)
    pop.allocate(1)
    pop.v.copy_(torch.tensor([[-50.0, -60.0, -80.0]]))
    v = pop.v.numpy().astype(np.float32).copy()
    # the general formula's factor as torch computes it: exp(g * (-dt/tau)) with g = 1, in float32
    e = torch.exp(torch.tensor(-(dt / tau), dtype=torch.float32)).numpy()
    rest = np.float32(-65.0)
    for _ in range(40):
        pop.step(torch.zeros(1, 3), torch.zeros(1, 3))
        v = rest + (v - rest) * e  # the general formula with g = 1, v_inf = v_rest
        assert np.array_equal(pop.v.numpy(), v)
    assert float(pop.v[0, 0]) == pytest.approx(-65.0 + 15.0 * math.exp(-40 * dt / tau), abs=1e-4)
    pop.step(torch.tensor([[0.5, 0.0, 0.0]]), torch.zeros(1, 3))  # a pulse: above the leak
    assert float(pop.v[0, 0]) > float(rest + (v[0, 0] - rest) * e) + 1e-3


@pytest.mark.parametrize("integration,excess_exc,excess_inh", [("exact", 1.0, 1.0), ("euler", 1.0, 1.0),
                                                                ("held", 1.27, 1.13)])
@pytest.mark.parametrize("receptor", ["exc", "inh"])
def test_conductance_pulse_matches_the_continuous_model(receptor, integration, excess_exc, excess_inh):
    """A conductance pulse integrated at dt = 0.5 ms (tau_g = 1 or 2 ms, shorter than a few
    steps) moves v as far as the continuous model does (simulated at dt = 0.001 ms): the
    step-mean conductance delivers the exact charge.  Holding g at its start-of-step value
    would overshoot by 27 % (exc) / 13 % (inh) of the deflection: the ``held`` scheme,
    (1 - e^{-dt/tau}) / (dt/tau) = 0.787 / 0.885 for tau = 1 / 2 ms at dt = 0.5 ms."""
    from snnrun.core.neurons import LIF, LIFParams

    def deflection(dt: float) -> float:
        pop = LIF(LIFParams(n=1, synapse="conductance", tau_mem_ms=100.0, tau_ge_ms=1.0, tau_gi_ms=2.0,
                            refrac_ms=0.0, v_thresh_mv=100.0, integration=integration if dt > 0.01 else "exact"), dt=dt)
        pop.allocate(1)
        pulse, zero = torch.tensor([[2.0]]), torch.zeros(1, 1)
        pop.step(*((pulse, zero) if receptor == "exc" else (zero, pulse)))
        for _ in range(round(10.0 / dt) - 1):
            pop.step(zero, zero)
        return pop.v.double().item() + 65.0

    fine, coarse = deflection(0.001), deflection(0.5)
    assert abs(fine) > 1.0  # a real deflection (about +1.3 mV / -1.4 mV)
    excess = excess_exc if receptor == "exc" else excess_inh
    assert coarse == pytest.approx(fine * excess, rel=0.03)


def test_conductance_lif_euler_first_steps_by_hand():
    """integration: euler (Brian 1's scheme in the Diehl & Cook paper), dt = 0.5, tau_mem = 10,
    tau_ge = 1, v_rest = -60 (the paper's Ai neuron), one pulse g_e = 10.4:
    step 1: v = -60 + 0.05 (0 + 10.4 * 60) = -28.8 (the exact step would give -36.2)
            g_e <- 10.4 (1 - 0.5) = 5.2
    step 2: v = -28.8 + 0.05 ((-60 + 28.8) + 5.2 * 28.8) = -22.872"""
    from snnrun.core.neurons import LIF, LIFParams

    pop = LIF(LIFParams(n=1, synapse="conductance", integration="euler", v_rest_mv=-60.0, tau_mem_ms=10.0,
                        tau_ge_ms=1.0, v_thresh_mv=100.0, refrac_ms=0.0), dt=0.5)
    pop.allocate(1)
    pop.step(torch.tensor([[10.4]]), torch.zeros(1, 1))
    assert pop.v.item() == pytest.approx(-28.8, abs=1e-4)
    assert pop.ge.item() == pytest.approx(5.2, abs=1e-6)
    pop.step(torch.zeros(1, 1), torch.zeros(1, 1))
    assert pop.v.item() == pytest.approx(-22.872, abs=1e-4)


def test_conductance_lif_euler_stays_between_reversal_potentials():
    """A huge inhibitory pulse: Euler would jump far below E_inh (0.05 * 1000 * 35 mV);
    v is kept at E_inh = -100 mV."""
    from snnrun.core.neurons import LIF, LIFParams

    pop = LIF(LIFParams(n=1, synapse="conductance", integration="euler", tau_mem_ms=10.0, e_inh_mv=-100.0,
                        refrac_ms=0.0), dt=0.5)
    pop.allocate(1)
    pop.step(torch.zeros(1, 1), torch.tensor([[1000.0]]))
    assert pop.v.item() == -100.0


def test_conductance_lif_is_stable_under_huge_inhibition():
    """Forward Euler would overshoot (dt/tau * g = 0.5 * 1000 / 100 = 5 > 2) and oscillate
    with growing amplitude; the exact step relaxes towards v_inf without overshooting."""
    from snnrun.core.neurons import LIF, LIFParams

    pop = LIF(LIFParams(n=1, synapse="conductance", tau_mem_ms=100.0, tau_gi_ms=1e6, refrac_ms=0.0,
                        e_inh_mv=-100.0, v_thresh_mv=0.0), dt=0.5)
    pop.allocate(1)
    pop.step(torch.zeros(1, 1), torch.tensor([[1000.0]]))
    vs = []
    for _ in range(20):
        pop.step(torch.zeros(1, 1), torch.zeros(1, 1))
        vs.append(pop.v.item())
    assert all(-100.0 - 1e-3 <= v <= -65.0 for v in vs)
    # v_inf = (-65 + 1000 * -100) / 1001 = -99.965; reached within a few steps
    assert vs[-1] == pytest.approx((-65.0 - 100000.0) / 1001.0, abs=1e-2)


# --------------------------------------------------------------------------- spike counts
def expected_if_spikes(I: float, thresh: float, rest: float, reset: float, r: int, T: int) -> list[int]:
    """IF from v_rest: first spike after n1 = ceil((thresh - rest) / I) input steps; after each
    spike r = refrac/dt blocked steps at v_reset, then n = ceil((thresh - reset) / I) steps.
    0-based step indices: t_1 = n1 - 1, t_{k+1} = t_k + r + n."""
    n1 = math.ceil((thresh - rest) / I)
    n = math.ceil((thresh - reset) / I)
    out, t = [], n1 - 1
    while t < T:
        out.append(t)
        t += r + n
    return out


@pytest.mark.parametrize(
    "dt,refrac,reset",
    [(1.0, 0.0, -65.0), (1.0, 5.0, -65.0), (0.5, 5.0, -65.0), (0.5, 2.0, -70.0), (1.0, 3.0, -60.0)],
)
def test_if_spike_times_match_isi_formula(dt, refrac, reset):
    # I = 1 hits threshold exactly (13 steps, tests ">="); 3 -> ceil(4.33) = 5; 0.7 -> ceil(18.57) = 19;
    # 13 and 20 fire after one step.
    currents = [1.0, 3.0, 0.7, 13.0, 20.0]
    T = 400
    rec = run_current("if", currents, T, dt, v_rest_mv=-65.0, v_reset_mv=reset, v_thresh_mv=-52.0, refrac_ms=refrac)
    r = round(refrac / dt)
    s = rec.get("N", "s")[:, 0]
    for k, I in enumerate(currents):
        expected = expected_if_spikes(I, -52.0, -65.0, reset, r, T)
        assert spike_steps(s[:, k]) == expected, f"I={I}"
    # and the hand numbers for one case, to pin the formula itself:
    if (dt, refrac, reset) == (1.0, 5.0, -65.0):
        assert expected_if_spikes(3.0, -52.0, -65.0, -65.0, 5, 40) == [4, 14, 24, 34]


def lif_steps_to_threshold(d0: float, I: float, a: float, theta: float) -> int:
    """Smallest n >= 1 with d0 a^n + A (1 - a^n) >= theta, A = I / (1 - a) (> theta):
    (A - d0) a^n <= A - theta  <=>  n >= ln((A - theta) / (A - d0)) / ln a."""
    A = I / (1 - a)
    x = math.log((A - theta) / (A - d0)) / math.log(a)
    assert abs(x - round(x)) > 1e-3, f"parameters put the crossing within float error of a step ({x})"
    return max(1, math.ceil(x))


@pytest.mark.parametrize(
    "dt,tau,refrac,reset",
    [(1.0, 100.0, 5.0, -65.0), (0.5, 100.0, 5.0, -65.0), (1.0, 20.0, 2.0, -70.0), (0.5, 10.0, 1.5, -60.0), (1.0, 50.0, 0.0, -65.0)],
)
def test_lif_spike_times_match_isi_formula(dt, tau, refrac, reset):
    """LIF from rest: first spike after n1 steps (d0 = 0); after a spike r = refrac/dt blocked
    steps in which v leaks from v_reset: d = (v_reset - v_rest) a^r; then n(d) input steps.
    ISI = r + n(d), constant after the first spike."""
    rest, thresh = -65.0, -52.0
    theta = thresh - rest
    a = math.exp(-dt / tau)
    r = round(refrac / dt)
    # asymptotes I/(1-a) well above 13 mV, one far below (never fires)
    currents = [x * (1 - a) for x in (15.3, 22.7, 60.1, 400.3)] + [0.5 * theta * (1 - a)]
    T = round(600 / dt)
    rec = run_current("lif", currents, T, dt, v_rest_mv=rest, v_reset_mv=reset, v_thresh_mv=thresh, tau_mem_ms=tau, refrac_ms=refrac)
    s = rec.get("N", "s")[:, 0]
    for k, I in enumerate(currents[:-1]):
        n1 = lif_steps_to_threshold(0.0, I, a, theta)
        n = lif_steps_to_threshold((reset - rest) * a ** r, I, a, theta)
        expected, t = [], n1 - 1
        while t < T:
            expected.append(t)
            t += r + n
        assert len(expected) >= 2
        assert spike_steps(s[:, k]) == expected, f"I={I}"
    assert not s[:, -1].any(), "asymptote below threshold must never fire"


def test_lif_isi_by_hand():
    """Pinned hand numbers: dt = 1, tau = 100, I = 1 mV/step, refrac 5, reset = rest.
    a = e^-0.01, A = 1/(1-a) = 100.50; n = ceil(ln((100.50-13)/100.50)/ln a) = ceil(13.86) = 14.
    Spikes at 0-based steps 13, 13+5+14 = 32, 51, ..."""
    rec = run_current("lif", [1.0], 60, 1.0, tau_mem_ms=100.0, refrac_ms=5.0)
    assert spike_steps(rec.get("N", "s")[:, 0, 0]) == [13, 32, 51]


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_refractory_blocks_input_for_refrac_over_dt_steps(dt):
    """After a spike at step t_s (v <- v_reset), with refrac = 4 ms: v stays at reset for
    exactly 4/dt steps (IF, no leak), then integrates I again."""
    I = 20.0  # every unblocked step crosses threshold
    rec = run_current("if", [I], 40, dt, refrac_ms=4.0)
    v = rec.get("N", "v")[:, 0, 0]
    s = rec.get("N", "s")[:, 0, 0]
    r = round(4.0 / dt)
    assert spike_steps(s)[:3] == [0, r + 1, 2 * (r + 1)]
    assert torch.all(v[1 : r + 1] == -65.0)


@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize(
    "dt,refrac,blocked",
    [
        (0.1, 5.0, 50),   # 0.1 is not exact in binary: 5.0 - 50 x float32(0.1) != 0
        (0.2, 1.0, 5),
        (0.05, 2.0, 40),
        (0.01, 1.0, 100),
        (0.3, 3.0, 10),
        (1.0, 2.5, 3),    # not a whole number of steps: rounded up (BindsNET's counter > 0 rule)
        (0.5, 0.2, 1),
    ],
)
def test_refractory_exact_step_count_for_any_dt(kind, dt, refrac, blocked):
    """A current that crosses threshold in one step makes the neuron fire on the first step
    after the refractory period: ISI = blocked + 1 steps, blocked = ceil(refrac / dt) (the
    exact ratio, not its float32 countdown).  Hand values in the parameter list."""
    T = 3 * (blocked + 1) + 1
    rec = run_current(kind, [1000.0], T, dt, refrac_ms=refrac)
    st = spike_steps(rec.get("N", "s")[:, 0, 0])
    assert st == list(range(0, T, blocked + 1))
