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
