"""Tasks register like neuron kinds; the run lifecycle (snnrun.run.lifecycle.Run) gives each
the same seeding, checkpoints, resume, NaN guard and refusals."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from snnrun.build import build_network
from snnrun.config.validate import ConfigError
from snnrun.core.network import SimulationError
from snnrun.run.checkpoint import CheckpointError, load_checkpoint
from snnrun.run.job import run_job
from snnrun.run.lifecycle import task_class, task_kinds
from snnrun.run.task import TASKS, Task, register_task

STOP = {"at": None}  # the draw after which the test task "is killed"


@register_task("test_draws")
class Draws(Task):
    """Six steps, each drawing from every global RNG and from a generator of its own."""

    headline = "total"

    def __init__(self, run):
        super().__init__(run)
        self.net = build_network(run.cfg.network, seed=run.cfg.seed)
        self.own = np.random.default_rng(run.cfg.seed + 1)
        self.draws: list[float] = []

    def state(self):
        return {"network": self.net.state_dict(), "draws": list(self.draws)}

    def load_state(self, ckpt):
        self.net.load_state_dict(ckpt["network"])
        self.draws = list(ckpt["draws"])

    def rng_state(self):
        return {"own": self.own.bit_generator.state}

    def set_rng_state(self, rng):
        self.own.bit_generator.state = rng["own"]

    def execute(self):
        while len(self.draws) < 6:
            self.draws.append(float(torch.rand(1)) + float(np.random.rand()) + random.random() + float(self.own.random()))
            self.run.save()
            if STOP["at"] == len(self.draws):
                raise KeyboardInterrupt
        return {"total": sum(self.draws), "n": float(len(self.draws))}


def _cfg(tmp_path, kind="test_draws", **extra):
    return {"name": "t", "device": "cpu", "network": {"populations": {"X": {"kind": "input", "n": 2},
                                                                    "A": {"kind": "lif", "n": 3}},
                                                    "connections": {"X_A": {"kind": "dense", "source": "X", "target": "A"}}},
            "encoder": {"kind": "poisson", "time_ms": 5}, "data": {}, "tracking": {"enabled": False},
            "train": {"kind": kind, "progress": False, "plots": False}, **extra}


def test_a_registered_task_runs_through_the_lifecycle(tmp_path):
    total = run_job(_cfg(tmp_path), output_dir=tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    assert ckpt["task"] == "test_draws" and len(ckpt["draws"]) == 6
    assert ckpt["finished"] == {"total": total, "n": 6.0}  # the final checkpoint says it is done
    assert total == pytest.approx(sum(ckpt["draws"]))
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch", "task"}
    with pytest.raises(CheckpointError, match=r"already finished \(total="):
        run_job(_cfg(tmp_path, resume=str(tmp_path / "a")))


def test_every_rng_is_restored_on_resume(tmp_path):
    run_job(_cfg(tmp_path), output_dir=tmp_path / "full")
    STOP["at"] = 2
    try:
        with pytest.raises(KeyboardInterrupt):
            run_job(_cfg(tmp_path), output_dir=tmp_path / "killed")
    finally:
        STOP["at"] = None
    assert len(load_checkpoint(tmp_path / "killed")["draws"]) == 2
    random.random(), np.random.rand(), torch.rand(3)  # whatever ran in between
    run_job(_cfg(tmp_path, resume=str(tmp_path / "killed")), output_dir=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()  # one run, one folder
    assert load_checkpoint(tmp_path / "killed")["draws"] == load_checkpoint(tmp_path / "full")["draws"]


def test_nan_in_the_network_is_never_checkpointed(tmp_path):
    @register_task("test_nan")
    class Nan(Draws):
        def execute(self):
            self.run.save()
            self.net.connections["X_A"].w[0, 1] = float("nan")
            self.run.save()

    try:
        with pytest.raises(SimulationError, match=r"'X_A'.*NaN/inf; the last good checkpoint .* is kept"):
            run_job(_cfg(tmp_path, kind="test_nan"), output_dir=tmp_path / "n")
    finally:
        TASKS.pop("test_nan")
    assert torch.isfinite(load_checkpoint(tmp_path / "n")["network"]["connections.X_A.w"]).all()


def test_a_task_that_cannot_resume_refuses(tmp_path):
    @register_task("test_once")
    class Once(Draws):
        resumable = False

    try:
        STOP["at"] = 1
        with pytest.raises(KeyboardInterrupt):
            run_job(_cfg(tmp_path, kind="test_once"), output_dir=tmp_path / "o")
        STOP["at"] = None
        with pytest.raises(CheckpointError, match="a test_once run cannot be resumed"):
            run_job(_cfg(tmp_path, kind="test_once", resume=str(tmp_path / "o")))
    finally:
        STOP["at"] = None
        TASKS.pop("test_once")


def test_builtin_kinds_and_a_typo():
    assert {"unsupervised", "readout", "rl", "transfer"} <= set(task_kinds())
    assert task_class("rl").headline == "mean_return_last100"
    with pytest.raises(ConfigError, match=r"train.kind: 'unsupervized' is not a task \(did you mean 'unsupervised'\?\)"):
        task_class("unsupervized")
    with pytest.raises(KeyError, match="registered twice"):
        register_task("rl")(Draws)
