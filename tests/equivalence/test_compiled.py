"""The torch step compiles as one graph (no graph breaks), and the compiled step gives the
same spikes as the eager one."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import yaml

from snnrun.build import build_network
from snnrun.core import Recorder

from .test_fused import DC_BINDSNET, DC_PAPER, ZOO


@pytest.mark.parametrize("text", [DC_BINDSNET, DC_PAPER, ZOO], ids=["dc_bindsnet", "dc_paper", "zoo"])
@pytest.mark.parametrize("one_spike", [False, True])
def test_step_has_no_graph_breaks(text, one_spike):
    cfg = yaml.safe_load(text)
    if "Ae" in cfg["populations"]:
        cfg["populations"]["Ae"]["one_spike"] = one_spike
    net = build_network(cfg, seed=0)
    net.allocate(2)
    net.set_reward(0.5)
    ext = [torch.rand(2, *p.shape) < 0.3 if p.is_input else None for p in net.populations.values()]
    torch._dynamo.reset()
    explained = torch._dynamo.explain(net.step)(ext, True)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.slow
def test_compiled_step_equals_eager():
    eager = build_network(yaml.safe_load(DC_BINDSNET), seed=0)
    compiled = build_network(yaml.safe_load(DC_BINDSNET), seed=0).compile()
    x = torch.rand(60, 1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3
    recs = []
    for net in (eager, compiled):
        rec = Recorder({"Ae": ["s", "v"], "Ai": ["s"]})
        net.run({"X": x}, recorders=[rec])
        recs.append(rec)
    assert int(recs[0].get("Ae", "s").sum()) > 0
    for pop in ("Ae", "Ai"):
        assert torch.equal(recs[0].get(pop, "s"), recs[1].get(pop, "s"))
    torch.testing.assert_close(recs[0].get("Ae", "v"), recs[1].get("Ae", "v"), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(eager.weights("X_Ae"), compiled.weights("X_Ae"), rtol=0, atol=1e-6)


def _zoo(one_spike: bool) -> dict:
    """Every neuron kind of test_models.KINDS in one network (one compile)."""
    from .test_models import KINDS, neuron_net

    pops = {"X": {"kind": "input", "n": 24, "traces": True}}
    conns = {}
    for name in KINDS:
        if name == "input":
            continue
        cfg = neuron_net(name, one_spike)
        pops[f"P_{name}"] = cfg["populations"]["P"]
        for cname, c in cfg["connections"].items():
            conns[f"{cname}_{name}"] = {**c, "source": "X" if c["source"] == "X" else f"P_{name}", "target": f"P_{name}"}
    return {"populations": pops, "connections": conns}


def _rules() -> dict:
    """Every rule of test_models.RULES_UNDER_TEST on its own connection (one compile)."""
    from .test_models import RULES_UNDER_TEST, rule_net

    pops = {"X": {"kind": "input", "n": 12, "traces": True}}
    conns = {}
    for kind in RULES_UNDER_TEST:
        cfg = rule_net(kind, "dense")
        pops[f"E_{kind}"] = cfg["populations"]["E"]
        conns[kind] = {**cfg["connections"]["XE"], "target": f"E_{kind}"}
    return {"populations": pops, "connections": conns}


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [pytest.param(_zoo(False), id="every_kind"), pytest.param(_zoo(True), id="every_kind_one_spike"),
                                 pytest.param(_rules(), id="every_rule")])
def test_compiled_step_equals_eager_for_every_kind_and_rule(cfg):
    """torch.compile of the step printed from the definitions gives the eager step's spikes
    at every step (same seed: same one-spike winners), weights to float32 rounding."""
    eager, compiled = build_network(cfg, seed=0), build_network(cfg, seed=0).compile()
    x = torch.rand(40, 2, eager.populations["X"].n, generator=torch.Generator().manual_seed(0)) < 0.4
    names = [n for n in eager.populations if n != "X"]
    recs = []
    for net in (eager, compiled):
        net.set_reward(0.7)
        rec = Recorder({n: ["s"] for n in eager.populations})
        torch.manual_seed(0)
        net.run({"X": x}, recorders=[rec])
        recs.append(rec)
    for name in ["X", *names]:
        assert torch.equal(recs[0].get(name, "s"), recs[1].get(name, "s")), name
        assert name == "X" or int(recs[0].get(name, "s").sum()) > 0, f"{name} should spike"
    for name in eager.connections:
        torch.testing.assert_close(eager.weights(name), compiled.weights(name), rtol=1e-5, atol=1e-6)
