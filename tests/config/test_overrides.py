"""Overrides that would change nothing are refused, naming the key (and the likely one)."""

from __future__ import annotations

import pytest

from snnrun.config.overrides import check_experiment_package, check_overrides_used, referenced_names
from snnrun.config.validate import ConfigError

CFG = {"n_neurons": 100, "n_filters": 25, "network": {"populations": {"Ae": {"shape": ["${n_filters}", 4, 4]},
                                                                       "Ai": {"n": "${n_neurons}"}}},
       "encoder": {"rate": "${oc.env:RATE,1}"}}
SCHEMA = ("network", "encoder", "train", "seed")


def test_referenced_names_are_the_interpolated_top_level_keys():
    assert referenced_names(CFG) >= {"n_filters", "n_neurons"}
    assert "RATE" not in referenced_names(CFG)


def test_a_typo_override_is_refused_with_the_near_name():
    with pytest.raises(ConfigError, match=r"n_neuron: nothing in this experiment uses it.*did you mean 'n_neurons'"):
        check_overrides_used(CFG, ["+n_neuron=30"], SCHEMA)


def test_a_variable_the_experiment_does_not_use_is_refused():
    cfg = {**CFG, "network": {"populations": {"Ae": {"shape": ["${n_filters}", 4, 4]}}}}  # conv_mnist-like
    with pytest.raises(ConfigError, match="n_neurons"):
        check_overrides_used(cfg, ["n_neurons=100"], SCHEMA)
    check_overrides_used(cfg, ["n_filters=9", "seed=3", "network.populations.Ae.v=1", "+experiment=x",
                               "hydra.run.dir=o", "+hparams_search=optuna"], SCHEMA, groups=["hparams_search"])
    with pytest.raises(ConfigError, match="hparams_search"):  # a config group only when Hydra says so
        check_overrides_used(cfg, ["+hparams_search=optuna"], SCHEMA)


def test_an_experiment_without_the_package_header_is_refused():
    with pytest.raises(ConfigError, match="@package _global_"):
        check_experiment_package({"experiment": {"name": "mine"}, "network": {}})
    check_experiment_package({"network": {}})
