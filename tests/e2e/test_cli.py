"""End to end through the ``snnrun`` command, as a user runs it (small data subsets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

TINY = ["data.n_train=40", "data.n_test=20", "n_neurons=10", "train.update_interval=20", "train.progress=false"]


def snnrun(args, cwd: Path, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.setdefault("SNNRUN_CACHE_DIR", str(cwd / "cache"))
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "snnrun.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def mlflow_runs(db: Path, experiment: str):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def artifact_paths(run) -> set[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    out, todo = set(), [""]
    while todo:
        for item in client.list_artifacts(run.info.run_id, todo.pop()):
            out.add(item.path)
            if item.is_dir:
                todo.append(item.path)
    return out


def test_diehl_cook_bindsnet_run_logs_everything(tmp_path, data_dir):
    res = snnrun(["+experiment=diehl_cook_bindsnet", *TINY, "train.live_budget=1", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for key in ("test_accuracy", "test_accuracy_proportion", "train_accuracy", "train_images_per_s", "test_images_per_s"):
        assert key in metrics, key
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert "n_train" not in metrics and "n_test" not in metrics  # sizes are params, not metrics
    assert metrics["test_accuracy"] * 20 == round(metrics["test_accuracy"] * 20)  # k / 20 exactly, no float32 noise
    # the terminal: a banner before the work, a summary after it, both also in Hydra's log file
    out, log = res.stdout, (tmp_path / "run" / "cli.log").read_text()
    banner = out.split("finished in")[0]
    for line in ("snnrun: diehl_cook_bindsnet", f"folder   {tmp_path}/run", f"store    sqlite:///{tmp_path}/outputs/mlflow.db",
                 "backend  numba (the fused CPU kernel)", "device   cpu  seed 0", f"id {run.info.run_id}"):
        assert line in banner and line in log, line
    summary = out.split("finished in")[1]
    assert f"test_accuracy             {metrics['test_accuracy']:.4f}" in summary
    assert f"run id                    {run.info.run_id}" in summary
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/outputs/mlflow.db\n" in summary
    assert (f"then open                 http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/"
            f"{run.info.run_id}?workflowType=machine_learning") in summary
    assert "finished in" in log and "Traceback" not in res.stderr
    from mlflow.tracking import MlflowClient

    # tagged as model training: MLflow 3's UI opens it on the runs table, not the GenAI overview
    assert MlflowClient().get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    params = run.data.params
    assert params["n_train"] == "40" and params["n_test"] == "20"
    assert params["n_neurons"] == "10"
    assert params["network.populations.Ae.n"] == "10"
    assert params["data.n_train"] == "40"
    tags = run.data.tags
    for key in ("git_commit", "torch_version", "device"):
        assert key in tags
    arts = artifact_paths(run)
    # step-indexed images at each update interval (20 and 40 of 40 samples): the UI's slider
    stepped = sorted((a.split("/")[1].split("+")[0], int(a.split("+")[2])) for a in arts
                     if a.startswith("images/") and a.endswith(".png"))
    assert stepped == [("assignments", 20), ("assignments", 40), ("receptive_fields", 20), ("receptive_fields", 40)]
    assert metrics["live_plots_logged"] == 2
    for path in (".hydra/config.yaml", ".hydra/overrides.yaml", "config.yaml", "checkpoint/checkpoint.pt",
                 "plots/weights.png", "plots/assignments.png", "plots/confusion.png", "plots/raster.png",
                 "plots/theta.png", "plots/accuracy.png"):
        assert path in arts, path
    # the checkpoint loads back into a network built from the same config
    from snnrun.build import build_network
    from snnrun.run.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    net = build_network(ckpt["config"]["network"], dt_ms=ckpt["config"]["dt_ms"])
    net.load_state_dict(ckpt["network"])
    assert torch.equal(net.populations["Ae"].theta, ckpt["network"]["populations.Ae.theta"])
    assert ckpt["progress"].assignments.shape == (10,)


def test_diehl_cook_paper_protocol_small(tmp_path, data_dir):
    res = snnrun(["+experiment=diehl_cook", "data.n_train=20", "data.n_test=10", "train.assign_n=20", "n_neurons=10",
                  "train.progress=false", "train.plots=false", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook")[0]
    assert run.info.status == "FINISHED"
    assert "assign_accuracy" in run.data.metrics and "test_accuracy" in run.data.metrics
    assert run.data.params["dt_ms"] == "0.5"
    # named by the experiment and the overrides (seeded runs would otherwise share MLflow's random name)
    assert run.info.run_name == ("diehl_cook data.n_train=20 data.n_test=10 train.assign_n=20 n_neurons=10 "
                                 "train.progress=false train.plots=false")


def test_cfg_job_prints_resolved_config(tmp_path):
    res = snnrun(["--cfg", "job", "--resolve", "+experiment=diehl_cook", "n_neurons=400"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "n_neurons: 400" in res.stdout
    assert "dt_ms: 0.5" in res.stdout
    assert "'n': 400" in res.stdout  # interpolated into the network


def test_help_lists_groups(tmp_path):
    res = snnrun(["--help"], tmp_path)
    assert res.returncode == 0
    for group in ("network:", "encoder:", "data:", "train:", "tracking:", "experiment:"):
        assert group in res.stdout


@pytest.mark.parametrize("override,expected", [
    ("network.populations.Ae.kind=lif2", "snnrun: error: network.populations.Ae.kind: 'lif2' is not a neuron kind"),
    ("network.populations.Ae.tau_mem_ms=-3", "snnrun: error: network.populations.Ae.tau_mem_ms: must be > 0"),
    ("data.batch_size=0", "snnrun: error: data.batch_size: must be >= 1"),
    ("device=tpu", "snnrun: error: device: 'tpu' is not one of"),
    ("data.name=imagenet", "snnrun: error: unknown dataset"),
])
def test_config_mistakes_give_one_line(tmp_path, override, expected):
    res = snnrun(["+experiment=diehl_cook_bindsnet", *TINY, override, f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(expected), res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_missing_dataset_names_the_path(tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    res = snnrun(["+experiment=diehl_cook_bindsnet", *TINY, f"data.root={empty}", "data.download=false",
                  f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("snnrun: error: dataset 'mnist' not found under") and str(empty) in last
    assert "Traceback" not in res.stderr


def test_multirun_makes_runs_in_one_experiment(tmp_path, data_dir):
    res = snnrun(["-m", "+experiment=diehl_cook_bindsnet", "n_neurons=8,12", "data.n_train=20", "data.n_test=10",
                  "train.update_interval=10", "train.progress=false", "train.plots=false",
                  f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")
    assert sorted(r.data.params["n_neurons"] for r in runs) == ["12", "8"]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_user_experiment_from_outside_config_dir(tmp_path):
    confdir = tmp_path / "myconf" / "experiment"
    confdir.mkdir(parents=True)
    (confdir / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /network: diehl_cook_bindsnet\nname: mine\nn_neurons: 7\n")
    res = snnrun(["--config-dir", str(tmp_path / "myconf"), "--cfg", "job", "+experiment=mine"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "name: mine" in res.stdout and "n_neurons: 7" in res.stdout


def test_regular_non_editable_install_finds_its_configs(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir),
                    str(repo)], check=True, capture_output=True, timeout=300)
    wheel = next(wheel_dir.glob("snnrun-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import snnrun, sys; assert snnrun.__file__.startswith(sys.argv[1]), snnrun.__file__; "
            "from snnrun.cli import main; sys.argv = ['snnrun', '--cfg', 'job', '+experiment=diehl_cook']; main()")
    env = dict(os.environ, PYTHONPATH=str(target))
    res = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "name: diehl_cook" in res.stdout
