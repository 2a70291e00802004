"""The fused kernel's vectorised neuron loops (libm calls lifted, :mod:`snnrun.core.models.lift`)
give the same numbers, bit for bit, as the one scalar loop they replace; and a cell whose
call arguments depend on another lifted call stays scalar."""

from __future__ import annotations

import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core.fused import FusedSimulator, neuron_piece
from snnrun.core.models.ir import parse_block, parse_expr
from snnrun.core.models.lift import lift_cell

from .test_fused import DC_BINDSNET, DC_PAPER, DC_PAPER_LOCKOUT, ZOO

# a model no built-in has: tanh, exp and log in the update, one of them reached only on one
# branch, slow state incremented at the reset
ODD = """
populations:
  X: {kind: input, n: 30}
  E:
    kind: equations
    n: 12
    traces: true
    params: {tau_ms: 20.0}
    state: {v: 0.0, a: 0.5}
    slow: {theta: 1.0}
    update: |
      v = v * exp(-dt / tau_ms) + tanh(I)
      if I > 0.5:
          a = a * exp(-I * 0.1)
      v = v + log(1.0 + I * I) * 0.01
    threshold: v >= theta
    reset: |
      v = 0.0
      a = a + 0.1
      theta += 0.01
connections:
  XE: {kind: dense, source: X, target: E, weight: {dist: uniform, high: 1.5}, wmin: 0, wmax: 2,
       learning: {kind: post_pre, nu_pre: 1.0e-3, nu_post: 1.0e-2}}
  EE: {kind: dense, source: E, target: E, weight: -0.3, mask: all_but_self}
"""

# a call in the reset: loop A runs the whole update and the threshold
ODD_RESET = ODD.replace("""      v = v * exp(-dt / tau_ms) + tanh(I)
      if I > 0.5:
          a = a * exp(-I * 0.1)
      v = v + log(1.0 + I * I) * 0.01""", """      v = v * exp(-dt / tau_ms) + I * 0.5
      a = a * exp(-I * 0.1)""").replace("""      a = a + 0.1""", """      a = a + exp(-theta)""")
assert ODD_RESET.count("exp(") == 3


def _run(text: str, dt: float, lifted: bool, monkeypatch) -> tuple[dict, list]:
    with monkeypatch.context() as m:
        if not lifted:
            m.setattr(neuron_piece, "lift_cell", lambda *a: None)
        net = build_network(yaml.safe_load(text), dt_ms=dt, seed=5)
        sim = FusedSimulator(net, [n for n in net.populations if n != "X"])
        x = torch.rand(200, 2, net.populations["X"].n, generator=torch.Generator().manual_seed(0)) < 0.3
        x = x.view(200, 2, *net.populations["X"].shape)
        counts = [sim.run({"X": x[t:t + 40]}, learning=t < 120) for t in range(0, 200, 40)]
        source = sim.source(["X"])
    state = {f"{n}.{v}": getattr(p, v).clone() for n, p in net.populations.items() for v in p.state_vars()}
    state.update({f"{n}.w": c.w.clone() for n, c in net.connections.items()})
    return state, [counts, source]


@pytest.mark.parametrize("text,dt", [(DC_PAPER, 0.5), (DC_PAPER_LOCKOUT, 0.5), (DC_BINDSNET, 1.0), (ZOO, 1.0), (ODD, 1.0),
                                     (ODD_RESET, 1.0)],
                         ids=["dc_paper", "dc_paper_lockout", "dc_bindsnet", "zoo", "odd", "odd_reset"])
def test_vectorised_cells_equal_the_scalar_loop_bit_for_bit(text, dt, monkeypatch):
    a, (ca, _) = _run(text, dt, True, monkeypatch)
    b, (cb, _) = _run(text, dt, False, monkeypatch)
    for x, y in zip(ca, cb):
        for name in x:
            assert torch.equal(x[name], y[name]), name
    assert sum(int(v.sum()) for c in ca for v in c.values()) > 20, "the network should be active"
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.mark.parametrize("text,pop,calls", [(DC_PAPER, "Ae", ["exp"]), (ODD, "E", ["tanh", "exp", "log"]),
                                           (ODD_RESET, "E", ["exp", "exp"])])
def test_cells_with_libm_calls_are_printed_vectorised(text, pop, calls):
    """The paper's neurons (exact conductance step: one exp per neuron) and the odd model
    take loops A-C: each call in a loop of its own, the spike list after the cell's loop."""
    net = build_network(yaml.safe_load(text), dt_ms=0.5, seed=0)
    source, _, _ = neuron_piece.population_piece(net.populations[pop], ext=False, counted=True)
    for m, fn in enumerate(calls):
        assert f"_lh{m}[b, j] = np.{fn}(_lh{m}[b, j])" in source
    assert "cb += s_" in source and "idx[b, cb] = j" not in source


@pytest.mark.parametrize("update,threshold,reset,calls", [
    ("v = v * exp(a) + exp(b)", "v > 1", "v = 0", ["exp", "exp"]),
    ("w = log(v)\nif v > 0:\n    u = u * tanh(u)", "v > 1", "v = exp(c)", ["log", "tanh", "exp"]),
    ("v = exp(exp(a))", "v > 1", "", None),                # an argument from a lifted value
    ("x = exp(a)\ny = log(x)", "y > 1", "", None),         # the same through a variable
    ("x = exp(a)\nif x > 1:\n    y = log(b)", "y > 1", "", None),  # reached under a lifted value
    ("v = exp(a)", "exp(v) > 1", "", None),                # a call in the threshold
    ("v = exp(a)", "v > 1", "u = log(b)", None),           # the reset runs where a lifted value decides
    ("v = v + 1", "v > 1", "v = 0", []),
])
def test_lift_cell_lifts_what_loop_a_can_compute(update, threshold, reset, calls):
    out = lift_cell(parse_block(update), parse_expr(threshold), parse_block(reset))
    assert (out.fns if out is not None else None) == calls


def test_loop_a_keeps_only_what_the_arguments_depend_on():
    update = parse_block("u = u + 1\nw = x * 2\nif x > 0:\n    y = w + 1\n    v = v * exp(y)\nz = v + u")
    out = lift_cell(update, parse_expr("v > 1"), parse_block("v = 0"))
    from snnrun.core.models.ir import Assign, If
    kept = [s.target for s in out.args if isinstance(s, Assign)]
    assert kept == ["w"] and isinstance(out.args[1], If)  # u and z are not needed; the branch is
    assert [s.target for s in out.args[1].body] == ["y", "_la0"]
