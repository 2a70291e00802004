"""Every registered neuron kind and learning rule gives the same spikes on every backend.

The eager torch step is the reference; the fused kernel and ``torch.compile`` are printed
from the same definitions.  For the same seed they make the same random choices
(``one_spike`` winners, Bernoulli input; snnrun.core.models.rng), so spikes must be
identical step by step and state / weights equal to float32 rounding (sums of synaptic
input may be added in another order)."""

from __future__ import annotations

import pytest
import torch

from snnrun.build import build_network
from snnrun.core import NEURONS, RULES
from snnrun.core.encoders import BernoulliTrain
from snnrun.core.fused import FusedSimulator, unsupported_reason
from snnrun.core.simulate import TorchSimulator

# a population of each kind, driven hard enough to spike; izhikevich amplifies rounding
# differences of summed inputs, so it gets one input each (one_to_one)
KINDS = {
    "input": {},
    "if": {"v_thresh_mv": -60.0, "refrac_ms": 2.0},
    "lif": {"tau_mem_ms": 20.0, "refrac_ms": 2.0},
    "lif_conductance": {"kind": "lif", "synapse": "conductance", "tau_mem_ms": 20.0, "refrac_ms": 2.0},
    "lif_euler": {"kind": "lif", "synapse": "conductance", "integration": "euler", "tau_mem_ms": 20.0, "refrac_ms": 2.0},
    "current_lif": {"v_lbound_mv": -70.0, "refrac_ms": 1.0},
    "adaptive_lif": {"theta_plus_mv": 1.0, "tau_theta_ms": 50.0},
    "diehl_cook": {"theta_plus_mv": 0.5, "tau_theta_ms": 200.0},
    "diehl_cook_paper": {"kind": "diehl_cook", "synapse": "conductance", "integration": "held", "lockout_ms": 4.0,
                         "theta_offset_mv": 3.0, "theta_plus_mv": 0.5, "tau_theta_ms": 200.0, "refrac_ms": 2.0},
    "izhikevich": {"preset": "chattering", "refrac_ms": 1.0},
    "mcculloch_pitts": {"v_thresh_mv": 1.0},
    "equations": {"params": {"tau_ms": 10.0, "v_th": 1.0}, "state": {"v": 0.0},
                  "update": "if active:\n    v = v + dt / tau_ms * (-v) + 0.05 * I", "threshold": "v >= v_th",
                  "reset": "v = 0.0", "refrac_ms": 1.0},
}


def test_every_registered_kind_and_rule_is_covered():
    assert set(NEURONS.kinds()) <= {spec.get("kind", name) for name, spec in KINDS.items()}
    assert set(RULES.kinds()) - {"none"} <= set(RULES_UNDER_TEST) | {"equations"}


def neuron_net(name: str, one_spike: bool):
    spec = dict(KINDS[name])
    kind = spec.pop("kind", name)
    if kind == "input":  # the input population itself, one spike per step among its spikes
        pops = {"X": {"kind": "input", "n": 24, "traces": True, "one_spike": one_spike},
                "P": {"kind": "mcculloch_pitts", "n": 24, "v_thresh_mv": 0.5}}
        conns = {"xp": {"kind": "one_to_one", "source": "X", "target": "P", "weight": 1.0}}
        return {"populations": pops, "connections": conns}
    conductance = spec.get("synapse") == "conductance"
    pops = {"X": {"kind": "input", "n": 24, "traces": True},
            "P": {"kind": kind, "n": 8 if kind != "izhikevich" else 24, "traces": True, "one_spike": one_spike, **spec}}
    w = {"if": 6.0, "mcculloch_pitts": 0.6, "izhikevich": 20.0}.get(kind, 0.8 if conductance else 12.0)
    xp = ({"kind": "one_to_one", "weight": w} if kind == "izhikevich"
          else {"kind": "dense", "weight": {"dist": "uniform", "high": w}})
    conns = {"xp": {**xp, "source": "X", "target": "P"}}
    if kind not in ("izhikevich", "mcculloch_pitts"):
        conns["pp"] = {"kind": "dense", "source": "P", "target": "P", "weight": 1.0 if conductance else -4.0,
                       "mask": "all_but_self", **({"receptor": "inh"} if conductance else {})}
    return {"populations": pops, "connections": conns}


def _pair(cfg: dict, dt: float = 1.0):
    return build_network(cfg, dt_ms=dt, seed=3), build_network(cfg, dt_ms=dt, seed=3)


def _assert_same(a, b, what: str) -> None:
    for name, pop in a.populations.items():
        for var in pop.state_vars():
            x, y = getattr(pop, var), getattr(b.populations[name], var)
            if x.dtype == torch.bool:
                assert torch.equal(x, y), f"{what}: {name}.{var} differs"
            else:
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5, msg=f"{what}: {name}.{var} differs")
    for name, conn in a.connections.items():
        torch.testing.assert_close(conn.w, b.connections[name].w, rtol=1e-5, atol=1e-6, msg=f"{what}: {name}.w differs")


def _step_by_step(ref, fast, x: torch.Tensor, learning: bool, reward=None) -> int:
    """Run both one step per call, same seed per call; compare after every step."""
    rs, fs = TorchSimulator(ref, []), FusedSimulator(fast, [])
    fired = 0
    for t in range(x.shape[0]):
        for net, sim in ((ref, rs), (fast, fs)):
            if reward is not None:
                net.set_reward(reward)
            torch.manual_seed(t)
            sim.run({"X": x[t:t + 1]}, learning)
        _assert_same(ref, fast, f"step {t}")
        fired += sum(int(p.s.sum()) for n, p in ref.populations.items() if n != "X")
    return fired


@pytest.mark.parametrize("one_spike", [False, True], ids=["all_spikes", "one_spike"])
@pytest.mark.parametrize("name", list(KINDS))
def test_neuron_kind_fused_equals_torch(name, one_spike):
    ref, fast = _pair(neuron_net(name, one_spike))
    n = ref.populations["X"].n
    x = torch.rand(60, 2, n, generator=torch.Generator().manual_seed(0)) < 0.4
    assert fast.populations["P"].compiled.model.kind == (KINDS[name].get("kind", name) if name != "input" else "mcculloch_pitts")
    fired = _step_by_step(ref, fast, x, learning=True)
    assert fired > 10, "the population should spike"
    if one_spike:
        pop = "X" if name == "input" else "P"
        assert int(ref.populations[pop].s.sum(1).max()) <= 1


@pytest.mark.parametrize("name", ["diehl_cook", "diehl_cook_paper", "input"])
def test_one_spike_whole_presentations_equal_and_seed_dependent(name):
    """Whole presentations in one call: same seed -> same winners on both backends; another
    seed -> other winners (the choice is random, not the lowest index)."""
    ref, fast = _pair(neuron_net(name, True))
    x = torch.rand(100, 1, ref.populations["X"].n, generator=torch.Generator().manual_seed(1)) < 0.6
    pop = "X" if name == "input" else "P"
    counts = []
    for seed in (5, 5, 6):
        out = []
        for net, sim in ((ref, TorchSimulator(ref, [pop])), (fast, FusedSimulator(fast, [pop]))):
            net.reset_state()
            torch.manual_seed(seed)
            out.append(sim.run({"X": x}, False)[pop])
        assert torch.equal(out[0], out[1])
        counts.append(out[0])
    assert torch.equal(counts[0], counts[1]) and not torch.equal(counts[0], counts[2])


# ----------------------------------------------------------------------------- rules
RULES_UNDER_TEST = {
    "post_pre": {"nu_pre": 1e-2, "nu_post": 5e-2},
    "weight_dependent_post_pre": {"nu_pre": 5e-2, "nu_post": 1e-1, "reduction": "mean"},
    "hebbian": {"nu_pre": 1e-2, "nu_post": 2e-2, "weight_decay": 1e-3},
    "triplet_post_pre": {"nu_pre": 1e-2, "nu_post": 5e-2},
    "mstdp": {"nu": 0.05, "a_minus": -0.5},
    "mstdpet": {"nu": 0.05, "tau_e_ms": 10.0},
}


def rule_net(kind: str, layout: str):
    rule = {"kind": kind, **RULES_UNDER_TEST[kind]}
    pops = {"X": {"kind": "input", "n": 12, "traces": True},
            "E": {"kind": "lif", "n": 12 if layout == "one_to_one" else 6, "tau_mem_ms": 20.0, "refrac_ms": 1.0,
                  "v_thresh_mv": -58.0, "traces": True}}
    conn = {"kind": layout, "source": "X", "target": "E", "wmin": 0.0, "wmax": 4.0, "learning": rule,
            "weight": 3.0 if layout == "one_to_one" else {"dist": "uniform", "high": 3.0}}
    if layout == "arrival":
        conn.update(kind="dense", delay_ms={"max_ms": 3.0})
        rule["pre_timing"] = "arrival"
    return {"populations": pops, "connections": {"XE": conn}}


@pytest.mark.parametrize("layout", ["dense", "one_to_one"])
@pytest.mark.parametrize("kind", list(RULES_UNDER_TEST))
def test_rule_fused_equals_torch(kind, layout):
    ref, fast = _pair(rule_net(kind, layout))
    x = torch.rand(80, 2, 12, generator=torch.Generator().manual_seed(2)) < 0.3
    w0 = ref.weights("XE").clone()
    reward = torch.tensor([0.7, -1.0]) if kind == "mstdp" else (0.7 if kind == "mstdpet" else None)
    fired = _step_by_step(ref, fast, x, learning=True, reward=reward)
    assert fired > 20
    assert (ref.weights("XE") - w0).abs().max() > 1e-3, "the weights should have learned"


def test_triplet_arrival_fused_equals_torch():
    ref, fast = _pair(rule_net("triplet_post_pre", "arrival"))
    x = torch.rand(80, 2, 12, generator=torch.Generator().manual_seed(2)) < 0.3
    w0 = ref.weights("XE").clone()
    assert _step_by_step(ref, fast, x, learning=True) > 20
    assert (ref.weights("XE") - w0).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["triplet_post_pre", "mstdp"])
def test_rules_on_conv2d_fused_equal_torch(kind):
    cfg = {"populations": {"X": {"kind": "input", "shape": [1, 6, 6], "traces": True},
                           "E": {"kind": "lif", "shape": [2, 3, 3], "tau_mem_ms": 20.0, "v_thresh_mv": -58.0,
                                 "refrac_ms": 1.0, "traces": True}},
           "connections": {"XE": {"kind": "conv2d", "source": "X", "target": "E", "kernel_size": 4, "stride": 1,
                                  "weight": {"dist": "uniform", "high": 3.0}, "wmin": 0.0, "wmax": 4.0,
                                  "learning": {"kind": kind, **RULES_UNDER_TEST[kind]}}}}
    ref, fast = _pair(cfg)
    x = (torch.rand(60, 2, 36, generator=torch.Generator().manual_seed(3)) < 0.3).view(60, 2, 1, 6, 6)
    assert _step_by_step(ref, fast, x, learning=True, reward=0.5 if kind == "mstdp" else None) > 20


def test_per_synapse_rule_state_on_conv2d_is_refused_by_name():
    cfg = {"populations": {"X": {"kind": "input", "shape": [1, 6, 6]}, "E": {"kind": "lif", "shape": [2, 3, 3]}},
           "connections": {"XE": {"kind": "conv2d", "source": "X", "target": "E", "kernel_size": 4,
                                  "learning": {"kind": "mstdpet"}}}}
    assert "mstdpet on connection 'XE': per-synapse variables" in unsupported_reason(build_network(cfg))


def test_bernoulli_input_draws_are_the_same_on_both_backends():
    """The fused kernel draws Bernoulli input itself; the torch backend materialises it with
    BernoulliTrain.draw: same spikes for the same seed (counted at the input)."""
    cfg = {"populations": {"X": {"kind": "input", "n": 300}, "M": {"kind": "mcculloch_pitts", "n": 1}},
           "connections": {"c": {"kind": "dense", "source": "X", "target": "M", "weight": 0.0}}}
    ref, fast = _pair(cfg)
    p = torch.rand(2, 300, generator=torch.Generator().manual_seed(0)) * 0.2
    counts = []
    for net, sim in ((ref, TorchSimulator(ref, ["X"])), (fast, FusedSimulator(fast, ["X"]))):
        torch.manual_seed(7)
        counts.append(sim.run({"X": BernoulliTrain(p, 500)}, False)["X"])
    assert torch.equal(counts[0], counts[1])
    # binomial(500, p) per input: the mean count is 500 p (std of the mean over 600 inputs < 0.6)
    assert abs(counts[0].double().mean() - 500 * p.double().mean()) < 2.0


def test_weights_out_of_bounds_before_a_learning_call_are_clamped_after_the_increments():
    """Normalisation between presentations can push weights past wmax; the reference then
    clamps w + dw at the next learning step, so the kernel must add before it clamps."""
    ref, fast = _pair(rule_net("post_pre", "dense"))
    for net in (ref, fast):
        net.connections["XE"].w.fill_(4.5)  # above wmax = 4 (as normalisation may leave them)
    x = torch.rand(20, 2, 12, generator=torch.Generator().manual_seed(5)) < 0.4
    for net, sim in ((ref, TorchSimulator(ref, [])), (fast, FusedSimulator(fast, []))):
        torch.manual_seed(0)
        sim.run({"X": x}, True)
    _assert_same(ref, fast, "after one learning presentation")
    assert float(ref.weights("XE").max()) <= 4.0


def test_the_kernel_depends_on_structure_only():
    """Other sizes and other parameter values give the same generated pieces (nothing to
    recompile; sizes only choose among the library's functions, compiled once); another
    structure (a conductance synapse) gives other ones."""

    def pieces(n, tau, synapse="current"):
        cfg = {"populations": {"X": {"kind": "input", "n": 2 * n}, "E": {"kind": "lif", "n": n, "tau_mem_ms": tau,
                                                                       "synapse": synapse}},
               "connections": {"XE": {"kind": "dense", "source": "X", "target": "E", "learning": {"kind": "post_pre"}}}}
        prog = FusedSimulator(build_network(cfg), []).program((("X", "u8_3"),))
        return [c.dispatcher for c in prog.calls if c.dispatcher.py_func.__module__.startswith("snnrun_piece")]

    a, b = pieces(10, 20.0), pieces(1000, 35.0)
    assert len(a) == 3 and [d is e for d, e in zip(a, b)] == [True] * 3  # X, E and the rule
    c = pieces(10, 20.0, "conductance")
    assert a[1] is not c[1] and a[0] is c[0]
