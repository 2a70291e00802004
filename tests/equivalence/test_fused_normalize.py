"""The fused kernel normalises dense weights itself, after each learning presentation
(``lib_updates.normalize_dense``), in the float32 operations of ``Connection.normalize``:
the weights equal the Python normalisation's bit for bit, learning or not, with a column of
zeros (left as it is) and a one-to-one connection (normalised in Python)."""

from __future__ import annotations

import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core.fused import FusedSimulator

NET = """
populations:
  X: {kind: input, n: 40, traces: true}
  E: {kind: lif, n: 7, traces: true}
  F: {kind: lif, n: 7}
connections:
  XE: {kind: dense, source: X, target: E, weight: {dist: uniform, high: 1.0}, wmin: 0, wmax: 1, norm: 7.8,
       learning: {kind: post_pre, nu_pre: 1.0e-3, nu_post: 1.0e-2}}
  XF: {kind: dense, source: X, target: F, weight: {dist: uniform, low: 0.1, high: 0.4}, norm: 3.0}
  EF: {kind: one_to_one, source: E, target: F, weight: {dist: uniform, low: 0.5, high: 2.0}, norm: 1.5}
"""


def _nets():
    cfg = yaml.safe_load(NET)
    return build_network(cfg, dt_ms=1.0, seed=5), build_network(cfg, dt_ms=1.0, seed=5)


@pytest.mark.parametrize("rate", [0.0, 0.3], ids=["no_input", "spiking"])
def test_kernel_normalisation_equals_python(rate):
    kernel, python = _nets()
    for net in (kernel, python):
        net.connections["XE"].w[:, 3] = 0.0  # a neuron without input weight: its column stays 0
    g = torch.Generator().manual_seed(1)
    x = torch.rand(60, 1, 40, generator=g) < rate
    sim = FusedSimulator(kernel, ["E"])
    assert {kernel.connections[n].kind for n in ("XE", "XF")} == {"dense"}
    ref = FusedSimulator(python, ["E"])
    ref_prog = ref.program((("X", "u8_3"),))
    assert ref_prog.normalized == {0, 1}  # dense XE, XF in the kernel; one-to-one EF in Python
    # the reference: the same kernel without its normalisation, then Connection.normalize
    key = ((("X", "u8_3"),), 20)  # (inputs, steps): the frame each run below takes
    ref._frames[key] = frame = _without_norm(ref)
    for t in range(0, 60, 20):
        a = sim.run({"X": x[t:t + 20]}, True)["E"]
        b = ref.run({"X": x[t:t + 20]}, True)["E"]
        assert torch.equal(a, b)
    assert ref._frames[key] is frame  # (the reference did run without the kernel's normalisation)
    for name in kernel.connections:
        assert torch.equal(kernel.connections[name].w, python.connections[name].w), name
    w = kernel.connections["XE"].w
    assert torch.all(w[:, 3] == 0)
    torch.testing.assert_close(w.sum(0)[torch.arange(7) != 3], torch.full((6,), 7.8), rtol=1e-5, atol=0)
    torch.testing.assert_close(kernel.connections["XF"].w.sum(0), torch.full((7,), 3.0), rtol=1e-5, atol=0)
    assert torch.equal(kernel.connections["EF"].w, torch.full((7,), 1.5))


def _without_norm(sim):
    """A frame of ``sim``'s program with the kernel's normalisation calls removed (so the
    simulator normalises every connection in Python)."""
    from snnrun.core.fused.frame import Frame

    prog = sim.program((("X", "u8_3"),))
    prog.calls = [c for c in prog.calls if c.phase != "after"]
    prog.normalized = set()
    return Frame(prog)


def test_a_norm_changed_or_removed_between_runs_is_followed():
    """The kernel reads the connection's norm at every run: a new value rescales to it, a
    norm set to None leaves the weights unnormalised (as Connection.normalize does)."""
    net, _ = _nets()
    sim = FusedSimulator(net, ["E"])
    x = torch.rand(20, 1, 40, generator=torch.Generator().manual_seed(2)) < 0.3
    conn = net.connections["XF"]  # static: only the normalisation changes its weights
    sim.run({"X": x}, True)
    torch.testing.assert_close(conn.w.sum(0), torch.full((7,), 3.0), rtol=1e-5, atol=0)
    conn.norm = 5.0
    sim.run({"X": x}, True)
    torch.testing.assert_close(conn.w.sum(0), torch.full((7,), 5.0), rtol=1e-5, atol=0)
    conn.norm = None
    conn.w.mul_(2.0)
    before = conn.w.clone()
    sim.run({"X": x}, True)
    assert torch.equal(conn.w, before)


def test_frames_are_kept_for_the_most_recently_used_step_counts():
    """One frame per number of steps, at most FRAMES_KEPT, the least recently used dropped."""
    from snnrun.core.fused import FRAMES_KEPT

    net, _ = _nets()
    sim = FusedSimulator(net, ["E"])
    x = torch.zeros(FRAMES_KEPT + 2, 1, 40, dtype=torch.bool)
    for T in range(1, FRAMES_KEPT + 1):
        sim.run({"X": x[:T]}, False)
    first = sim._frames[((("X", "u8_3"),), 1)]
    sim.run({"X": x[:1]}, False)  # used again: now the most recent
    sim.run({"X": x[:FRAMES_KEPT + 1]}, False)
    steps = [T for (_, T) in sim._frames]
    assert len(steps) == FRAMES_KEPT and 1 in steps and 2 not in steps
    assert sim._frames[((("X", "u8_3"),), 1)] is first
