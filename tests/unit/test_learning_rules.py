"""Learning rules: weight changes for hand-placed pre/post spike timings.

Harness: input population X (pre) -> mcculloch_pitts population E (post, v_thresh = 1).
E fires exactly where an external current of 1 is injected; the connection's own current
(weights <= 0.3, at most one pre spike per step per target) never reaches 1 alone.  Every
run asserts the realised spike rasters before looking at weights.

Network step order (network.py): propagate, populations step (spikes s and traces x of
this step, traces include this step's spike), then rules update.  So for traces in "set"
mode with tau = 20 ms and one spike per neuron, at a post spike at step q the pre trace is
exp(-(q - p) dt / tau) if the pre spike step p <= q (1 if simultaneous), else 0; and
symmetrically at the pre spike.
"""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.core import Network, ParamError, Recorder

TAU = 20.0


def run_pairs(rule: dict, pre: list[tuple[int, int]], post: list[tuple[int, int]], n_pre: int, n_post: int,
              T: int, dt: float = 1.0, conn: str = "dense", w0: float = 0.05, B: int = 1,
              wmin: float = 0.0, wmax: float = 1.0, reward=None, learning: bool = True):
    """Spikes at (step, neuron) for pre (X) and post (E); returns (net, dw)."""
    net = Network(dt_ms=dt)
    net.add_population("X", "input", n=n_pre, traces=True, trace_tau_ms=TAU)
    net.add_population("E", "mcculloch_pitts", n=n_post, v_thresh_mv=1.0, traces=True, trace_tau_ms=TAU)
    net.add_connection("XE", "X", "E", conn, weight=w0, wmin=wmin, wmax=wmax, learning=rule)
    if reward is not None:
        net.set_reward(reward)
    x = torch.zeros(T, B, n_pre)
    for t, i in pre:
        x[t, :, i] = 1.0
    cur = torch.zeros(T, B, n_post)
    for t, j in post:
        cur[t, :, j] = 1.0
    rec = Recorder({"X": ["s"], "E": ["s"]})
    net.run({"X": x, "E": cur}, recorders=[rec], learning=learning)
    assert torch.equal(rec.get("E", "s"), cur.bool()), "post spikes are not where they were placed"
    assert torch.equal(rec.get("X", "s"), x.bool())
    w = net.weights("XE")
    return net, w - w0


def trace(k: int, dt: float, tau: float = TAU) -> float:
    return math.exp(-k * dt / tau)


# pre neuron i spikes once at PRE[i]; post neuron j once at POST[j]: every (i, j) is a pairing
PRE = [10, 14, 20, 27, 33, 40]
POST = [12, 20, 24, 30, 33, 47]
T_GRID = 55


def grid_expected(dt: float, f_ltp, f_ltd) -> torch.Tensor:
    """dw[i, j] = f_ltp(q - p) if p <= q  +  f_ltd(p - q) if q <= p  (both when p == q)."""
    exp = torch.zeros(len(PRE), len(POST), dtype=torch.float64)
    for i, p in enumerate(PRE):
        for j, q in enumerate(POST):
            if p <= q:
                exp[i, j] += f_ltp(q - p)
            if q <= p:
                exp[i, j] += f_ltd(p - q)
    return exp


def run_grid(rule: dict, dt: float, **kw):
    return run_pairs(rule, [(t, i) for i, t in enumerate(PRE)], [(t, j) for j, t in enumerate(POST)],
                     len(PRE), len(POST), T_GRID, dt=dt, **kw)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_post_pre_pair_grid(dt):
    """post_pre: pre before post (Delta = q - p >= 0 steps): +nu_post exp(-Delta dt / tau);
    post before pre: -nu_pre exp(-(p - q) dt / tau); simultaneous: +nu_post - nu_pre."""
    nu_pre, nu_post = 3e-3, 1e-2
    _, dw = run_grid({"kind": "post_pre", "nu_pre": nu_pre, "nu_post": nu_post}, dt)
    exp = grid_expected(dt, lambda k: nu_post * trace(k, dt), lambda k: -nu_pre * trace(k, dt))
    torch.testing.assert_close(dw.double(), exp, rtol=0, atol=2e-7)
    # spot values by hand (dt = 1): pre 10 / post 12 -> +1e-2 e^-0.1; pre 14 / post 12 -> -3e-3 e^-0.1;
    # pre 20 / post 20 -> 1e-2 - 3e-3 = 7e-3
    if dt == 1.0:
        assert dw[0, 0].item() == pytest.approx(1e-2 * math.exp(-0.1), abs=2e-7)
        assert dw[1, 0].item() == pytest.approx(-3e-3 * math.exp(-0.1), abs=2e-7)
        assert dw[2, 1].item() == pytest.approx(7e-3, abs=2e-7)
        assert dw[0, 0].item() > 0 > dw[1, 0].item()


@pytest.mark.parametrize("mode", ["set", "additive"])
def test_post_pre_trace_modes_with_two_pre_spikes(mode):
    """Pre spikes at steps 5 and 8, post at 10 (dt = 1, tau = 20, trace_scale 0.5).
    Pre trace at step 10: "set" keeps only the latest spike: 0.5 e^{-2/20};
    "additive" sums both: 0.5 (e^{-2/20} + e^{-5/20}).  dw = nu_post * that (no depression:
    the post trace is 0 at both pre spikes)."""
    nu_post = 1e-2
    net = Network()
    net.add_population("X", "input", n=1, traces=True, trace_mode=mode, trace_scale=0.5)
    net.add_population("E", "mcculloch_pitts", n=1, traces=True)
    net.add_connection("XE", "X", "E", "dense", weight=0.05, wmin=0, wmax=1,
                       learning={"kind": "post_pre", "nu_pre": 1e-3, "nu_post": nu_post})
    x, cur = torch.zeros(12, 1, 1), torch.zeros(12, 1, 1)
    x[[5, 8]] = 1.0
    cur[10] = 1.0
    rec = Recorder({"X": ["x"], "E": ["s"]})
    net.run({"X": x, "E": cur}, recorders=[rec])
    assert rec.get("E", "s")[:, 0, 0].nonzero().flatten().tolist() == [10]
    e = math.exp
    x10 = 0.5 * e(-2 / 20) if mode == "set" else 0.5 * (e(-2 / 20) + e(-5 / 20))
    assert rec.get("X", "x")[10, 0, 0].item() == pytest.approx(x10, rel=1e-6)
    assert net.weights("XE").item() - 0.05 == pytest.approx(nu_post * x10, abs=1e-7)


def test_weight_dependent_post_pre_soft_bounds():
    """Soft bounds: LTP scaled by (wmax - w), LTD by (w - wmin); w0 = 0.3, wmin = -0.5, wmax = 1,
    so the factors are 0.7 and 0.8.  Each synapse has one event (or a simultaneous pair
    computed from the same w), so w = w0 at every event."""
    nu_pre, nu_post, w0, wmin, wmax = 4e-3, 1e-2, 0.3, -0.5, 1.0
    _, dw = run_grid({"kind": "weight_dependent_post_pre", "nu_pre": nu_pre, "nu_post": nu_post}, 1.0,
                     w0=w0, wmin=wmin, wmax=wmax)
    exp = grid_expected(1.0, lambda k: nu_post * (wmax - w0) * trace(k, 1.0),
                        lambda k: -nu_pre * (w0 - wmin) * trace(k, 1.0))
    torch.testing.assert_close(dw.double(), exp, rtol=0, atol=2e-7)


def test_weight_dependent_needs_finite_bounds():
    net = Network()
    net.add_population("X", "input", n=1)
    net.add_population("E", "lif", n=1)
    with pytest.raises(ParamError):
        net.add_connection("XE", "X", "E", "dense", weight=0.1, learning={"kind": "weight_dependent_post_pre"})


def test_hebbian_both_orders_potentiate():
    """hebbian: +nu_post x_pre at post spikes and +nu_pre x_post at pre spikes."""
    nu_pre, nu_post = 3e-3, 1e-2
    _, dw = run_grid({"kind": "hebbian", "nu_pre": nu_pre, "nu_post": nu_post}, 1.0)
    exp = grid_expected(1.0, lambda k: nu_post * trace(k, 1.0), lambda k: nu_pre * trace(k, 1.0))
    torch.testing.assert_close(dw.double(), exp, rtol=0, atol=2e-7)
    assert torch.all(dw >= 0) and (dw > 0).sum() == len(PRE) * len(POST)


def test_triplet_post_pre_diehl_cook():
    """triplet_post_pre (tau_pre = 20, tau_post1 = 20, tau_post2 = 40, dt = 1), one_to_one so
    each synapse k sees only its own scenario:
      k=0: pre 5, post 10 only      -> 0 (potentiation needs post2 from an earlier post spike)
      k=1: post 3, pre 5, post 10   -> -nu_pre e^{-2/20} + nu_post e^{-5/20} e^{-7/40}
      k=2: post 4, pre+post at 9    -> -nu_pre e^{-5/20} (post1 read before this step's post
                                       spike is set) + nu_post * 1 * e^{-5/40}
      k=3: pre 2, post 6, post 8, post 15
           post 6: post2 = 0 -> 0; post 8: nu_post e^{-6/20} e^{-2/40};
           post 15: nu_post e^{-13/20} e^{-7/40}  (post2 was set to 1 at step 8)
      k=4: post 3 only, pre 12      -> -nu_pre e^{-9/20}"""
    nu_pre, nu_post = 2e-3, 1e-2
    pre = [(5, 0), (5, 1), (9, 2), (2, 3), (12, 4)]
    post = [(10, 0), (3, 1), (10, 1), (4, 2), (9, 2), (6, 3), (8, 3), (15, 3), (3, 4)]
    _, dw = run_pairs({"kind": "triplet_post_pre", "nu_pre": nu_pre, "nu_post": nu_post}, pre, post, 5, 5, 20,
                      conn="one_to_one", w0=0.3)
    e = math.exp
    exp = [
        0.0,
        -nu_pre * e(-2 / 20) + nu_post * e(-5 / 20) * e(-7 / 40),
        -nu_pre * e(-5 / 20) + nu_post * e(-5 / 40),
        nu_post * e(-6 / 20) * e(-2 / 40) + nu_post * e(-13 / 20) * e(-7 / 40),
        -nu_pre * e(-9 / 20),
    ]
    torch.testing.assert_close(dw.double(), torch.tensor(exp, dtype=torch.float64), rtol=0, atol=2e-7)


@pytest.mark.parametrize("reward", [1.0, -1.0, 0.5, 0.0])
def test_mstdp_reward_scales_and_flips(reward):
    """mstdp (a_plus = 1, a_minus = -0.5, tau_plus = tau_minus = 20, nu = 0.02), step mode:
    pre before post: dw = nu r a_plus e^{-Delta/20}; post before pre: nu r a_minus e^{-Delta/20};
    simultaneous: nu r (a_plus + a_minus).  r = 0 -> no change; r -> -r flips the sign."""
    nu, ap, am = 0.02, 1.0, -0.5
    _, dw = run_grid({"kind": "mstdp", "nu": nu, "a_plus": ap, "a_minus": am}, 1.0, reward=reward, wmin=-1.0)
    exp = grid_expected(1.0, lambda k: nu * reward * ap * trace(k, 1.0), lambda k: nu * reward * am * trace(k, 1.0))
    torch.testing.assert_close(dw.double(), exp, rtol=0, atol=2e-7)
    if reward == 0.0:
        assert torch.all(dw == 0)


def test_mstdp_per_sample_reward_and_episode_mode():
    """B = 2 identical samples.  Per-sample reward [1, -0.25] sums to 0.75 x the single-sample
    update.  Episode mode: nothing changes during the run; apply_reward(R) then gives exactly
    the step-mode change for constant reward R."""
    nu = 0.02
    pre, post = [(5, 0)], [(9, 0)]
    single = nu * math.exp(-4 / 20)
    _, dw = run_pairs({"kind": "mstdp", "nu": nu}, pre, post, 1, 1, 15, B=2, reward=[1.0, -0.25])
    assert dw.item() == pytest.approx(0.75 * single, abs=1e-7)
    net, dw = run_pairs({"kind": "mstdp", "nu": nu, "reward_mode": "episode"}, pre, post, 1, 1, 15, reward=1.0)
    assert dw.item() == 0.0
    net.connections["XE"].rule.apply_reward(-2.0)
    assert net.weights("XE").item() - 0.05 == pytest.approx(-2.0 * single, abs=1e-7)


@pytest.mark.parametrize("dt,tau_e", [(1.0, 25.0), (1.0, 10.0), (0.5, 25.0)])
def test_mstdpet_eligibility_trace(dt, tau_e):
    """mstdpet, pre at step 5, post at step 9 (4 steps), constant reward r = 1, nu = 0.05.
    zeta is non-zero only at step 9: z = a_plus e^{-4 dt / 20}.  Then
        e_t = (z / tau_e) d^{t-9},  d = e^{-dt / tau_e}    (t >= 9)
        dw  = sum_{t=9}^{T-1} nu dt r e_t = nu dt r (z / tau_e) (1 - d^K) / (1 - d),  K = T - 9."""
    nu, T = 0.05, 40
    net, dw = run_pairs({"kind": "mstdpet", "nu": nu, "tau_e_ms": tau_e}, [(5, 0)], [(9, 0)], 1, 1, T, dt=dt, reward=1.0)
    z = math.exp(-4 * dt / 20.0)
    d = math.exp(-dt / tau_e)
    e_last = z / tau_e * d ** (T - 1 - 9)
    assert net.connections["XE"].rule.e.item() == pytest.approx(e_last, rel=1e-5)
    K = T - 9
    assert dw.item() == pytest.approx(nu * dt * z / tau_e * (1 - d ** K) / (1 - d), rel=1e-4, abs=1e-8)


def test_mstdpet_rejects_per_sample_reward():
    with pytest.raises(ValueError):
        run_pairs({"kind": "mstdpet"}, [(1, 0)], [(2, 0)], 1, 1, 5, B=2, reward=[1.0, 0.0])


@pytest.mark.parametrize("B", [2, 3])
@pytest.mark.parametrize("kind", ["post_pre", "hebbian", "triplet_post_pre", "mstdp"])
def test_reduction_mean_is_half_of_sum_for_two_identical_samples(kind, B):
    """Batch of B identical samples: sum = B x single-sample update, mean = 1 x (= sum / B;
    for B = 2, mean is half of sum)."""
    rule = {"kind": kind, "nu_pre": 3e-3, "nu_post": 1e-2}
    if kind == "mstdp":
        rule = {"kind": kind, "nu": 1e-2}
    pre, post = [(3, 0), (13, 0)], [(5, 0), (10, 0)]  # asymmetric, so no rule cancels to 0
    kw = dict(reward=1.0, w0=0.3)
    _, single = run_pairs({**rule, "reduction": "sum"}, pre, post, 1, 1, 20, B=1, **kw)
    _, s2 = run_pairs({**rule, "reduction": "sum"}, pre, post, 1, 1, 20, B=B, **kw)
    _, m2 = run_pairs({**rule, "reduction": "mean"}, pre, post, 1, 1, 20, B=B, **kw)
    assert single.abs().item() > 1e-4
    tol = dict(rel=1e-5, abs=2e-7)  # a few float32 ulps of w ~ 0.3 per update
    assert s2.item() == pytest.approx(B * single.item(), **tol)
    assert m2.item() == pytest.approx(single.item(), **tol)
    assert m2.item() == pytest.approx(s2.item() / B, **tol)


def test_weight_decay_and_learning_switch():
    """post_pre with weight_decay = 0.01 and no spikes: w <- w - 0.01 w each step, so
    w_T = w0 (1 - 0.01)^T.  With learning off nothing changes."""
    wd, T, w0 = 0.01, 30, 0.5
    _, dw = run_pairs({"kind": "post_pre", "weight_decay": wd}, [], [], 2, 2, T, w0=w0)
    torch.testing.assert_close(dw + w0, torch.full((2, 2), w0 * (1 - wd) ** T), rtol=1e-5, atol=0)
    _, dw = run_pairs({"kind": "post_pre", "weight_decay": wd}, [(3, 0)], [(5, 0)], 2, 2, T, w0=w0, learning=False)
    assert torch.all(dw == 0)


def test_updates_are_clamped_to_bounds():
    """nu_post = 10 with a pre-post pair at Delta = 1: w0 + 10 e^{-1/20} > wmax = 1 -> w = 1;
    nu_pre = 10 with post-pre -> w = wmin = 0."""
    net, _ = run_pairs({"kind": "post_pre", "nu_post": 10.0, "nu_pre": 0.0}, [(3, 0)], [(4, 0)], 1, 1, 8, w0=0.3)
    assert net.weights("XE").item() == 1.0
    net, _ = run_pairs({"kind": "post_pre", "nu_post": 0.0, "nu_pre": 10.0}, [(4, 0)], [(3, 0)], 1, 1, 8, w0=0.3)
    assert net.weights("XE").item() == 0.0


def test_triplet_arrival_timing_uses_each_synapses_delay():
    """pre_timing: arrival, one pre neuron, three post neurons reached after 0, 3 and 6 steps
    (dt = 1).  Pre spike at step 2 -> arrivals at 2, 5, 8; all post neurons spike at 4 and 10.
      depression at arrival: post1 then = 0 (j=0), e^{-1/20} (j=1), e^{-4/20} (j=2)
      potentiation at 10: post2_before = e^{-6/40}, pre trace e^{-(10 - arrival)/20}
      (at 4: post2_before = 0).  Emission timing would give every synapse e^{-8/20}."""
    from snnrun.core.network import Network

    nu_pre, nu_post = 2e-3, 1e-2
    net = Network(dt_ms=1.0)
    net.add_population("X", "input", n=1)
    net.add_population("E", "mcculloch_pitts", n=3, v_thresh_mv=1.0)
    net.add_connection("XE", "X", "E", "dense", weight=0.05, wmin=0.0, wmax=1.0, delay_ms={"max_ms": 6.0},
                       learning={"kind": "triplet_post_pre", "nu_pre": nu_pre, "nu_post": nu_post, "pre_timing": "arrival"})
    net.connections["XE"].delays = torch.tensor([[0, 3, 6]])
    x = torch.zeros(14, 1, 1)
    x[2] = 1.0
    cur = torch.zeros(14, 1, 3)
    cur[4] = cur[10] = 1.0
    rec = Recorder({"E": ["s"]})
    net.run({"X": x, "E": cur}, recorders=[rec])
    assert torch.equal(rec.get("E", "s"), cur.bool())
    e = math.exp
    arrival = [2, 5, 8]
    post1 = [0.0, e(-1 / 20), e(-4 / 20)]
    exp = [-nu_pre * p1 + nu_post * e(-6 / 40) * e(-(10 - a) / 20) for a, p1 in zip(arrival, post1)]
    dw = net.weights("XE")[0] - 0.05
    torch.testing.assert_close(dw.double(), torch.tensor(exp, dtype=torch.float64), rtol=0, atol=2e-7)


def test_triplet_arrival_timing_needs_per_synapse_delays():
    from snnrun.core.network import Network
    from snnrun.core.registry import ParamError

    net = Network(dt_ms=1.0)
    net.add_population("X", "input", n=2)
    net.add_population("E", "lif", n=2)
    with pytest.raises(ParamError, match="pre_timing.*per-synapse delays"):
        net.add_connection("XE", "X", "E", "dense", learning={"kind": "triplet_post_pre", "pre_timing": "arrival"})
