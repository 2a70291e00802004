"""A run that loses nothing: SIGKILL, resume, SIGTERM, resume again equals an uninterrupted run
bit for bit;
Ctrl-C (SIGINT) and SIGTERM checkpoint and mark the MLflow run KILLED (classification and RL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .test_cli import mlflow_runs, snnrun

pytestmark = pytest.mark.slow

ARGS = ["+experiment=diehl_cook_bindsnet", "data.n_train=1500", "data.n_test=100", "n_neurons=20",
        "train.update_interval=100", "train.checkpoint_every=100", "train.progress=false", "train.plots=false",
        "train.rest_ms=20"]  # no reset between samples: voltages and traces carry over (saved in checkpoints)


def start(args, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, SNNRUN_CACHE_DIR=str(cwd / "cache"))
    return subprocess.Popen([sys.executable, "-m", "snnrun.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc: subprocess.Popen, path: Path, min_seen: int, timeout: float = 300.0) -> int:
    """Poll until ``path`` holds a checkpoint of at least ``min_seen`` training samples."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, f"run ended before it could be interrupted: {proc.communicate()[1][-2000:]}"
        if path.exists():
            try:
                seen = torch.load(path, weights_only=False)["progress"].seen
            except Exception:  # replaced while reading
                seen = -1
            if seen >= min_seen:
                return seen
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def test_killed_twice_and_resumed_equals_uninterrupted(tmp_path, data_dir):
    full = snnrun([*ARGS, f"hydra.run.dir={tmp_path}/full"], tmp_path)  # also compiles the kernels
    assert full.returncode == 0, full.stderr[-3000:]

    proc = start([*ARGS, f"hydra.run.dir={tmp_path}/killed"], tmp_path)
    seen = wait_for_checkpoint(proc, tmp_path / "killed" / "checkpoint.pt", 200)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)  # still loadable
    assert 200 <= ckpt["progress"].seen < 1500, seen

    # resumed, stopped again (SIGTERM) further on, resumed again: it continues from the latest
    proc = start([*ARGS, f"resume={tmp_path}/killed", f"hydra.run.dir={tmp_path}/resumed"], tmp_path)
    later = wait_for_checkpoint(proc, tmp_path / "killed" / "checkpoint.pt", ckpt["progress"].seen + 200)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    second = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert later <= second["progress"].seen < 1500 and second["mlflow_run_id"] == ckpt["mlflow_run_id"]
    resumed = snnrun([f"resume={tmp_path}/killed", f"hydra.run.dir={tmp_path}/resumed2"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {tmp_path / 'killed'}" in resumed.stdout

    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    assert not any((tmp_path / d / "checkpoint.pt").exists() for d in ("resumed", "resumed2"))  # one run, one folder
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert b["finished"]["test_accuracy"] == a["finished"]["test_accuracy"]
    assert a["network"].keys() == b["network"].keys()
    for key in a["network"]:
        assert torch.equal(a["network"][key], b["network"][key]), key
    assert torch.equal(a["progress"].assignments, b["progress"].assignments)
    assert a["progress"].curve_all == b["progress"].curve_all

    runs = {r.info.run_id: r for r in mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")}
    assert len(runs) == 2  # the resumed job continued the killed job's MLflow run
    assert ckpt["mlflow_run_id"] in runs
    m_full = next(r for i, r in runs.items() if i != ckpt["mlflow_run_id"]).data.metrics
    m_res = runs[ckpt["mlflow_run_id"]].data.metrics
    assert runs[ckpt["mlflow_run_id"]].info.status == "FINISHED"
    for key in ("test_accuracy", "test_accuracy_proportion", "train_accuracy", "assign_accuracy"):
        if key in m_full:
            assert m_full[key] == m_res[key], key
    from mlflow.tracking import MlflowClient

    steps = [m.step for m in MlflowClient().get_metric_history(ckpt["mlflow_run_id"], "train_accuracy")]
    assert len(steps) == len(set(steps)) > 0  # no step written twice across the kill

    again = snnrun([*ARGS, f"resume={tmp_path}/killed"], tmp_path)  # a finished run is not resumed
    assert again.returncode == 2 and "already finished (test_accuracy=" in again.stderr, again.stderr[-2000:]


@pytest.mark.parametrize("sig, code, every", [(signal.SIGINT, 130, "train.checkpoint_every=100"),
                                               (signal.SIGTERM, 143, "train.checkpoint_minutes=0.001")])
def test_signal_checkpoints_and_marks_the_run_killed(tmp_path, data_dir, sig, code, every):
    """Ctrl-C and SIGTERM (a scheduler's kill, ``timeout``): checkpoint at the next batch,
    MLflow run KILLED, exit 130 / 143.  The SIGTERM case checkpoints by wall time only
    (``checkpoint_every`` beyond the run), so the checkpoint it waits for is a timed one."""
    args = [a for a in ARGS if not a.startswith("train.checkpoint_every")] + [every]
    if sig == signal.SIGTERM:
        args.append("train.checkpoint_every=100000")
    proc = start([*args, f"hydra.run.dir={tmp_path}/run"], tmp_path)
    wait_for_checkpoint(proc, tmp_path / "run" / "checkpoint.pt", 100, timeout=600)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    # on lines of their own: what happened, where the checkpoint is, the command that resumes
    lines = err.splitlines()
    what = "interrupted (Ctrl-C)" if sig == signal.SIGINT else "terminated (SIGTERM)"
    assert f"snnrun: {what}; the MLflow run is marked KILLED" in lines, err[-2000:]
    assert f"  checkpoint  {tmp_path}/run/checkpoint.pt" in lines
    resume = next(ln for ln in lines if ln.startswith("  resume      "))
    assert resume == f"  resume      snnrun resume={tmp_path}/run"
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert 100 <= ckpt["progress"].seen < 1500
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")
    assert [r.info.status for r in runs] == ["KILLED"]
    from .test_cli import artifact_paths

    assert "checkpoint/checkpoint.pt" in artifact_paths(runs[0])  # a killed run keeps its last checkpoint in MLflow
    # and it resumes from there, found by its MLflow run id
    # a key that would change the results may not be overridden on resume...
    bad = snnrun([*args, "data.n_test=20", "device=cpu", f"resume={ckpt['mlflow_run_id']}"], tmp_path)
    assert bad.returncode == 2 and "data.n_test: 100 -> 20" in bad.stderr and "device" not in bad.stderr, bad.stderr
    # ...and the printed command (Ctrl-C), or the run id (SIGTERM), alone is enough: the
    # config comes from the checkpoint
    if sig == signal.SIGINT:
        import shlex

        res = snnrun(shlex.split(resume)[2:], tmp_path)
    else:
        res = snnrun([f"resume={ckpt['mlflow_run_id']}", "train.progress=false", f"hydra.run.dir={tmp_path}/resumed"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [r.info.status for r in mlflow_runs(tmp_path / "outputs" / "mlflow.db", "diehl_cook_bindsnet")] == ["FINISHED"]


def test_rl_sigterm_checkpoints_and_marks_the_run_killed(tmp_path):
    proc = start(["+experiment=cartpole_rstdp", "rl.episodes=100000", "rl.random_episodes=2", "rl.checkpoint_every=100000",
                  "rl.checkpoint_minutes=0.001", "train.progress=false", "train.plots=false",
                  f"hydra.run.dir={tmp_path}/run"], tmp_path)
    path = tmp_path / "run" / "checkpoint.pt"
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() - t0 < 300, "no timed checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert torch.load(path, weights_only=False)["progress"].episode >= 1
    assert [r.info.status for r in mlflow_runs(tmp_path / "outputs" / "mlflow.db", "cartpole_rstdp")] == ["KILLED"]


def test_rl_sigterm_then_resume_equals_uninterrupted(tmp_path):
    """Every RNG (torch, the decoder's numpy generator) is restored: the same returns."""
    args = ["+experiment=cartpole_rstdp", "rl.episodes=150", "rl.random_episodes=2", "rl.checkpoint_minutes=0.001",
            "rl.video_steps=0", "train.progress=false", "train.plots=false"]
    full = snnrun([*args, f"hydra.run.dir={tmp_path}/full"], tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    proc = start([*args, f"hydra.run.dir={tmp_path}/killed"], tmp_path)
    path = tmp_path / "killed" / "checkpoint.pt"
    t0 = time.time()
    while True:
        assert proc.poll() is None, "finished before it could be stopped"
        assert time.time() - t0 < 300
        try:
            if path.exists() and torch.load(path, weights_only=False)["progress"].episode >= 10:
                break
        except Exception:  # replaced while reading
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    stopped = torch.load(path, weights_only=False)["progress"].episode
    assert 10 <= stopped < 150
    res = snnrun([f"resume={tmp_path}/killed"], tmp_path)  # alone: the stored config
    assert res.returncode == 0, res.stderr[-3000:]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(path, weights_only=False)
    assert b["progress"].returns == a["progress"].returns and len(a["progress"].returns) == 150
    for key in a["network"]:
        assert torch.equal(a["network"][key], b["network"][key]), key
    statuses = sorted(r.info.status for r in mlflow_runs(tmp_path / "outputs" / "mlflow.db", "cartpole_rstdp"))
    assert statuses == ["FINISHED", "FINISHED"]
