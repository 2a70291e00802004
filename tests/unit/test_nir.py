"""NIR export and import (snnrun.interop.nir_io): the round trip is exact spike for spike, the
parameter mapping matches hand-derived values, unsupported elements are refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from snnrun.build import build_network  # noqa: E402
from snnrun.config.validate import ConfigError  # noqa: E402
from snnrun.core.record import Recorder  # noqa: E402
from snnrun.interop import NIRError, from_nir, to_nir, write_nir  # noqa: E402

CFG = {
    "populations": {
        "X": {"kind": "input", "shape": [2, 3, 4]},
        "H": {"kind": "lif", "n": 40, "refrac_ms": 0.0, "tau_mem_ms": 20.0, "v_rest_mv": -65.0, "v_reset_mv": -70.0,
              "v_thresh_mv": -60.0},
        "O": {"kind": "if", "n": 6, "refrac_ms": 0.0, "v_rest_mv": -65.0, "v_reset_mv": -65.0, "v_thresh_mv": -63.0},
        "P": {"kind": "lif", "n": 6, "refrac_ms": 0.0},
    },
    "connections": {
        "X_H": {"kind": "dense", "source": "X", "target": "H", "weight": "0.8 * U(0, 1)", "bias": 0.05},
        "H_H": {"kind": "dense", "source": "H", "target": "H", "weight": "0.3 * (eye - 1)"},
        "H_O": {"kind": "dense", "source": "H", "target": "O", "weight": "N(0.3, 0.5)"},
        "O_P": {"kind": "one_to_one", "source": "O", "target": "P", "weight": 20.0},
    },
}


SPEC = {"H": ["s", "v"], "O": ["s", "v"], "P": ["s"]}


def record(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    rec = Recorder(SPEC)
    net.run({"X": x}, recorders=[rec], learning=False, reset=True)
    return {f"{p}.{v}": rec.get(p, v).clone() for p, vs in SPEC.items() for v in vs}


def test_round_trip_is_exact_spike_for_spike(tmp_path):
    net = build_network(CFG, dt_ms=0.5, seed=3)
    write_nir(net, tmp_path / "net.nir")
    back = from_nir(tmp_path / "net.nir")
    assert back.dt == 0.5 and list(back.populations) == list(net.populations)
    for name, conn in net.connections.items():
        assert torch.equal(back.connections[name].w, conn.w), name
    x = torch.rand(200, 3, 2, 3, 4, generator=torch.Generator().manual_seed(0)) < 0.3
    a, b = record(net, x), record(back, x)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["H.s"].sum() > 100 and a["O.s"].sum() > 10 and a["P.s"].sum() > 0  # the test exercises every layer


def test_exported_parameters_follow_the_stated_mapping():
    """dt 0.5 ms: LIF tau 20 ms -> 0.02 s, r = tau / dt = 40; IF r = 1 / dt = 2000 /s with
    voltages relative to v_rest (threshold -63 - -65 = 2, reset 0); weights transposed."""
    net = build_network(CFG, dt_ms=0.5, seed=3)
    graph, notes = to_nir(net)
    assert notes == []
    h, o = graph.nodes["H"], graph.nodes["O"]
    assert isinstance(h, nir.LIF) and isinstance(o, nir.IF)
    assert np.allclose(h.tau, 0.02) and np.allclose(h.r, 40.0) and np.allclose(h.v_leak, -65.0)
    assert np.allclose(h.v_threshold, -60.0) and np.allclose(h.v_reset, -70.0)
    assert np.allclose(o.r, 2000.0) and np.allclose(o.v_threshold, 2.0) and np.allclose(o.v_reset, 0.0)
    assert isinstance(graph.nodes["X_H"], nir.Affine) and isinstance(graph.nodes["H_O"], nir.Linear)
    assert np.array_equal(graph.nodes["H_O"].weight, net.connections["H_O"].w.numpy().T)
    assert isinstance(graph.nodes["O_P"], nir.Scale)
    assert ("P", "P_output") in graph.edges and "H_output" not in graph.nodes  # H is read by O
    assert graph.metadata["dt"] == pytest.approx(0.0005)


def test_import_folds_the_input_gain_into_the_weights():
    """A hand-made graph: Input(1) -> Linear(0.25) -> IF(r = 2 / dt, threshold 1).  Gain
    r dt = 2 doubles the weight: 0.5 per spike.  Driven every step for T = 9 steps, the IF
    neuron gets its first input at step 1 (one-step delivery): v = 0.5 k after k inputs, so
    it fires at steps 2, 4, 6, 8 (v >= 1, reset to 0): 4 spikes."""
    dt_s = 0.001
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([1])}),
                                   nir.Linear(weight=np.array([[0.25]], dtype=np.float32)),
                                   nir.IF(r=np.array([2.0 / dt_s]), v_threshold=np.array([1.0]), v_reset=np.array([0.0])),
                                   nir.Output(output_type={"output": np.array([1])}))
    graph.metadata = {"dt": dt_s}
    net = from_nir(graph)
    (conn,) = net.connections.values()
    assert conn.w.flatten().tolist() == [0.5]
    (out,) = [n for n, p in net.populations.items() if not p.is_input]
    rec = Recorder({out: ["s"]})
    (inp,) = [n for n, p in net.populations.items() if p.is_input]
    net.run({inp: torch.ones(9, 1, 1, dtype=torch.bool)}, recorders=[rec], learning=False)
    assert rec.get(out, "s")[:, 0, 0].nonzero().flatten().tolist() == [2, 4, 6, 8]


def test_lif_gain_uses_tau():
    """nir.LIF with r = 3 tau / dt: gain r dt / tau = 3."""
    dt_s, tau = 0.001, 0.01
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([2])}),
                                   nir.Affine(weight=np.array([[1.0, -2.0]], dtype=np.float32), bias=np.array([0.5], np.float32)),
                                   nir.LIF(tau=np.array([tau]), r=np.array([3 * tau / dt_s]), v_leak=np.array([0.0]),
                                           v_threshold=np.array([1.0]), v_reset=np.array([0.0])),
                                   nir.Output(output_type={"output": np.array([1])}))
    net = from_nir(graph, dt_ms=1.0)
    (conn,) = net.connections.values()
    assert conn.w.flatten().tolist() == [3.0, -6.0] and conn.b.flatten().tolist() == [1.5]
    (pop,) = [p for p in net.populations.values() if not p.is_input]
    assert pop.params.tau_mem_ms == pytest.approx(10.0)
    assert math.isclose(pop.params.v_thresh_mv, 1.0)


def _variant(path: str, value) -> dict:
    import copy

    cfg = copy.deepcopy(CFG)
    section, name, key = path.split(".")
    cfg[section][name][key] = value
    return cfg


@pytest.mark.parametrize("path, value, message", [
    ("populations.H.refrac_ms", 2.0, "network.populations.H: refractory period 2 ms: NIR's neurons have none"),
    ("populations.O.reset_mode", "subtract", "network.populations.O: reset_mode subtract: NIR's IF resets to v_reset"),
    ("populations.H.synapse", "conductance", "network.populations.H: conductance-based synapses have no NIR node"),
    ("populations.H.one_spike", True, "network.populations.H: one_spike"),
    ("populations.H.kind", "izhikevich", "network.populations.H: neuron kind 'izhikevich' has no NIR node"),
    ("connections.H_O.delay_ms", 2.0, "network.connections.H_O: transmission delays"),
])
def test_unsupported_elements_are_refused_by_name(path, value, message):
    cfg = _variant(path, value)
    if path.endswith("kind"):
        cfg["populations"]["H"] = {"kind": "izhikevich", "n": 40}
    net = build_network(cfg, dt_ms=0.5, seed=0)
    with pytest.raises(NIRError) as err:
        to_nir(net)
    assert str(err.value).startswith(message), str(err.value)


def test_learning_rule_is_a_note_not_a_silent_drop():
    cfg = _variant("connections.H_O.learning", {"kind": "post_pre", "nu_pre": 1e-4, "nu_post": 1e-2})
    cfg["populations"]["H"]["traces"] = True
    cfg["populations"]["O"]["traces"] = True
    _, notes = to_nir(build_network(cfg, dt_ms=0.5, seed=0))
    assert notes == ["network.connections.H_O: learning rule 'post_pre' not exported (NIR has no plasticity); "
                     "its trained weights are"]


def test_import_refusals_name_the_node(tmp_path):
    lif = dict(tau=np.array([0.01, 0.02]), r=np.array([10.0, 20.0]), v_leak=np.zeros(2), v_threshold=np.ones(2),
               v_reset=np.zeros(2))
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([2])}), nir.Linear(weight=np.eye(2)),
                                   nir.LIF(**lif), nir.Output(output_type={"output": np.array([2])}))
    with pytest.raises(NIRError, match="per-neuron tau values differ"):
        from_nir(graph, dt_ms=1.0)
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([2])}), nir.Linear(weight=np.eye(2)),
                                   nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                               v_threshold=np.ones(2)),
                                   nir.Output(output_type={"output": np.array([2])}))
    with pytest.raises(NIRError, match="CubaLIF nodes are not imported"):
        from_nir(graph, dt_ms=1.0)
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(NIRError, match="is not a readable NIR file"):
        from_nir(tmp_path / "bad.nir")


def test_nir_file_as_a_run_network(tmp_path):
    net = build_network(CFG, dt_ms=0.5, seed=3)
    write_nir(net, tmp_path / "net.nir")
    built = build_network({"nir": str(tmp_path / "net.nir")}, dt_ms=0.5)
    assert torch.equal(built.connections["H_O"].w, net.connections["H_O"].w)
    with pytest.raises(ConfigError) as err:
        build_network({"nir": str(tmp_path / "net.nir")}, dt_ms=1.0)
    assert str(err.value) == f"dt_ms: 1 ms, but {str(tmp_path / 'net.nir')!r} was exported at dt 0.5 ms; set dt_ms=0.5"
    with pytest.raises(ConfigError, match=r"^network.nir: .*missing.nir' is not a file"):
        build_network({"nir": str(tmp_path / "missing.nir")}, dt_ms=0.5)


def test_a_shaped_hidden_population_exports_flat():
    cfg = {"populations": {"X": {"kind": "input", "n": 3}, "H": {"kind": "lif", "shape": [1, 2, 2], "refrac_ms": 0.0},
                           "O": {"kind": "lif", "n": 2, "refrac_ms": 0.0}},
           "connections": {"X_H": {"kind": "dense", "source": "X", "target": "H", "weight": 10.0},
                           "H_O": {"kind": "dense", "source": "H", "target": "O", "weight": 10.0}}}
    net = build_network(cfg, dt_ms=1.0)
    graph, _ = to_nir(net)
    assert "H_flat" not in graph.nodes and graph.nodes["O_output"].output_type["output"].tolist() == [2]
    back = from_nir(graph)
    assert back.populations["H"].n == 4 and torch.equal(back.connections["H_O"].w, net.connections["H_O"].w)


def test_generated_node_names_never_replace_a_population():
    cfg = {"populations": {"X": {"kind": "input", "n": 2}, "b": {"kind": "lif", "n": 2, "refrac_ms": 0.0},
                           "b_output": {"kind": "lif", "n": 2, "refrac_ms": 0.0}},
           "connections": {"X_b": {"kind": "dense", "source": "X", "target": "b", "weight": 1.0},
                           "X_bo": {"kind": "dense", "source": "X", "target": "b_output", "weight": 1.0}}}
    with pytest.raises(NIRError, match="network.populations.b: its NIR node name 'b_output' is taken"):
        to_nir(build_network(cfg, dt_ms=1.0))


def test_a_flatten_without_weights_after_it_is_refused():
    lif = dict(tau=np.full(4, 0.01), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4))
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2, 2])}),
                                "fl": nir.Flatten(input_type={"input": np.array([2, 2])}, start_dim=0),
                                "n": nir.LIF(**lif), "out": nir.Output(output_type={"output": np.array([4])})},
                         edges=[("in", "fl"), ("fl", "n"), ("n", "out")])
    with pytest.raises(NIRError, match="nir node 'fl': a Flatten is imported only between one population and weight nodes"):
        from_nir(graph, dt_ms=1.0)
