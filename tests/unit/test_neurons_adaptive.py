"""Adaptive thresholds: ``diehl_cook`` (slow, batch-shared, learned theta) and
``adaptive_lif`` (fast, per-sample theta); ``one_spike`` winner selection.

Per step (adaptive.py): integrate; theta <- theta * exp(-dt / tau_theta); threshold on
v >= v_thresh + theta; theta <- theta + theta_plus * spikes (diehl_cook: summed over the
batch, only while learning).
"""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.core import Network, Recorder

BIG = 1000.0  # a current that crosses threshold from anywhere in one step


def drive(T: int, B: int, n: int, spikes: dict[tuple[int, int, int], float]) -> torch.Tensor:
    """Current [T, B, n]: BIG at the (t, b, j) listed, 0 elsewhere."""
    x = torch.zeros(T, B, n)
    for (t, b, j) in spikes:
        x[t, b, j] = BIG
    return x


def theta_by_hand(events: dict[int, int], T: int, plus: float, dec: float) -> float:
    """theta_T = sum_k plus * n_k * dec^(T-1-k): added after step k's decay, then decayed once
    in each of the T-1-k later steps."""
    return sum(plus * n * dec ** (T - 1 - k) for k, n in events.items())


def dc_net(n=1, dt=1.0, tau_theta=50.0, theta_plus=0.5, one_spike=True, refrac=0.0):
    net = Network(dt_ms=dt)
    pop = net.add_population("E", "diehl_cook", n=n, theta_plus_mv=theta_plus, tau_theta_ms=tau_theta,
                             one_spike=one_spike, refrac_ms=refrac)
    return net, pop


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_diehl_cook_theta_grows_by_theta_plus_per_batch_spike_and_decays(dt):
    """B = 3, one neuron.  Spikes: step 2 in samples 0 and 2 (batch sum 2), step 5 in sample 1,
    step 9 in all three.  theta after T = 15 steps is the hand sum; the recorder shows the
    per-step theta, including pure decay steps theta_t = theta_{t-1} * exp(-dt/tau)."""
    tau, plus, T = 50.0, 0.5, 15
    net, pop = dc_net(dt=dt, tau_theta=tau, theta_plus=plus)
    x = drive(T, 3, 1, {(2, 0, 0): 1, (2, 2, 0): 1, (5, 1, 0): 1, (9, 0, 0): 1, (9, 1, 0): 1, (9, 2, 0): 1})
    rec = Recorder({"E": ["s", "theta"]})
    net.run({"E": x}, recorders=[rec])
    s = rec.get("E", "s")[:, :, 0]
    assert s.sum(1).tolist() == [0, 0, 2, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0]
    dec = math.exp(-dt / tau)
    events = {2: 2, 5: 1, 9: 3}
    assert pop.theta.shape == (1,)
    assert pop.theta.item() == pytest.approx(theta_by_hand(events, T, plus, dec), rel=1e-5)
    th = rec.get("E", "theta")[:, 0]
    assert th[2].item() == pytest.approx(2 * plus, rel=1e-6)
    assert th[4].item() == pytest.approx(2 * plus * dec ** 2, rel=1e-6)
    for t in range(10, T):
        assert th[t].item() == pytest.approx(th[t - 1].item() * dec, rel=1e-6)


def test_diehl_cook_theta_frozen_in_test_mode_and_survives_reset():
    net, pop = dc_net()
    x = drive(10, 2, 1, {(1, 0, 0): 1, (3, 1, 0): 1, (6, 0, 0): 1})
    net.run({"E": x})
    theta = pop.theta.clone()
    assert theta.item() > 0
    # state_dict carries theta
    sd = net.state_dict()
    assert torch.equal(sd["populations.E.theta"], theta)
    # reset_state keeps theta (slow state), and run(reset=True) as well
    net.reset_state()
    assert torch.equal(pop.theta, theta)
    # test mode: no growth and no decay even though the neuron spikes
    net.train(False)
    rec = Recorder({"E": ["s"]})
    net.run({"E": x}, recorders=[rec], reset=True)
    assert rec.get("E", "s").sum().item() == 3
    assert torch.equal(pop.theta, theta)
    # learning override per run works the same way
    net.train(True)
    net.run({"E": x}, learning=False)
    assert torch.equal(pop.theta, theta)
    # and load_state_dict restores a saved theta
    net.run({"E": x})
    assert not torch.equal(pop.theta, theta)
    net.load_state_dict(sd)
    assert torch.equal(pop.theta, theta)


def test_diehl_cook_theta_raises_the_threshold():
    """theta = 5 (loaded): v = v_rest + 16 = -49 >= -52 but < -52 + 5 -> no spike;
    v = v_rest + 19 = -46 >= -47 -> spike.  Reset value is -60 (diehl_cook default)."""
    net, pop = dc_net(one_spike=False)
    net.load_state_dict({"populations.E.theta": torch.tensor([5.0])})
    net.train(False)
    rec = Recorder({"E": ["s", "v"]})
    net.run({"E": torch.tensor([[[16.0], [19.0]]])}, recorders=[rec])
    assert rec.get("E", "s")[0, :, 0].tolist() == [False, True]
    assert rec.get("E", "v")[0, 1, 0].item() == -60.0


@pytest.mark.parametrize("dt,refrac,lockout,period", [(1.0, 1.0, 5.0, 5), (0.5, 5.0, 50.0, 100), (0.1, 0.2, 0.5, 5)])
def test_diehl_cook_lockout_spaces_spikes_but_voltage_integrates(dt, refrac, lockout, period):
    """Diehl & Cook's ``timer``: under a drive that crosses threshold every step the neuron
    spikes every ceil(lockout / dt) steps (refrac alone would allow every
    ceil(refrac / dt) + 1); once the refractory period is over its voltage integrates the
    drive again, above threshold, without a spike or reset until the lockout ends."""
    net = Network(dt_ms=dt)
    pop = net.add_population("E", "diehl_cook", n=2, one_spike=False, refrac_ms=refrac, lockout_ms=lockout,
                             v_reset_mv=-65.0, theta_plus_mv=0.0)
    T = 3 * period + 1
    x = torch.full((T, 1, 2), 20.0)
    x[:, :, 1] = 0.0  # neuron 1 never spikes: the lockout leaves it alone
    rec = Recorder({"E": ["s", "v"]})
    net.run({"E": x}, recorders=[rec])
    s, v = rec.get("E", "s")[:, 0, 0], rec.get("E", "v")[:, 0, 0]
    assert torch.nonzero(s).flatten().tolist() == [0, period, 2 * period, 3 * period]
    free = round(refrac / dt)  # steps with input blocked after a spike
    assert v[free].item() == -65.0  # last refractory step: clamped at reset
    assert v[free + 1].item() > -52.0  # integrating again, above threshold, but no spike
    assert rec.get("E", "s")[:, 0, 1].sum().item() == 0
    # a new sample starts unlocked
    net.run({"E": x[:1]}, recorders=[rec], reset=True)
    assert bool(pop.s[0, 0])


def test_diehl_cook_theta_offset_decays_the_threshold_down():
    """theta_offset 5 mV, tau_theta 10 ms, dt 1: theta starts at 5 (threshold -52 + 5 - 5 =
    -52, as without offset) and decays while learning: after 10 silent steps theta = 5/e,
    the threshold -52 - 5 (1 - 1/e) = -55.16 mV.  Step 11 then lifts v from rest (-65)
    by 10.5 mV to -54.5: a spike, which needs 13 mV without the offset."""
    net = Network(dt_ms=1.0)
    pop = net.add_population("E", "diehl_cook", n=2, one_spike=False, theta_offset_mv=5.0, tau_theta_ms=10.0,
                             theta_plus_mv=0.0, tau_mem_ms=1e9, refrac_ms=0.0, v_reset_mv=-65.0)
    assert pop.theta.tolist() == [5.0, 5.0]
    x = torch.zeros(11, 1, 2)
    x[10, 0, 0] = 10.5
    x[0, 0, 1] = 13.0  # at the start the threshold is -52: 13 mV crosses it
    rec = Recorder({"E": ["s"]})
    net.run({"E": x}, recorders=[rec])
    s = rec.get("E", "s")[:, 0]
    assert s[:, 1].nonzero().flatten().tolist() == [0]
    assert s[:, 0].nonzero().flatten().tolist() == [10]
    assert pop.theta[0].item() == pytest.approx(5.0 * math.exp(-11 / 10.0), rel=1e-5)
    # without the offset the same drive stays below threshold
    net0 = Network(dt_ms=1.0)
    net0.add_population("E", "diehl_cook", n=2, one_spike=False, tau_theta_ms=10.0, theta_plus_mv=0.0,
                        tau_mem_ms=1e9, refrac_ms=0.0, v_reset_mv=-65.0)
    rec0 = Recorder({"E": ["s"]})
    net0.run({"E": x}, recorders=[rec0])
    assert rec0.get("E", "s")[:, 0, 0].sum().item() == 0


def test_diehl_cook_lockout_rejects_negative():
    with pytest.raises(ValueError, match="lockout_ms"):
        Network(dt_ms=1.0).add_population("E", "diehl_cook", n=1, lockout_ms=-1.0)


def test_adaptive_lif_theta_per_sample_and_reset():
    """adaptive_lif: theta is [B, n]; sample 0 spikes at steps 1 and 4, sample 1 never.
    theta[0] = plus (dec^(T-2) + dec^(T-5)), theta[1] = 0; adapts in test mode too;
    reset_state zeroes it."""
    tau, plus, T, dt = 20.0, 0.7, 8, 1.0
    net = Network(dt_ms=dt)
    pop = net.add_population("E", "adaptive_lif", n=1, theta_plus_mv=plus, tau_theta_ms=tau, refrac_ms=0.0)
    x = drive(T, 2, 1, {(1, 0, 0): 1, (4, 0, 0): 1})
    net.train(False)  # per-sample adaptation is not learning: it runs at test time too
    net.run({"E": x})
    dec = math.exp(-dt / tau)
    assert pop.theta.shape == (2, 1)
    assert pop.theta[0, 0].item() == pytest.approx(plus * (dec ** (T - 2) + dec ** (T - 5)), rel=1e-5)
    assert pop.theta[1, 0].item() == 0.0
    assert "populations.E.theta" not in net.state_dict()
    net.reset_state()
    assert torch.all(pop.theta == 0)


def test_adaptive_lif_threshold_includes_theta():
    """After one spike theta = plus = 4 (tau huge): an input putting v at v_rest + 14 = -51
    (>= -52, < -48) does not fire; -47 does."""
    net = Network()
    pop = net.add_population("E", "adaptive_lif", n=2, theta_plus_mv=4.0, tau_theta_ms=1e9, refrac_ms=0.0)
    pop.allocate(1)
    pop.step(torch.tensor([[BIG, BIG]]))
    pop.v.fill_(-65.0)
    pop.step(torch.tensor([[14.0, 18.0]]))
    assert pop.s[0].tolist() == [False, True]


def test_threshold_uses_theta_decayed_in_the_same_step():
    """Order within a step: theta decays before the threshold test.  theta = 4 after a spike,
    tau_theta = 10, dt = 1: next step theta = 4 e^{-0.1} = 3.619, so v = -52 + 3.7 fires
    (it would not against the undecayed 4); v = -52 + 3.5 does not."""
    for kind, extra in (("adaptive_lif", {}), ("diehl_cook", {"one_spike": False, "v_reset_mv": -65.0})):
        net = Network()
        pop = net.add_population("E", kind, n=2, theta_plus_mv=4.0, tau_theta_ms=10.0, refrac_ms=0.0, **extra)
        pop.allocate(1)
        pop.step(torch.tensor([[BIG, BIG]]))
        assert torch.allclose(pop.theta, torch.full_like(pop.theta, 4.0))
        pop.step(torch.tensor([[13.0 + 3.7, 13.0 + 3.5]]))
        assert pop.s[0].tolist() == [True, False], kind


def test_one_spike_keeps_one_winner_but_resets_all_crossers():
    """diehl_cook one_spike: sample 0 has crossers {0, 1, 3}, sample 1 has {2}, sample 2 none.
    Exactly one spike per sample with crossers, the winner is a crosser; every crosser is reset
    to v_reset, made refractory (counter = refrac) and gets theta_plus; traces only for the
    winner."""
    net, pop = dc_net(n=4, one_spike=True, refrac=5.0, theta_plus=0.25, tau_theta=1e9)
    pop.traces = True  # allocated on the first run
    x = torch.zeros(1, 3, 4)
    x[0, 0, [0, 1, 3]] = BIG
    x[0, 1, 2] = BIG
    x[0, 2] = 5.0  # subthreshold: v = -60
    net.run({"E": x})
    s = pop.s
    assert s.sum(1).tolist() == [1, 1, 0]
    assert s[0, [0, 1, 3]].any() and not s[0, 2]
    assert s[1, 2]
    crossers = torch.zeros(3, 4, dtype=torch.bool)
    crossers[0, [0, 1, 3]] = True
    crossers[1, 2] = True
    assert torch.all(pop.v[crossers] == -60.0)
    assert torch.all(pop.refrac_count[crossers] == 5.0)
    assert torch.all(pop.refrac_count[~crossers] == 0.0)
    assert torch.allclose(pop.theta, torch.tensor([0.25, 0.25, 0.25, 0.25]))  # batch sum of crossers per neuron
    assert torch.equal(pop.x > 0, s)


def test_one_spike_winner_is_uniform_and_off_means_all():
    """4 neurons cross every step for N = 4000 steps: each wins ~N/4 times (binomial std
    sqrt(N p (1-p)) = 27.4; 5 sigma).  With one_spike False all 4 spike every step."""
    N = 4000
    for one in (True, False):
        net, pop = dc_net(n=4, one_spike=one, refrac=0.0, tau_theta=1e9, theta_plus=0.0)
        rec = Recorder({"E": ["s"]})
        net.run({"E": torch.full((N, 1, 4), BIG)}, recorders=[rec])
        counts = rec.get("E", "s")[:, 0].sum(0).double()
        if one:
            assert counts.sum().item() == N
            assert torch.all((counts - N / 4).abs() < 5 * math.sqrt(N * 0.25 * 0.75)), counts
        else:
            assert counts.tolist() == [N] * 4
