"""Bad input, table-driven, through the real command: each case ends with exactly one
``snnrun: error: ...`` line naming the culprit, a non-zero exit status, no traceback, and
no partial state (no MLflow run left RUNNING, no half-written checkpoint)."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BASE = ["+experiment=diehl_cook_bindsnet", "data.n_train=20", "data.n_test=10", "n_neurons=10",
        "train.update_interval=10", "train.progress=false", "train.plots=false"]

# (id, overrides, substring the error line must contain)
CASES = [
    ("unknown_key", ["foo=1"], "'foo'"),
    ("unknown_experiment", ["+experiment=nope"], "experiment/nope"),
    ("unknown_group_option", ["network=nope"], "network/nope"),
    ("override_syntax", ["n_neurons=[1,"], "[1,"),
    ("int_not_a_number", ["n_neurons=abc"], "'abc'"),
    ("negative_neurons", ["n_neurons=-5"], ".n"),
    ("zero_train", ["data.n_train=0"], "data.n_train"),
    ("negative_test", ["data.n_test=-1"], "data.n_test"),
    ("batch_size_zero", ["data.batch_size=0"], "data.batch_size"),
    ("unknown_dataset", ["data.name=imagenet"], "imagenet"),
    ("unknown_device", ["device=tpu"], "tpu"),
    ("unknown_backend", ["backend=fast"], "fast"),
    ("zero_dt", ["dt_ms=0"], "dt_ms"),
    ("float_seed", ["seed=1.5"], "seed"),
    ("unknown_neuron_kind", ["network.populations.Ae.kind=hodgkin"], "hodgkin"),
    ("negative_tau", ["network.populations.Ae.tau_mem_ms=-1"], "tau_mem_ms"),
    ("unknown_population_key", ["+network.populations.Ae.bogus=1"], "bogus"),
    ("unknown_source", ["network.connections.X_Ae.source=Q"], "'Q'"),
    ("unknown_connection_kind", ["network.connections.X_Ae.kind=conv9d"], "conv9d"),
    ("unknown_rule", ["network.connections.X_Ae.learning.kind=backprop"], "backprop"),
    ("bad_reduction", ["network.connections.X_Ae.learning.reduction=median"], "reduction"),
    ("wmax_below_wmin", ["network.connections.X_Ae.wmax=-1"], "wmax"),
    ("delay_not_whole_steps", ["network.connections.X_Ae.delay_ms=0.3"], "delay_ms"),
    ("bad_weight_dist", ["network.connections.X_Ae.weight.dist=cauchy"], "weight.dist"),
    ("input_shape_mismatch", ["network.populations.X.shape=[1,20,20]"], "network.populations.X.shape"),
    ("unknown_encoder", ["encoder.kind=morse"], "morse"),
    ("zero_epochs", ["train.epochs=0"], "train.epochs"),
    ("zero_update_interval", ["train.update_interval=0"], "train.update_interval"),
    ("negative_min_spikes", ["train.min_spikes=-1"], "train.min_spikes"),
    ("zero_eval_streams", ["train.eval_streams=0"], "train.eval_streams"),
    ("streams_with_compile", ["train.eval_streams=2", "backend=compile"], "train.eval_streams: parallel streams run"),
    ("cuda_on_cpu", ["backend=cuda", "device=cpu"], "backend: cuda needs a CUDA device"),
    ("unknown_backend_listed", ["backend=opencl"], "backend: 'opencl' is not one of: auto, torch, numba, compile, cuda"),
    ("unknown_exc_population", ["train.exc_population=Zz"], "Zz"),
    ("missing_checkpoint", ["resume={tmp}/nothing/checkpoint.pt"], "nothing/checkpoint.pt"),
    ("corrupt_checkpoint", ["resume={tmp}/corrupt.pt"], "corrupt.pt"),
    ("missing_dataset", ["data.root={tmp}/empty", "data.download=false"], "empty"),
    ("unreadable_dataset", ["data.root={tmp}/broken", "data.download=false"], "broken"),
    ("weight_overflow", ["inh=1e39"], "weight.value"),
    ("nan_simulation", ["network.connections.Ai_Ae.weight.scale=-1e38"], "population 'Ae' (v) became NaN/inf"),
]


def _prepare(tmp: Path, data_dir: Path) -> None:
    (tmp / "corrupt.pt").write_bytes(b"this is not a checkpoint")
    (tmp / "empty").mkdir()
    raw = tmp / "broken" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (Path(data_dir) / "MNIST" / "raw").iterdir():
        if f.name.endswith(".gz"):
            with gzip.open(raw / f.name, "wb") as g:  # valid gzip, garbage inside
                g.write(b"\x00\x00\x08\x03garbage")


def _run(tmp: Path, case) -> tuple:
    name, overrides, culprit = case
    cwd = tmp / name
    cwd.mkdir()
    args = [*BASE, *(o.replace("{tmp}", str(tmp)) for o in overrides), f"hydra.run.dir={cwd}/run"]
    env = dict(os.environ, SNNRUN_CACHE_DIR=str(tmp / "cache"))
    env.pop("SNNRUN_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "snnrun.cli", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    return case, cwd, res


def test_bad_inputs_give_one_clear_line(tmp_path, data_dir):
    _prepare(tmp_path, data_dir)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda c: _run(tmp_path, c), CASES))
    problems = []
    for (name, overrides, culprit), cwd, res in results:
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("snnrun: error:")]
        why = []
        if res.returncode == 0:
            why.append("exit status 0")
        if len(errors) != 1:
            why.append(f"{len(errors)} error lines")
        elif culprit not in errors[0]:
            why.append(f"culprit {culprit!r} not named")
        if "Traceback" in res.stderr:
            why.append("traceback")
        db = cwd / "outputs" / "mlflow.db"
        if db.exists():
            with sqlite3.connect(db) as con:
                states = [r[0] for r in con.execute("select status from runs")]
            if "RUNNING" in states:
                why.append(f"MLflow runs left {states}")
        if list(cwd.rglob("*.tmp")) or list(cwd.rglob("checkpoint.pt")):
            why.append("checkpoint files left behind")
        if why:
            problems.append(f"{name}: {', '.join(why)}\n    stderr: {res.stderr.strip()[-600:]}")
    assert len(CASES) >= 30
    assert not problems, "\n".join(problems)
