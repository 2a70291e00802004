"""train.weight_schedule: a fixed connection's weights ramped linearly to a constant over a
fraction of training (LM-SNN's inhibition growing from a distance profile to uniform)."""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.build import build_network
from snnrun.config.schema import TrainConfig
from snnrun.config.validate import ConfigError, from_dict
from snnrun.run.unsupervised import WeightRamp

NET = {
    "populations": {"X": {"kind": "input", "n": 3}, "E": {"kind": "lif", "n": 4}},
    "connections": {
        "X_E": {"kind": "dense", "source": "X", "target": "E", "learning": {"kind": "post_pre"}},
        "E_E": {"kind": "dense", "source": "E", "target": "E", "mask": "all_but_self",
                "weight": {"dist": "grid_distance", "low": 1.0, "high": 17.0}},
    },
}


def test_ramp_moves_weights_linearly_to_the_target_and_keeps_the_mask():
    net = build_network(NET, seed=0)
    w = net.connections["E_E"].w
    storage = w.data_ptr()
    # 2 x 2 grid: side neighbours (distance 1) get 1, diagonal ones (sqrt 2) get 17
    assert w[0].tolist() == [0.0, 1.0, 1.0, 17.0]
    ramp = WeightRamp(net, "E_E", to=17.0, over=0.5)
    ramp.apply(0.0)
    assert w[0].tolist() == [0.0, 1.0, 1.0, 17.0]
    ramp.apply(0.125)  # a quarter of the way: 1 + (17 - 1) / 4 = 5
    assert w[0].tolist() == [0.0, 5.0, 5.0, 17.0]
    ramp.apply(0.7)  # past `over`: uniform 17 off the diagonal, the diagonal stays 0
    assert torch.equal(w, 17.0 * (1 - torch.eye(4)))
    assert w.data_ptr() == storage, "updated in place (the fused kernel shares the tensor)"


def test_ramp_errors_name_the_connection():
    net = build_network(NET, seed=0)
    with pytest.raises(ConfigError, match=r"train.weight_schedule.connection: no connection 'E_X'; connections are: X_E, E_E"):
        WeightRamp(net, "E_X", to=1.0, over=1.0)
    with pytest.raises(ConfigError, match="connection 'X_E' learns \\(post_pre\\); only fixed connections"):
        WeightRamp(net, "X_E", to=1.0, over=1.0)


@pytest.mark.parametrize("value,message", [
    ({"connection": "E_E", "to": 1.0, "over": 0.0}, "train.weight_schedule.over: must be in \\(0, 1\\], got 0.0"),
    ({"connection": "E_E", "to": math.inf}, "train.weight_schedule.to: must be a finite number"),
    ({"connection": "E_E"}, "train.weight_schedule.to: missing required value"),
    ({"conection": "E_E", "to": 1.0}, "train.weight_schedule.conection: unknown key \\(did you mean 'connection'\\?\\)"),
])
def test_schedule_config_errors(value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, {"weight_schedule": value}, "train")
