"""A static input layer with per-synapse delays is propagated ahead of the time loop when
it does not learn (lib.prepass_delays): the same currents, bit for bit, as the per-step
masked rows, over presentations and rests that carry spikes in flight from one call to
the next (the paper's protocol: learning-off passes, 350 ms + 150 ms rest)."""

from __future__ import annotations

import torch
import yaml

from snnrun.build import build_network
from snnrun.core.encoders import BernoulliTrain
from snnrun.core.fused import FusedSimulator

from .test_fused import DC_PAPER, _state


def test_delayed_input_layer_ahead_of_the_loop_equals_per_step_rows(monkeypatch):
    import snnrun.core.fused.codegen as cg

    cfg = yaml.safe_load(DC_PAPER)
    ahead, rows = (build_network(cfg, dt_ms=0.5, seed=3) for _ in range(2))
    sa, sr = FusedSimulator(ahead, ["Ae"]), FusedSimulator(rows, ["Ae"])
    sa.seeds, sr.seeds = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert "prepass_delays" in sa.source(["X"], probabilities=True)
    g = torch.Generator().manual_seed(2)
    rest = BernoulliTrain(torch.zeros(2, 1, 8, 8), 30)
    fired = 0
    for n in range(6):
        p = torch.rand(2, 1, 8, 8, generator=g) * 0.3
        monkeypatch.setattr(cg, "PREPASS_MAX_FLOATS", 1 << 26)
        a = sa.run({"X": BernoulliTrain(p, 70)}, False)["Ae"]
        sa.run({"X": rest}, False)
        monkeypatch.setattr(cg, "PREPASS_MAX_FLOATS", 0)  # per step: prop_delays_rows
        r = sr.run({"X": BernoulliTrain(p, 70)}, False)["Ae"]
        sr.run({"X": rest}, False)
        assert torch.equal(a, r), f"presentation {n}"
        fired += int(a.sum())
        for key, value in _state(ahead).items():
            assert torch.equal(value, _state(rows)[key]), f"presentation {n}: {key}"
    assert fired > 20
