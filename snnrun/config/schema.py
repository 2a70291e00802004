"""Schemas of the run-level config sections (``data``, ``train``, ``tracking``) and the
top-level keys.  The ``network`` and ``encoder`` sections are validated by the builder
against the engine's registries."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from ..core.registry import check


@dataclasses.dataclass
class DataConfig:
    name: str = "mnist"
    root: str = "./data"
    download: bool = True
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    batch_size: int = 1
    eval_batch_size: Optional[int] = None  # the learning-off passes (assign, test); None: batch_size
    shuffle: bool = True
    grayscale: bool = True

    def __post_init__(self) -> None:
        check(self.n_train is None or self.n_train > 0, "n_train", f"must be > 0 or null, got {self.n_train}")
        check(self.n_test is None or self.n_test >= 0, "n_test", f"must be >= 0 or null, got {self.n_test}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.eval_batch_size is None or self.eval_batch_size >= 1, "eval_batch_size",
              f"must be >= 1 or null, got {self.eval_batch_size}")


@dataclasses.dataclass
class WeightScheduleConfig:
    """``train.weight_schedule``: move a fixed connection's weights linearly from their
    initial values to ``to`` (masked synapses stay 0) over the first ``over`` fraction of
    training -- e.g. LM-SNN's inhibition growing from a distance profile to uniform."""

    connection: str
    to: float
    over: float = 1.0

    def __post_init__(self) -> None:
        check(0 < self.over <= 1, "over", f"must be in (0, 1], got {self.over}")
        check(math.isfinite(self.to), "to", f"must be a finite number, got {self.to}")


@dataclasses.dataclass
class TrainConfig:
    kind: str = "unsupervised"  # a registered task (snnrun.run.task; the lifecycle looks it up)
    epochs: int = 1
    update_interval: int = 250
    rest_ms: float = 0.0
    min_spikes: int = 0
    intensity_step: float = 32.0
    max_retries: int = 10
    assign_pass: bool = False
    assign_n: Optional[int] = None
    eval_streams: int = 1  # learning-off passes (assign, test) in this many parallel parts (snnrun.run.streams)
    test: bool = True
    checkpoint_every: int = 10000
    checkpoint_minutes: float = 5.0
    plots: bool = True
    live_plots: bool = True  # step-indexed images in MLflow at every update interval (snnrun.run.live)
    live_budget: float = 0.015  # ... within this fraction of the run time (the measured cost stays under 2 %)
    progress: bool = True
    exc_population: str = "Ae"
    input_population: str = "X"
    supervise_current: float = 0.0  # > 0: during training, drive the label's neuron group with this input each step
    supervise_others: float = 0.0  # input to all other neurons meanwhile (< 0 silences them; inhibitory for conductance neurons)
    weight_schedule: Optional[WeightScheduleConfig] = None
    readout_eval: bool = False  # unsupervised: also classify with a linear readout fitted on the assign pass's counts
    readout_epochs: int = 300  # kind readout (and readout_eval): full-batch Adam steps of the linear readout
    readout_lr: float = 0.05
    readout_weight_decay: float = 1.0e-3

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(self.update_interval >= 1, "update_interval", f"must be >= 1, got {self.update_interval}")
        check(self.rest_ms >= 0, "rest_ms", f"must be >= 0, got {self.rest_ms}")
        check(self.min_spikes >= 0, "min_spikes", f"must be >= 0, got {self.min_spikes}")
        check(self.max_retries >= 0, "max_retries", f"must be >= 0, got {self.max_retries}")
        check(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        check(self.checkpoint_minutes > 0, "checkpoint_minutes", f"must be > 0, got {self.checkpoint_minutes}")
        check(0 < self.live_budget <= 1, "live_budget", f"must be in (0, 1], got {self.live_budget}")
        check(self.assign_n is None or self.assign_n > 0, "assign_n", f"must be > 0 or null, got {self.assign_n}")
        check(isinstance(self.eval_streams, int) and self.eval_streams >= 1, "eval_streams",
              f"must be an integer >= 1, got {self.eval_streams!r}")
        check(self.supervise_current >= 0, "supervise_current", f"must be >= 0, got {self.supervise_current}")
        check(math.isfinite(self.supervise_others), "supervise_others", f"must be a finite number, got {self.supervise_others}")
        check(not self.readout_eval or self.assign_pass or self.kind != "unsupervised", "readout_eval",
              "needs train.assign_pass: true (the readout is fitted on that learning-off pass's spike counts)")
        check(self.readout_epochs >= 1, "readout_epochs", f"must be >= 1, got {self.readout_epochs}")
        check(self.readout_lr > 0, "readout_lr", f"must be > 0, got {self.readout_lr}")


@dataclasses.dataclass
class TrackingConfig:
    uri: str = "sqlite:///outputs/mlflow.db"
    experiment: str = "default"
    run_name: Optional[str] = None
    artifact_location: Optional[str] = None
    enabled: bool = True


@dataclasses.dataclass
class RunConfig:
    """The validated top-level config (extra top-level knobs are allowed and ignored)."""

    network: Any
    encoder: Any
    data: DataConfig
    train: TrainConfig
    tracking: TrackingConfig
    name: str = "default"
    seed: int = 0
    device: str = "auto"
    dt_ms: float = 1.0
    backend: str = "auto"
    resume: Optional[str] = None
    # a task's own sections (env:, rl:, transfer:, simulate:) are validated by the task

    def __post_init__(self) -> None:
        check(self.dt_ms > 0, "dt_ms", f"must be > 0, got {self.dt_ms}")
        from ..core.simulate import BACKENDS

        check(self.backend in BACKENDS, "backend", f"{self.backend!r} is not one of: {', '.join(BACKENDS)}")
        ok = self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        check(ok, "device", f"{self.device!r} is not one of: auto, cpu, cuda, cuda:N")
