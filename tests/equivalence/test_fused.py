"""The fused numba kernel equals the reference (eager torch) loop: identical spikes at
every step, the same voltages, weights and thresholds (float32 rounding aside: the kernel
adds synaptic currents in spike order, BLAS in its own order, so sums may differ in the
last bit; the Izhikevich neurons, which amplify such differences, get one input each)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core.encoders import BernoulliTrain
from snnrun.core.fused import FusedSimulator, unsupported_reason
from snnrun.core.simulate import TorchSimulator, make_simulator

DC_BINDSNET = """
populations:
  X: {kind: input, shape: [1, 8, 8], traces: true}
  Ae: {kind: diehl_cook, n: 12, v_reset_mv: -60.0, traces: true, one_spike: false, theta_plus_mv: 0.5}
  Ai: {kind: lif, n: 12, v_rest_mv: -60.0, v_reset_mv: -45.0, v_thresh_mv: -40.0, tau_mem_ms: 10.0, refrac_ms: 2.0}
connections:
  X_Ae: {kind: dense, source: X, target: Ae, weight: {dist: uniform, high: 1.0}, wmin: 0, wmax: 1, norm: 20.0,
         learning: {kind: post_pre, nu_pre: 1.0e-3, nu_post: 5.0e-2}}
  Ae_Ai: {kind: one_to_one, source: Ae, target: Ai, weight: 22.5}
  Ai_Ae: {kind: dense, source: Ai, target: Ae, weight: -120.0, mask: all_but_self}
"""

DC_PAPER = """
populations:
  X: {kind: input, shape: [1, 8, 8]}
  Ae: {kind: diehl_cook, n: 10, synapse: conductance, v_reset_mv: -65.0, one_spike: false, theta_plus_mv: 0.5}
  Ai: {kind: lif, n: 10, synapse: conductance, v_rest_mv: -60.0, v_reset_mv: -45.0, v_thresh_mv: -40.0,
       tau_mem_ms: 10.0, refrac_ms: 2.0, e_inh_mv: -85.0}
connections:
  X_Ae: {kind: dense, source: X, target: Ae, weight: {dist: uniform, low: 0.01, high: 1.01, scale: 0.6}, wmin: 0, wmax: 1,
         norm: 20.0, delay_ms: {max_ms: 4.0}, learning: {kind: triplet_post_pre, nu_pre: 1.0e-3, nu_post: 5.0e-2}}
  Ae_Ai: {kind: one_to_one, source: Ae, target: Ai, weight: 10.4}
  Ai_Ae: {kind: dense, source: Ai, target: Ae, weight: 17.0, mask: all_but_self, receptor: inh}
"""

DC_PAPER_ARRIVAL = DC_PAPER.replace("nu_post: 5.0e-2}", "nu_post: 5.0e-2, pre_timing: arrival}")
assert DC_PAPER_ARRIVAL != DC_PAPER
DC_PAPER_EULER = DC_PAPER_ARRIVAL.replace("synapse: conductance", "synapse: conductance, integration: euler")
DC_PAPER_LOCKOUT = DC_PAPER.replace("one_spike: false,", "one_spike: false, refrac_ms: 2.0, lockout_ms: 6.0, "
                                                         "theta_offset_mv: 3.0, tau_theta_ms: 200.0,")
assert DC_PAPER_LOCKOUT != DC_PAPER

ZOO = """
populations:
  X: {kind: input, n: 30, traces: true, trace_mode: additive, trace_scale: 0.5}
  IF: {kind: if, n: 6, v_thresh_mv: -60.0, traces: true}
  CL: {kind: current_lif, n: 6, traces: true, v_lbound_mv: -70.0}
  AL: {kind: adaptive_lif, n: 6, traces: true, theta_plus_mv: 1.0, tau_theta_ms: 50.0}
  IZ: {kind: izhikevich, n: 6, preset: chattering, traces: true, refrac_ms: 1.0}
  MP: {kind: mcculloch_pitts, n: 6, v_thresh_mv: 1.0, traces: true}
connections:
  a: {kind: dense, source: X, target: IF, weight: {dist: uniform, high: 3.0}, wmin: 0, wmax: 3,
      learning: {kind: hebbian, nu_pre: 1.0e-3, nu_post: 1.0e-2}}
  b: {kind: dense, source: X, target: CL, weight: {dist: uniform, high: 4.0}, wmin: 0, wmax: 4, delay_ms: 2, bias: 0.2,
      learning: {kind: weight_dependent_post_pre, nu_pre: 1.0e-2, nu_post: 5.0e-2, reduction: mean}}
  c: {kind: dense, source: X, target: AL, weight: {dist: uniform, high: 5.0}}
  d: {kind: one_to_one, source: CL, target: IZ, weight: 30.0}   # one input each: no summation-order rounding
  e: {kind: one_to_one, source: IF, target: MP, weight: 1.0, learning: {kind: post_pre, nu_pre: 1.0e-2, nu_post: 1.0e-2}}
  f: {kind: dense, source: AL, target: AL, weight: 0.5, mask: all_but_self, wmin: 0.1, wmax: 2,
      learning: {kind: post_pre, nu_pre: 1.0e-2, nu_post: 1.0e-2}}
"""


def _pair(text, dt=1.0):
    cfg = yaml.safe_load(text)
    return build_network(cfg, dt_ms=dt, seed=3), build_network(cfg, dt_ms=dt, seed=3)


def _state(net):
    out = {}
    for name, pop in net.populations.items():
        for var in pop.state_vars():
            out[f"{name}.{var}"] = getattr(pop, var).clone()
    for name, conn in net.connections.items():
        out[f"{name}.w"] = conn.w.clone()
    return out


def _assert_same(a, b, what):
    sa, sb = _state(a), _state(b)
    for key in sa:
        if sa[key].dtype == torch.bool:
            assert torch.equal(sa[key], sb[key]), f"{what}: {key} differs"
        else:
            torch.testing.assert_close(sa[key], sb[key], rtol=1e-5, atol=1e-5, msg=f"{what}: {key} differs")


@pytest.mark.parametrize("text,dt", [(DC_BINDSNET, 1.0), (DC_PAPER, 0.5), (DC_PAPER_ARRIVAL, 0.5), (DC_PAPER_EULER, 0.5),
                                      (DC_PAPER_LOCKOUT, 0.5), (ZOO, 1.0), (ZOO, 0.1)],
                         ids=["dc_bindsnet", "dc_paper", "dc_paper_arrival", "dc_paper_euler", "dc_paper_lockout",
                              "zoo", "zoo_dt0.1"])
@pytest.mark.parametrize("learning", [True, False])
def test_fused_equals_reference_step_by_step(text, dt, learning):
    ref, fast = _pair(text, dt)
    for net in (ref, fast):
        for conn in net.connections.values():
            conn.norm = None  # normalisation runs after each call; tested separately below
    n_in = ref.populations["X"].n
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 2, n_in, generator=g) < 0.3
    x = x.view(120, 2, *ref.populations["X"].shape)
    rs, fs = TorchSimulator(ref, []), FusedSimulator(fast, [])
    fired = 0
    for t in range(x.shape[0]):
        rs.run({"X": x[t:t + 1]}, learning)
        fs.run({"X": x[t:t + 1]}, learning)
        _assert_same(ref, fast, f"step {t}")
        fired += sum(int(p.s.sum()) for n, p in ref.populations.items() if n != "X")
    assert fired > 20, "the test network should be active"


@pytest.mark.parametrize("text,dt", [(DC_BINDSNET, 1.0), (DC_PAPER, 0.5), (DC_PAPER_ARRIVAL, 0.5), (DC_PAPER_EULER, 0.5),
                                      (DC_PAPER_LOCKOUT, 0.5)],
                         ids=["dc_bindsnet", "dc_paper", "dc_paper_arrival", "dc_paper_euler", "dc_paper_lockout"])
def test_fused_equals_reference_whole_presentations(text, dt):
    """Several presentations in one call each, with normalisation and resets between."""
    ref, fast = _pair(text, dt)
    rs, fs = TorchSimulator(ref, ["Ae"]), FusedSimulator(fast, ["Ae"])
    g = torch.Generator().manual_seed(1)
    for sample in range(4):
        x = (torch.rand(150, 1, 1, 8, 8, generator=g) < 0.25)
        ref.reset_state()
        fast.reset_state()
        cr = rs.run({"X": x}, True)["Ae"]
        cf = fs.run({"X": x}, True)["Ae"]
        assert torch.equal(cr, cf)
        _assert_same(ref, fast, f"sample {sample}")
    assert int(cr.sum()) > 0


PATCH = """
populations:
  X: {{kind: input, shape: [2, 8, 8], traces: true}}
  Ae: {{kind: diehl_cook, shape: {shape}, traces: true, one_spike: false, theta_plus_mv: 0.5}}
connections:
  X_Ae: {{kind: {kind}, source: X, target: Ae, kernel_size: 4, stride: 2, padding: {padding}, weight: {{dist: uniform, high: 1.0}},
         wmin: 0, wmax: 1, norm: 8.0, learning: {{kind: {rule}, nu_pre: 1.0e-2, nu_post: 5.0e-2}}}}
  Ae_Ae: {{kind: dense, source: Ae, target: Ae, weight: -5.0, mask: all_but_self}}
"""


@pytest.mark.parametrize("kind", ["conv2d", "local"])
@pytest.mark.parametrize("rule,padding", [("post_pre", 0), ("weight_dependent_post_pre", 1), ("hebbian", 1)])
def test_fused_patch_connections_equal_reference_step_by_step(kind, rule, padding):
    """conv2d (kernels shared over positions: updates summed) and local (a kernel per
    position) run event-driven in the kernel, equal to the reference's conv2d / einsum."""
    shape = [3, 3, 3] if padding == 0 else [3, 4, 4]
    ref, fast = _pair(PATCH.format(kind=kind, rule=rule, padding=padding, shape=shape))
    for net in (ref, fast):
        net.connections["X_Ae"].norm = None
    x = (torch.rand(80, 2, 128, generator=torch.Generator().manual_seed(0)) < 0.3).view(80, 2, 2, 8, 8)
    rs, fs = TorchSimulator(ref, []), FusedSimulator(fast, [])
    fired = 0
    w0 = ref.connections["X_Ae"].w.clone()
    for t in range(x.shape[0]):
        rs.run({"X": x[t:t + 1]}, True)
        fs.run({"X": x[t:t + 1]}, True)
        _assert_same(ref, fast, f"step {t}")
        fired += int(ref.populations["Ae"].s.sum())
    assert fired > 50
    assert (ref.connections["X_Ae"].w - w0).abs().max() > 1e-3, "the weights should have learned"
    if padding:  # entries reading the zero padding stay exactly 0 in local layers
        mask = ref.connections["X_Ae"].mask
        if mask is not None:
            assert torch.all(fast.connections["X_Ae"].w[(mask == 0).expand_as(fast.connections["X_Ae"].w)] == 0)


def test_fused_batched_inference_equals_per_sample():
    net = build_network(yaml.safe_load(DC_BINDSNET), seed=0)
    fs = FusedSimulator(net, ["Ae", "Ai"])
    x = torch.rand(100, 4, 1, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.3
    net.reset_state()
    batched = fs.run({"X": x}, learning=False)
    for b in range(4):
        net.reset_state()
        single = fs.run({"X": x[:, b:b + 1]}, learning=False)
        for name in batched:
            assert torch.equal(batched[name][b:b + 1], single[name])
    assert int(batched["Ae"].sum()) > 0


def test_fused_draws_bernoulli_input_at_the_right_rate():
    net = build_network({"populations": {"X": {"kind": "input", "n": 200}, "M": {"kind": "mcculloch_pitts", "n": 1}},
                         "connections": {"c": {"kind": "dense", "source": "X", "target": "M", "weight": 0.0}}})
    fs = FusedSimulator(net, ["X"])
    p = torch.full((1, 200), 0.05)
    p[0, :50] = 0.0
    p[0, 50:60] = 1.0
    counts = fs.run({"X": BernoulliTrain(p, 2000)}, learning=False)["X"][0]
    assert counts[:50].sum() == 0
    assert torch.all(counts[50:60] == 2000)
    mean = counts[60:].double().mean()
    # binomial(2000, 0.05): mean 100, std of the mean over 140 neurons = sqrt(95 / 140) = 0.82
    assert abs(mean - 100.0) < 4 * 0.82


def test_auto_backend_choice():
    net = build_network(yaml.safe_load(DC_BINDSNET))
    assert make_simulator(net, ["Ae"], "auto").backend == "numba"
    conv = {"populations": {"X": {"kind": "input", "shape": [1, 4, 4]}, "C": {"kind": "lif", "shape": [1, 2, 2]}},
            "connections": {"c": {"kind": "conv2d", "source": "X", "target": "C", "kernel_size": 3}}}
    assert make_simulator(build_network(conv), ["C"], "auto").backend == "numba"
    conv["connections"]["c"]["bias"] = 0.5
    biased = build_network(conv)
    assert "conv2d connection 'c' with delays or a bias" in unsupported_reason(biased)
    assert make_simulator(biased, ["C"], "auto").backend == "torch"
    with pytest.raises(ValueError, match="numba cannot run this network: conv2d connection 'c' with delays or a bias"):
        make_simulator(biased, ["C"], "numba")


def test_parallel_dense_path_equals_reference(monkeypatch):
    """Large dense layers propagate on all threads; force that path on a small network."""
    import snnrun.core.fused.codegen as codegen

    monkeypatch.setattr(codegen, "PARALLEL_SYNAPSES", 0)
    text = """
populations:
  X: {kind: input, n: 300}
  Y: {kind: lif, n: 257}
connections:
  c: {kind: dense, source: X, target: Y, weight: {dist: normal, std: 1.0}}
"""
    ref, fast = _pair(text)
    x = torch.rand(100, 2, 300, generator=torch.Generator().manual_seed(4)) < 0.05
    cr = TorchSimulator(ref, ["Y"]).run({"X": x}, False)["Y"]
    fs = FusedSimulator(fast, ["Y"])
    assert "c0_acc" in fs.source(["X"])  # the parallel propagation (lib.prop_rows_par) takes per-thread accumulators
    cf = fs.run({"X": x}, False)["Y"]
    assert int(cr.sum()) > 50
    # summation order differs from BLAS in the last bit: allow a rare flipped spike
    assert (cr - cf).abs().sum() <= 2
    torch.testing.assert_close(ref.populations["Y"].v, fast.populations["Y"].v, rtol=1e-4, atol=1e-3)


def test_fused_ahead_of_time_input_propagation_equals_reference():
    """A large dense layer from an input population is propagated for the whole call before
    the time loop (inference; while it learns, step by step): identical spikes, voltages and
    weights, calls chained (spikes carried over between calls), inference and learning
    calls interleaved, batch of 2."""
    from snnrun.core.fused.codegen import PREPASS_SYNAPSES

    text = """
populations:
  X: {kind: input, n: 1100, traces: true}
  Y: {kind: lif, n: 1000, traces: true}
connections:
  XY: {kind: dense, source: X, target: Y, weight: {dist: normal, mean: 0.0, std: 1.0}, wmin: -3, wmax: 3,
       learning: {kind: post_pre, nu_pre: 1.0e-3, nu_post: 1.0e-3}}
"""
    assert 1100 * 1000 >= PREPASS_SYNAPSES
    ref, fast = _pair(text)
    rs, fs = TorchSimulator(ref, ["Y"]), FusedSimulator(fast, ["Y"])
    assert "prepass(" in fs.source(["X"])  # the ahead-of-time pass (lib.prepass) is in the program
    x = torch.rand(240, 2, 1100, generator=torch.Generator().manual_seed(4)) < 0.05
    for k, learning in enumerate([False, True, False]):
        cr = rs.run({"X": x[80 * k:80 * (k + 1)]}, learning)["Y"]
        cf = fs.run({"X": x[80 * k:80 * (k + 1)]}, learning)["Y"]
        assert torch.equal(cr, cf)
        _assert_same(ref, fast, f"call {k}")
        assert int(cr.sum()) > 100


def test_negative_input_opens_the_inhibitory_conductance():
    """Conductance neurons: external input x >= 0 adds to g_e, x < 0 adds |x| to g_i (the
    supervision's silencing drive); one step by hand, then the kernel equals the reference."""
    text = """
populations:
  X: {kind: input, n: 2}
  A: {kind: lif, n: 3, synapse: conductance, integration: held, tau_ge_ms: 1.0, tau_gi_ms: 2.0}
connections:
  c: {kind: dense, source: X, target: A, weight: 0.0}
"""
    ref, fast = _pair(text, dt=0.5)
    drive = torch.tensor([0.5, -0.5, 0.0]).expand(30, 1, 3)
    x = torch.zeros(30, 1, 2, dtype=torch.bool)
    TorchSimulator(ref, []).run({"X": x[:1], "A": drive[:1]}, False)
    a = ref.populations["A"]
    ge_decay, gi_decay = math.exp(-0.5 / 1.0), math.exp(-0.5 / 2.0)  # tau_ge_ms, tau_gi_ms, dt = 0.5
    v_rest = a.compiled.values["v_rest_mv"]
    assert a.ge[0].tolist() == pytest.approx([0.5 * ge_decay, 0.0, 0.0])
    assert a.gi[0].tolist() == pytest.approx([0.0, 0.5 * gi_decay, 0.0])
    assert a.v[0, 0] > v_rest > a.v[0, 1] and a.v[0, 2] == pytest.approx(v_rest)
    TorchSimulator(ref, []).run({"X": x[1:], "A": drive[1:]}, False)
    fs = FusedSimulator(fast, [])
    fs.run({"X": x[:1], "A": drive[:1]}, False)
    fs.run({"X": x[1:], "A": drive[1:]}, False)
    _assert_same(ref, fast, "after 30 steps")


def test_in_place_row_updates_equal_accumulated_ones():
    """At batch 1 a presynaptic spike's row is updated in place when no postsynaptic neuron
    fired in the step (no mask, no eligibility); with an all-ones mask the same network takes
    the accumulate-then-apply path. Both give the same weights bit for bit."""
    direct, accumulated = _pair(DC_BINDSNET)
    w0 = direct.connections["X_Ae"].w.clone()
    conn = accumulated.connections["X_Ae"]
    conn.mask = torch.ones_like(conn.w)  # flags & 4: the accumulating path, values unchanged (v * 1)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(400, 1, direct.populations["X"].n, generator=g) < 0.3).view(400, 1, *direct.populations["X"].shape)
    sims = FusedSimulator(direct, ["Ae"]), FusedSimulator(accumulated, ["Ae"])
    fired = 0
    for t in range(0, 400, 50):
        counts = [s.run({"X": x[t:t + 50]}, True)["Ae"] for s in sims]
        assert torch.equal(counts[0], counts[1])
        fired += int(counts[0].sum())
    assert fired > 0 and not torch.equal(direct.connections["X_Ae"].w, w0)
    for name in direct.connections:
        assert torch.equal(direct.connections[name].w, accumulated.connections[name].w), name


@pytest.mark.parametrize("text", [DC_PAPER, DC_PAPER_ARRIVAL], ids=["emission", "arrival"])
def test_delay_rows_equal_grouped_delays(monkeypatch, text):
    """Per-synapse delays of up to ROW_DELAYS_MAX steps propagate as masked weight rows
    (prop_delays_rows), longer ones by (pre, delay) groups (prop_delays). Same additions in
    the same order: states and weights bit for bit, over presentations with learning
    (weights read at arrival; STDP at emission or at arrival, which reads the groups), a
    carried-over delay line, then a learning-off batch of 2."""
    import snnrun.core.fused.codegen as cg

    rows, groups = _pair(text, dt=0.5)
    assert rows.connections["X_Ae"].max_delay + 1 <= cg.ROW_DELAYS_MAX
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(300, 1, 64, generator=g) < 0.2).view(300, 1, 1, 8, 8)
    sim_rows, sim_groups = FusedSimulator(rows, ["Ae"]), FusedSimulator(groups, ["Ae"])
    assert "prop_delays_rows" in sim_rows.source(["X"])
    first = sim_rows.run({"X": x[:60]}, True)["Ae"]  # its program is built (and kept) with rows
    monkeypatch.setattr(cg, "ROW_DELAYS_MAX", 0)
    assert "prop_delays_rows" not in sim_groups.source(["X"])
    assert torch.equal(first, sim_groups.run({"X": x[:60]}, True)["Ae"])
    fired = int(first.sum())
    for t in range(60, 300, 60):
        a, b = sim_rows.run({"X": x[t:t + 60]}, True)["Ae"], sim_groups.run({"X": x[t:t + 60]}, True)["Ae"]
        assert torch.equal(a, b)
        fired += int(a.sum())
    assert fired > 0
    sa, sb = _state(rows), _state(groups)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    xb = (torch.rand(80, 2, 64, generator=g) < 0.2).view(80, 2, 1, 8, 8)
    monkeypatch.setattr(cg, "ROW_DELAYS_MAX", 32)
    a = FusedSimulator(rows, ["Ae"]).run({"X": xb}, False)["Ae"]
    monkeypatch.setattr(cg, "ROW_DELAYS_MAX", 0)
    b = FusedSimulator(groups, ["Ae"]).run({"X": xb}, False)["Ae"]
    assert a.sum() > 0 and torch.equal(a, b)
    sa, sb = _state(rows), _state(groups)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
