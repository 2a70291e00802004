"""Resume continues the stored config: harmless keys may change, result-changing ones may not."""

from __future__ import annotations

import pytest

from snnrun.config.validate import ConfigError
from snnrun.run.resume import override_keys, resumed_config

STORED = {"name": "dc", "seed": 0, "device": "cpu", "resume": None, "data": {"n_train": 1000, "root": "a"},
          "train": {"progress": True}, "network": {"populations": {"Ae": {"n": 100}}}}


def test_resume_alone_takes_the_stored_config():
    given = {"name": "default", "seed": 0, "device": "cpu", "resume": "outputs/x", "data": {"n_train": None}}
    out = resumed_config(STORED, given, ["resume=outputs/x"])
    assert out["name"] == "dc" and out["data"] == {"n_train": 1000, "root": "a"} and out["resume"] == "outputs/x"


def test_harmless_overrides_are_taken_others_refused_with_each_difference():
    given = {**STORED, "device": "cuda", "data": {"n_train": 400, "root": "b"}, "train": {"progress": False},
             "network": {"populations": {"Ae": {"n": 30}}}, "resume": "r"}
    out = resumed_config(STORED, given, ["+experiment=dc", "device=cuda", "data.root=b", "train.progress=false", "resume=r"])
    assert out["device"] == "cuda" and out["data"]["root"] == "b" and out["train"]["progress"] is False
    with pytest.raises(ConfigError) as info:
        resumed_config(STORED, given, ["data.n_train=400", "+network.populations.Ae.n=30", "device=cuda"])
    msg = str(info.value)
    assert "data.n_train: 1000 -> 400" in msg and "network.populations.Ae.n: 100 -> 30" in msg and "device" not in msg


def test_python_api_compares_every_key_and_same_values_pass():
    assert resumed_config(STORED, {**STORED, "resume": "r"}, None)["resume"] == "r"
    with pytest.raises(ConfigError, match="seed: 0 -> 1"):
        resumed_config(STORED, {**STORED, "seed": 1}, None)


def test_override_keys():
    assert override_keys(["+experiment=dc", "a.b=1", "+c=2", "++d.e=3", "~f", "hydra.run.dir=x"]) == ["a.b", "c", "d.e", "f"]
