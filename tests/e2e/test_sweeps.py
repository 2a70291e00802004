"""Sweeps and shared tracking with Hydra's and MLflow's own machinery: a parallel joblib
multirun into one local store, an Optuna search, and a real ``mlflow server``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import yaml

from .test_cli import mlflow_runs, snnrun

pytestmark = pytest.mark.slow

TINY = ["+experiment=diehl_cook_bindsnet", "data.n_train=40", "data.n_test=20", "n_neurons=10",
        "train.update_interval=20", "train.progress=false", "train.plots=false"]


def test_joblib_multirun_four_finished_runs_grouped_by_sweep(tmp_path, data_dir):
    res = snnrun(["-m", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "seed=0,1,2,3",
                  f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    for bad in ("database is locked", "OperationalError", "Traceback"):
        assert bad not in res.stderr + res.stdout
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["sweep"] for r in runs} == {str(tmp_path / "sweep")}
    assert sorted(r.data.tags["sweep_job"] for r in runs) == ["0", "1", "2", "3"]
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2", "3"]
    assert all("test_accuracy" in r.data.metrics for r in runs)


def test_optuna_sweep_maximises_the_returned_accuracy(tmp_path, data_dir):
    res = snnrun(["-m", *TINY, "+hparams_search=diehl_cook_optuna", "hydra.sweeper.n_trials=3",
                  f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    accs = [r.data.metrics["test_accuracy"] for r in runs]
    assert best["best_value"] == pytest.approx(max(accs))
    assert set(best["best_params"]) == {"exc", "inh", "theta_plus", "nu_post", "norm"}
    # the trials really varied the searched knobs
    assert len({r.data.params["exc"] for r in runs}) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_logs_to_a_real_mlflow_server(tmp_path, data_dir):
    import mlflow
    import urllib.request

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--artifacts-destination", str(tmp_path / "art"),
         "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read()[-2000:]
            assert time.time() - t0 < 120, "mlflow server did not come up"
            time.sleep(0.5)
        res = snnrun([*TINY, f"tracking.uri={uri}", "tracking.experiment=remote", f"hydra.run.dir={tmp_path}/run"], tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
            [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("remote").experiment_id])
        assert len(runs) == 1
        assert runs[0].info.status == "FINISHED"
        assert "test_accuracy" in runs[0].data.metrics
        assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to a local store
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_slurm_launcher_preset_composes(tmp_path):
    """configs/hydra/launcher/slurm.yaml extends Hydra's submitit SLURM launcher with our defaults."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    res = snnrun(["--cfg", "hydra", "hydra/launcher=slurm", "+experiment=diehl_cook", "hydra.launcher.partition=cpu"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    launcher = yaml.safe_load(res.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["cpus_per_task"] == 2 and launcher["mem_gb"] == 8 and launcher["partition"] == "cpu"
