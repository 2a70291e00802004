"""Every component kind builds from YAML; every bad input gives one clear error naming
the config path (and, for kinds, the valid choices)."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml
from hydra import compose, initialize_config_module

from snnrun.build import build_encoder, build_network
from snnrun.config import ConfigError
from snnrun.core import CONNECTIONS, ENCODERS, NEURONS, RULES

ALL_KINDS_YAML = """
populations:
  X:   {kind: input, shape: [1, 6, 6], traces: true}
  IF:  {kind: if, n: 4}
  L:   {kind: lif, n: 4, traces: true, trace_mode: additive}
  LC:  {kind: lif, n: 4, synapse: conductance}
  CL:  {kind: current_lif, n: 4, tau_syn_ms: 3.0}
  AL:  {kind: adaptive_lif, n: 4, theta_plus_mv: 0.5}
  DC:  {kind: diehl_cook, n: 4, traces: true}
  IZ:  {kind: izhikevich, n: 4, preset: chattering}
  MP:  {kind: mcculloch_pitts, n: 4, v_thresh_mv: 0.5}
  CV:  {kind: lif, shape: [2, 4, 4], traces: true}
  LO:  {kind: lif, shape: [2, 2, 2], traces: true}
  EQ:  {kind: equations, n: 4, params: {tau_ms: 10.0}, state: {v: 0.0}, update: "v = v * exp(-dt / tau_ms) + I",
        threshold: "v >= 1.0", reset: "v = 0.0"}
connections:
  d:   {kind: dense, source: X, target: L, weight: {dist: normal, mean: 0.5, std: 0.1}, wmin: 0, wmax: 1, norm: 5.0,
        learning: {kind: post_pre, nu_pre: 1.0e-4, nu_post: 1.0e-2, reduction: mean}}
  wd:  {kind: dense, source: X, target: DC, weight: 0.2, wmin: 0, wmax: 1, learning: {kind: weight_dependent_post_pre}}
  hb:  {kind: dense, source: X, target: IF, weight: 0.1, learning: {kind: hebbian}, bias: 0.5}
  tr:  {kind: dense, source: X, target: LC, delay_ms: {max_ms: 3}, learning: {kind: triplet_post_pre}}
  ms:  {kind: dense, source: X, target: CL, learning: {kind: mstdp, nu: 0.1}}
  me:  {kind: dense, source: X, target: AL, learning: {kind: mstdpet, tau_e_ms: 10.0, reward_mode: episode}}
  nn:  {kind: dense, source: X, target: IZ, delay_ms: 2, learning: {kind: none}}
  rec: {kind: dense, source: L, target: L, weight: -1.0, mask: all_but_self}
  inh: {kind: dense, source: L, target: LC, weight: 2.0, receptor: inh}
  o2o: {kind: one_to_one, source: L, target: MP, weight: 1.0}
  cv:  {kind: conv2d, source: X, target: CV, kernel_size: 3, stride: 1, padding: 0, learning: {kind: post_pre}}
  lo:  {kind: local, source: X, target: LO, kernel_size: 3, stride: 3, learning: {kind: post_pre}, norm: 1.0}
  sp:  {kind: sparse, source: X, target: L, density: 0.5, learning: {kind: post_pre}}
  eq:  {kind: dense, source: X, target: EQ, weight: 0.3, wmin: 0, wmax: 1,
        learning: {kind: equations, params: {nu: 0.01}, traces: {pre: {side: pre, tau_ms: 20.0, set: 1.0}},
                   on_post: "w += nu * pre"}}
"""


def test_every_kind_is_covered_by_the_yaml():
    cfg = yaml.safe_load(ALL_KINDS_YAML)
    used_pops = {p["kind"] for p in cfg["populations"].values()}
    used_conns = {c["kind"] for c in cfg["connections"].values()}
    used_rules = {c["learning"]["kind"] for c in cfg["connections"].values() if "learning" in c}
    assert used_pops == set(NEURONS.kinds())
    assert used_conns == set(CONNECTIONS.kinds())
    assert used_rules == set(RULES.kinds()) - {"none"} | {"none"}


def test_all_kinds_build_from_yaml_and_run():
    net = build_network(yaml.safe_load(ALL_KINDS_YAML), dt_ms=1.0, seed=0)
    assert set(net.populations) == set(yaml.safe_load(ALL_KINDS_YAML)["populations"])
    x = torch.rand(20, 2, 1, 6, 6) < 0.3
    net.set_reward(1.0)
    net.run({"X": x})
    for pop in net.populations.values():
        assert pop.s.shape == (2, *pop.shape)
    state = net.state_dict()
    assert "populations.DC.theta" in state and "connections.cv.w" in state


@pytest.mark.parametrize("kind", ENCODERS.kinds())
def test_every_encoder_builds(kind):
    extra = {"low": [0.0] * 5, "high": [1.0] * 5, "n_per_dim": 4} if kind == "receptive_field" else {}
    enc = build_encoder({"kind": kind, "time_ms": 10.0, **extra}, dt_ms=1.0)
    if kind == "events":  # recorded events, not values: one event per sample at t = 2.5 ms, neuron 4
        from snnrun.core.encoders import EventBatch

        x = EventBatch(torch.arange(3), torch.full((3,), 4), torch.full((3,), 2500), torch.Size([3, 5]))
        out = enc(x)
        assert out.nonzero().tolist() == [[2, 0, 4], [2, 1, 4], [2, 2, 4]]
    else:
        out = enc(torch.rand(3, 5))
    assert out.shape == (10, 3, *enc.out_shape((5,)))
    assert enc.out_shape((5,)) == ((20,) if kind == "receptive_field" else (5,))


BASE = {
    "populations": {"X": {"kind": "input", "n": 4}, "E": {"kind": "lif", "n": 3}},
    "connections": {"XE": {"kind": "dense", "source": "X", "target": "E", "weight": 0.5,
                           "learning": {"kind": "post_pre"}}},
}

BAD = [
    ("populations.E.kind", "lif2", "network.populations.E.kind: 'lif2' is not a neuron kind", "choose one of: "),
    ("populations.E.n", -5, "network.populations.E.n: must be a positive integer, got -5", None),
    ("populations.E.n", "ten", "network.populations.E.n: expected an integer, got 'ten'", None),
    ("populations.E.tau_mem_ms", "abc", "network.populations.E.tau_mem_ms: expected a number, got 'abc'", None),
    ("populations.E.tau_mem_ms", -1.0, "network.populations.E.tau_mem_ms: must be > 0", None),
    ("populations.E.tua_mem_ms", 3.0, "network.populations.E.tua_mem_ms: unknown key (did you mean 'tau_mem_ms'?)", None),
    ("populations.E.traces", "yes", "network.populations.E.traces: expected true/false", None),
    ("populations.E.shape", [2, 0], "network.populations.E.shape: dimensions must be positive", None),
    ("connections.XE.source", "Y", "network.connections.XE.source: 'Y' is not a population; populations are: X, E", None),
    ("connections.XE.target", None, "network.connections.XE.target: missing required value", None),
    ("connections.XE.kind", "fully_connected", "network.connections.XE.kind: 'fully_connected' is not a connection kind",
     "choose one of: "),
    ("connections.XE.learning.kind", "stdp", "network.connections.XE.learning.kind: 'stdp' is not a learning rule kind",
     "post_pre"),
    ("connections.XE.learning.nu_pre", "x", "network.connections.XE.learning.nu_pre: expected a number", None),
    ("connections.XE.weight", {"dist": "gaussian"}, "network.connections.XE.weight.dist: 'gaussian' is not one of", None),
    ("connections.XE.kind", "one_to_one", "network.connections.XE.target: one_to_one needs equal sizes", None),
    ("connections.XE.delay_ms", 0.3, "network.connections.XE.delay_ms: 0.3 ms is not a whole number", None),
    ("connections.XE.wmax", -1.0, "network.connections.XE.wmax: must be >= wmin", None),
]


def _set(cfg, dotted, value):
    node = cfg
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is None:
        node.pop(keys[-1])
    else:
        node[keys[-1]] = value


@pytest.mark.parametrize("key,value,expected,also", BAD, ids=[f"{k}={v}" for k, v, _, _ in BAD])
def test_bad_network_config_names_the_path(key, value, expected, also):
    cfg = copy.deepcopy(BASE)
    _set(cfg, key, value)
    if key == "connections.XE.wmax":
        cfg["connections"]["XE"]["wmin"] = 0.0
    with pytest.raises(ConfigError) as err:
        build_network(cfg)
    msg = str(err.value)
    assert msg.startswith(expected), msg
    assert "\n" not in msg
    if also:
        assert also in msg


def test_conv_shape_mismatch_is_reported():
    cfg = yaml.safe_load("""
populations:
  X: {kind: input, shape: [1, 6, 6]}
  C: {kind: lif, shape: [2, 5, 5]}
connections:
  c: {kind: conv2d, source: X, target: C, kernel_size: 3}
""")
    with pytest.raises(ConfigError, match=r"network.connections.c.target: .*\[2, 4, 4\]"):
        build_network(cfg)


def test_unknown_encoder_kind_lists_choices():
    with pytest.raises(ConfigError, match="encoder.kind: 'poison' is not an encoder kind .*choose one of: .*poisson"):
        build_encoder({"kind": "poison"})


@pytest.mark.parametrize("experiment", ["diehl_cook", "diehl_cook_bindsnet"])
def test_experiment_configs_compose_and_build(experiment):
    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}", "n_neurons=16"])
    net = build_network(cfg.network, dt_ms=cfg.dt_ms, seed=0)
    assert net.populations["Ae"].n == 16
    assert cfg.name == experiment
    build_encoder(cfg.encoder, dt_ms=cfg.dt_ms)


@pytest.mark.parametrize("n, epochs", [(400, 3), (1600, 7), (6400, 15)])
def test_paper_size_presets_change_only_size_and_epochs(n, epochs):
    """diehl_cook_<n>: the paper's network size and epochs, everything else as diehl_cook."""
    from omegaconf import OmegaConf

    with initialize_config_module("snnrun.configs", version_base="1.3"):
        base = OmegaConf.to_container(compose("config", overrides=["+experiment=diehl_cook"]), resolve=True)
        big = OmegaConf.to_container(compose("config", overrides=[f"+experiment=diehl_cook_{n}"]), resolve=True)
    assert (big["name"], big["n_neurons"], big["train"]["epochs"]) == (f"diehl_cook_{n}", n, epochs)
    assert big["network"]["populations"]["Ae"]["n"] == big["network"]["populations"]["Ai"]["n"] == n
    base["network"]["populations"]["Ae"]["n"] = base["network"]["populations"]["Ai"]["n"] = n
    base.update(name=big["name"], n_neurons=n)
    base["tracking"]["experiment"] = big["name"]  # the MLflow experiment follows the name
    base["train"]["epochs"] = epochs
    assert big == base


def test_grid_distance_weights_by_hand():
    """3 x 3 grid, near -1, far -9: d_max = sqrt(8); neuron 0 -> 1 (d 1): -1, 0 -> 4 (d sqrt 2):
    -1 - 8 (sqrt2 - 1) / (sqrt8 - 1), 0 -> 8 (d sqrt 8): -9, diagonal 0; a non-square layer is named."""
    import math

    net = build_network({"populations": {"E": {"kind": "lif", "n": 9}},
                         "connections": {"EE": {"kind": "dense", "source": "E", "target": "E",
                                                "weight": {"dist": "grid_distance", "low": -1.0, "high": -9.0},
                                                "mask": "all_but_self"}}})
    w = net.connections["EE"].w
    assert w[0, 1].item() == pytest.approx(-1.0) and w[0, 8].item() == pytest.approx(-9.0)
    assert w[0, 4].item() == pytest.approx(-1.0 - 8.0 * (math.sqrt(2) - 1) / (math.sqrt(8) - 1), rel=1e-6)
    assert torch.equal(w, w.T) and w.diagonal().abs().sum().item() == 0.0
    with pytest.raises(ConfigError, match=r"network\.connections\.EE\.weight\.dist: grid_distance needs .* square"):
        build_network({"populations": {"E": {"kind": "lif", "n": 8}},
                       "connections": {"EE": {"kind": "dense", "source": "E", "target": "E",
                                              "weight": {"dist": "grid_distance", "low": -1.0, "high": -9.0}}}})


def test_same_position_mask_by_hand():
    """[2, 1, 2] population: neurons (c, y, x) = 0:(0,0,0) 1:(0,0,1) 2:(1,0,0) 3:(1,0,1); only
    different channels at the same position connect (0-2, 1-3); a flat layer is named."""
    net = build_network({"populations": {"E": {"kind": "lif", "shape": [2, 1, 2]}},
                         "connections": {"EE": {"kind": "dense", "source": "E", "target": "E", "weight": -3.0,
                                                "mask": "same_position"}}})
    w = net.connections["EE"].w
    assert w.tolist() == [[0, 0, -3, 0], [0, 0, 0, -3], [-3, 0, 0, 0], [0, -3, 0, 0]]
    with pytest.raises(ConfigError, match=r"network\.connections\.EE\.mask: same_position needs source and target of one shape"):
        build_network({"populations": {"E": {"kind": "lif", "n": 4}},
                       "connections": {"EE": {"kind": "dense", "source": "E", "target": "E", "mask": "same_position"}}})


def test_readout_eval_needs_the_assign_pass():
    from snnrun.config.schema import TrainConfig
    from snnrun.config.validate import from_dict

    with pytest.raises(ConfigError, match=r"train\.readout_eval: needs train\.assign_pass: true"):
        from_dict(TrainConfig, {"readout_eval": True}, "train")
    assert from_dict(TrainConfig, {"readout_eval": True, "assign_pass": True}, "train").readout_eval
