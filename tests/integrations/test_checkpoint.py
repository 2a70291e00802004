"""Checkpoints: atomic writes (a full disk keeps the previous checkpoint), clear errors for
unreadable files, and network snapshots that restore every fast state variable."""

from __future__ import annotations

import errno

import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core import Recorder
from snnrun.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"network": {"w": torch.ones(3)}, "n": 1})

    def full_disk(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="could not write checkpoint .*No space left on device"):
        save_checkpoint(path, {"network": {"w": torch.zeros(3)}, "n": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["n"] == 1  # the previous one, intact
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_full_disk_as_torch_reports_it_is_named_too(tmp_path, monkeypatch):
    """torch's zip writer reports ENOSPC as a RuntimeError "[enforce fail at inline_container.cc]"."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"network": {}, "n": 1})

    def full_disk(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*\(disk full\? .* MiB free; the previous"):
        save_checkpoint(path, {"network": {}, "n": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["n"] == 1


@pytest.mark.parametrize("content,match", [(b"", "corrupt or unreadable"), (b"garbage", "corrupt or unreadable")])
def test_unreadable_checkpoint_is_named(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"bad.pt.*{match}"):
        load_checkpoint(path)


def test_snapshot_restores_fast_state_exactly():
    """Run, snapshot, run on; restore the snapshot into a fresh network (weights from
    state_dict) and run on with the same input: identical spikes and state."""
    cfg = yaml.safe_load("""
populations:
  X: {kind: input, n: 20}
  Ae: {kind: diehl_cook, n: 8, synapse: conductance, theta_plus_mv: 0.5, one_spike: false}
  Ai: {kind: lif, n: 8, synapse: conductance, v_rest_mv: -60.0, v_reset_mv: -45.0, v_thresh_mv: -40.0, tau_mem_ms: 10.0}
connections:
  X_Ae: {kind: dense, source: X, target: Ae, weight: {dist: uniform, high: 1.0}, wmin: 0, wmax: 1, delay_ms: {max_ms: 3.0},
         learning: {kind: triplet_post_pre, nu_pre: 1.0e-3, nu_post: 5.0e-2, pre_timing: arrival}}
  Ae_Ai: {kind: one_to_one, source: Ae, target: Ai, weight: 10.4}
  Ai_Ae: {kind: dense, source: Ai, target: Ae, weight: 17.0, mask: all_but_self, receptor: inh}
""")
    g = torch.Generator().manual_seed(0)
    x1, x2 = (torch.rand(60, 1, 20, generator=g) < 0.3 for _ in range(2))
    a = build_network(cfg, seed=1)
    a.run({"X": x1})
    slow, fast = a.state_dict(), a.snapshot()
    ra, rb = Recorder({"Ae": ["s"], "Ai": ["s"]}), Recorder({"Ae": ["s"], "Ai": ["s"]})
    a.run({"X": x2}, recorders=[ra])
    b = build_network(cfg, seed=2)  # different initial weights, overwritten below
    b.load_state_dict(slow)
    b.restore(fast)
    b.run({"X": x2}, recorders=[rb])
    assert int(ra.get("Ae", "s").sum()) > 0
    for pop in ("Ae", "Ai"):
        assert torch.equal(ra.get(pop, "s"), rb.get(pop, "s")), pop
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert torch.equal(a.populations["Ae"].v, b.populations["Ae"].v)
    assert a.connections["X_Ae"].rule.clock == b.connections["X_Ae"].rule.clock
