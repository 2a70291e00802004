"""Mistakes in models written in the config end as one line naming the config path, the
line and the symbol; rules that cannot act where they are placed are refused; the backend
says which one runs and why."""

from __future__ import annotations

import copy

import pytest

from snnrun.build import build_network
from snnrun.config.validate import ConfigError
from snnrun.core.simulate import make_simulator

BASE = {
    "populations": {
        "X": {"kind": "input", "n": 4, "traces": True},
        "E": {"kind": "equations", "n": 2, "params": {"tau_ms": 20.0, "v_th": 1.0}, "state": {"v": 0.0},
              "update": "v = v + dt / tau_ms * (-v)\nv = v + I", "threshold": "v >= v_th", "reset": "v = 0.0"},
    },
    "connections": {
        "XE": {"kind": "dense", "source": "X", "target": "E", "weight": 0.5, "wmin": 0.0, "wmax": 1.0,
               "learning": {"kind": "equations", "params": {"nu": 0.01},
                            "traces": {"pre": {"side": "pre", "tau_ms": 20.0, "set": 1.0}},
                            "on_post": "w += nu * pre"}},
    },
}

CASES = [
    # (where, key, new value, expected message)
    ("E", "update", "v = v + dt / tau * (-v)", "network.populations.E.update: line 1: unknown symbol 'tau' (did you mean 'tau_ms'?)"),
    ("E", "update", "v = v + I\ntau_ms = 2.0", "network.populations.E.update: line 2: cannot assign parameter 'tau_ms'"),
    ("E", "update", "v = sinh(v)", "network.populations.E.update: line 1: unsupported function 'sinh'"),
    ("E", "update", "v = (v + I", "network.populations.E.update: line 1: syntax error"),
    ("E", "update", "v = v + I\nwhile v > 0:\n    v = v - 1", "network.populations.E.update: line 2: unsupported statement (while)"),
    ("E", "update", "I = 0.0", "network.populations.E.update: line 1: cannot assign input 'I'"),
    ("E", "update", "v = v + (I > 0)", "network.populations.E.update: line 1: '+' takes numbers"),
    ("E", "threshold", "v + 1.0", "network.populations.E.threshold: the threshold must be a condition"),
    ("E", "threshold", "v >= vth", "network.populations.E.threshold: line 1: unknown symbol 'vth' (did you mean 'v_th'?)"),
    ("E", "refrac_ms", 2.0, "network.populations.E.refrac_ms: refrac_ms = 2.0 has no effect: the model never reads `active`"),
    ("E", "state", {"v": "w0"}, "network.populations.E.state: initial value of 'v': unknown symbol 'w0'"),
    ("E", "state", {"v": "I"}, "network.populations.E.state: initial value of 'v': unknown symbol 'I'"),
    ("E", "params", {"tau_ms": [1, 2]}, "network.populations.E.params.tau_ms: expected a number"),
    ("E", "state", {"I": 0.0}, "network.populations.E.state: 'I' is reserved"),
    ("XE", "on_post", "w += nu * pre * q", "network.connections.XE.learning.on_post: line 1: unknown symbol 'q'"),
    ("XE", "on_post", "w += nu * (pre + x_post)", "network.connections.XE.learning.on_post: line 1: the factor (pre + x_post) mixes"),
    ("XE", "on_post", "pre = 1.0", "network.connections.XE.learning.on_post: line 1: cannot assign presynaptic trace 'pre'"),
    ("XE", "on_post", "nu = 1.0", "network.connections.XE.learning.on_post: line 1: cannot assign parameter 'nu'"),
    ("XE", "on_post", "w = 1.0", "network.connections.XE.learning.on_post: line 1: can only increment (+= / -=) weight 'w'"),
    ("XE", "traces", {"pre": {"side": "both"}}, "network.connections.XE.learning.traces: trace 'pre': side must be pre or post"),
]


@pytest.mark.parametrize("where,key,value,message", CASES, ids=[c[3].split(": ", 1)[1][:40] for c in CASES])
def test_model_mistakes_name_path_line_and_symbol(where, key, value, message):
    cfg = copy.deepcopy(BASE)
    target = cfg["populations"][where] if where in cfg["populations"] else cfg["connections"][where]["learning"]
    target[key] = value
    with pytest.raises(ConfigError) as err:
        build_network(cfg)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_the_base_config_builds():
    net = build_network(BASE)
    assert net.populations["E"].kind == "equations"


def test_built_in_parameter_checks_keep_their_messages():
    with pytest.raises(ConfigError, match=r"network\.populations\.E\.tau_mem_ms: must be > 0, got -1\.0"):
        build_network({"populations": {"E": {"kind": "lif", "n": 2, "tau_mem_ms": -1.0}}, "connections": {}})
    with pytest.raises(ConfigError, match=r"network\.populations\.E\.integration: 'rk4' is not one of: exact, held, euler"):
        build_network({"populations": {"E": {"kind": "lif", "n": 2, "integration": "rk4"}}, "connections": {}})
    with pytest.raises(ConfigError, match=r"network\.populations\.E\.integration: euler needs dt <= tau_ge_ms"):
        build_network({"populations": {"E": {"kind": "lif", "n": 2, "synapse": "conductance", "integration": "euler"}},
                       "connections": {}}, dt_ms=1.5)
    with pytest.raises(ConfigError, match=r"network\.populations\.E\.refrac_ms: refrac_ms = 2\.0 has no effect"):
        build_network({"populations": {"E": {"kind": "mcculloch_pitts", "n": 2, "refrac_ms": 2.0}}, "connections": {}})


def test_a_connection_into_an_input_population_is_refused():
    cfg = {"populations": {"X": {"kind": "input", "n": 2}, "E": {"kind": "lif", "n": 2}},
           "connections": {"EX": {"kind": "dense", "source": "E", "target": "X", "learning": {"kind": "post_pre"}}}}
    with pytest.raises(ConfigError, match=r"network\.connections\.EX\.target: 'X' is an input population"):
        build_network(cfg)


def test_backend_note_says_which_runs_and_why():
    net = build_network(BASE)
    assert make_simulator(net, ["E"], "auto").note == "numba (the fused CPU kernel)"
    assert make_simulator(net, ["E"], "torch").note.startswith("torch (the eager torch step")
    sparse = copy.deepcopy(BASE)
    sparse["connections"]["XE"]["kind"] = "sparse"
    sparse["connections"]["XE"]["density"] = 1.0
    net = build_network(sparse)
    note = make_simulator(net, ["E"], "auto").note
    assert note == ("torch, not the fused kernel: connection 'XE' of kind sparse is not supported "
                    "(fused kinds: dense, one_to_one, conv2d, local)")
    with pytest.raises(ValueError, match="numba cannot run this network: connection 'XE' of kind sparse"):
        make_simulator(net, ["E"], "numba")


def test_a_reward_rule_in_the_unsupervised_task_is_refused():
    from snnrun.run.backend import check_rewards

    cfg = copy.deepcopy(BASE)
    cfg["connections"]["XE"]["learning"] = {"kind": "mstdp"}
    with pytest.raises(ConfigError, match=r"network\.connections\.XE\.learning: mstdp reads the reward, but the "
                                          r"unsupervised task gives none"):
        check_rewards(build_network(cfg), "unsupervised")
    check_rewards(build_network(BASE), "unsupervised")  # a rule without reward: fine
