"""``+experiment=nmnist_stdp`` end to end on a small N-MNIST written in tonic's on-disk format:
the run reads it the way a user's run reads the real data set, counts every event, and a
missing data set or a wrong encoder is one line."""

from __future__ import annotations

import numpy as np
import pytest

from snnrun.integrations.event_files import nmnist_path, write_nmnist_bin

from .test_cli import artifact_paths, mlflow_runs, snnrun

pytest.importorskip("tonic")


def write_fixture(root, n_train=20, n_test=10, seed=0):
    """Random recordings (t < 316 ms): returns (events in all recordings, events that share a
    1 ms step and a neuron with an earlier one)."""
    rng = np.random.default_rng(seed)
    total = merged = 0
    for train, n in ((True, n_train), (False, n_test)):
        for i in range(n):
            k = int(rng.integers(50, 400))
            x, y, p = rng.integers(0, 34, k), rng.integers(0, 34, k), rng.integers(0, 2, k)
            t = np.sort(rng.integers(0, 316_000, k))
            write_nmnist_bin(nmnist_path(str(root), train, i % 10, i), x, y, t, p)
            keys = ((t // 1000) * 2 + p) * 34 * 34 + y * 34 + x
            total, merged = total + k, merged + k - len(np.unique(keys))
    return total, merged


@pytest.mark.slow
def test_nmnist_stdp_runs_on_recordings_in_tonics_format(tmp_path):
    total, merged = write_fixture(tmp_path / "data")
    res = snnrun(["+experiment=nmnist_stdp", f"data.root={tmp_path / 'data'}", "data.download=false",
                  "train.update_interval=10", "train.progress=false"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "nmnist_stdp")
    m = run.data.metrics
    assert m["input_events"] == total  # every event of the 20 training and 10 test recordings, once
    assert m["input_events_late_fraction"] == 0.0
    assert m["input_events_merged_fraction"] == pytest.approx(merged / total)
    assert 0.0 <= m["test_accuracy"] <= 1.0 and run.data.params["n_train"] == "20"
    assert {"plots/weights.png", "plots/raster.png", "plots/assignments.png"} <= artifact_paths(run)


@pytest.mark.parametrize("args, message", [
    (["data.download=false"], "snnrun: error: dataset 'nmnist' not found in '{root}/NMNIST' (expected Train/<digit>/*.bin"),
    (["encoder=poisson"], "snnrun: error: encoder.kind: 'poisson' cannot encode data.name=nmnist: event data sets need "
                          "encoder=events"),
    (["train.min_spikes=5"], "snnrun: error: train.min_spikes: re-presents a sample at a higher input rate"),
    (["train.eval_streams=2"], "snnrun: error: train.eval_streams: the events encoder counts what it bins"),
])
def test_nmnist_mistakes_are_one_line(tmp_path, args, message):
    if args[0] != "data.download=false":
        write_fixture(tmp_path / "data", 2, 1)
    res = snnrun(["+experiment=nmnist_stdp", f"data.root={tmp_path / 'data'}", "train.progress=false", *args], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(root=tmp_path / "data")), res.stderr[-2000:]


@pytest.mark.slow
def test_nmnist_stdp_stopped_and_resumed_counts_every_event_once(tmp_path):
    """SIGTERM mid-training, resume: the event counts continue from the checkpoint (every event
    of the run counted once) and no window reports fewer than one presentation per batch."""
    import signal

    from mlflow.tracking import MlflowClient

    from .test_resilience import start, wait_for_checkpoint

    total, _ = write_fixture(tmp_path / "data", n_train=1500, n_test=20)
    args = ["+experiment=nmnist_stdp", f"data.root={tmp_path / 'data'}", "data.download=false", "train.progress=false",
            "train.update_interval=100", "train.checkpoint_every=50", "train.plots=false", "train.live_plots=false"]
    proc = start([*args, f"hydra.run.dir={tmp_path}/run"], tmp_path)
    wait_for_checkpoint(proc, tmp_path / "run" / "checkpoint.pt", 300)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    res = snnrun([*args, f"resume={tmp_path}/run", f"hydra.run.dir={tmp_path}/resumed"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "nmnist_stdp")
    assert run.data.metrics["input_events"] == total
    history = MlflowClient().get_metric_history(run.info.run_id, "train_presentations_per_batch")
    assert len(history) == 15 and {m.value for m in history} == {1.0}
