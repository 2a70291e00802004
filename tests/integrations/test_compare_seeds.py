"""experiments/analysis/compare_seeds.py: the statistics against hand-derived values, and the
per-seed table read back from a real MLflow store."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import mlflow
import pytest

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "analysis" / "compare_seeds.py"
_spec = importlib.util.spec_from_file_location("compare_seeds", _PATH)
cs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cs)


def test_welch_t_by_hand():
    # means 2 and 5, variances 1 and 1, n 3 each: t = -3 / sqrt(1/3 + 1/3)
    assert cs.welch_t([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(-3 / math.sqrt(2 / 3))
    # unequal variances: a var 4 (n 3), b var 0.5 (n 2): t = (3 - 0.5) / sqrt(4/3 + 1/2)
    assert cs.welch_t([1.0, 3.0, 5.0], [0.0, 1.0]) == pytest.approx(2.5 / math.sqrt(4 / 3 + 0.5 / 2))


def test_permutation_p_exact_and_sampled():
    # a fully above b: only 1 of the C(6, 3) = 20 splits reaches the observed lead
    assert cs.permutation_p([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(1 / 20)
    # a fully below b: every split's lead is >= the observed (most negative) one
    assert cs.permutation_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(1.0)
    # ties count as reaching it: identical groups give p = 1
    assert cs.permutation_p([2.0, 2.0], [2.0, 2.0]) == pytest.approx(1.0)
    # the sampled branch agrees with the exact value within its noise
    assert cs.permutation_p([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], max_exact=0, n_random=20_000) == pytest.approx(0.05, abs=0.006)


def _log(uri: str, experiment: str, seed: int, acc: float, prop: float, status: str = "FINISHED", **params) -> None:
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id)
    client.log_param(run.info.run_id, "seed", seed)
    for k, v in params.items():
        client.log_param(run.info.run_id, k, v)
    client.log_metric(run.info.run_id, "test_accuracy", acc)
    client.log_metric(run.info.run_id, "test_accuracy_proportion", prop)
    client.set_terminated(run.info.run_id, status)


def test_table_from_an_mlflow_store(tmp_path, capsys):
    store = tmp_path / "mlflow.db"
    uri = f"sqlite:///{store}"
    _log(uri, "map", 0, 0.80, 0.81)
    _log(uri, "map", 1, 0.70, 0.70)  # superseded by the later run of seed 1
    _log(uri, "map", 1, 0.84, 0.85)
    _log(uri, "map", 2, 0.10, 0.10, status="FAILED")  # not finished: ignored
    _log(uri, "dc", 0, 0.79, 0.80)
    _log(uri, "dc", 1, 0.85, 0.80)
    cs.main(["map", "dc", str(store)])
    out = capsys.readouterr().out
    assert "| 0 | 80.00 / 81.00 | 79.00 / 80.00 | +1.00 / +1.00 |" in out
    assert "| 1 | 84.00 / 85.00 | 85.00 / 80.00 | -1.00 / +5.00 |" in out
    assert "| 2 |" not in out
    assert "test_accuracy: map 82.00 (sd 2.83, n 2), dc 82.00 (sd 4.24, n 2); difference +0.00" in out
    assert "map ahead on 1 of 2 shared seeds" in out


def test_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="no MLflow store at"):
        cs.main(["map", "dc", str(tmp_path / "missing.db")])
    store = tmp_path / "mlflow.db"
    _log(f"sqlite:///{store}", "map", 0, 0.8, 0.8)
    with pytest.raises(SystemExit, match="no finished run of experiment 'dc'"):
        cs.main(["map", "dc", str(store)])


def test_runs_of_different_configs_are_flagged(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _log(uri, "map", 0, 0.80, 0.81, n_neurons=100, device="cpu")
    _log(uri, "map", 1, 0.84, 0.85, n_neurons=400, device="cuda")  # n_neurons matters, device does not
    _log(uri, "dc", 0, 0.79, 0.80, n_neurons=100, device="cpu")
    _log(uri, "dc", 1, 0.85, 0.80, n_neurons=100, device="cuda")
    cs.main(["map", "dc", str(tmp_path / "mlflow.db")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("compare_seeds")]
    assert err == ["compare_seeds: warning: the runs of 'map' differ in more than the seed (n_neurons: 100, 400): "
                   "the seeds are not repeats of one config"]
