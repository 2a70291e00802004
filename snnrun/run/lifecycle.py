"""One run, whatever its task: the lifecycle every ``train.kind`` shares.

:class:`Run` does, in this order and for every task (:mod:`snnrun.run.task`):

1. validate the config; a ``resume=`` run takes the config stored in its checkpoint
   (:mod:`snnrun.run.resume`), refuses a finished run and a task that cannot resume;
2. pick the device, seed every RNG (Python, numpy, torch; the task's own from the seed),
   choose the output folder (a resumed run keeps its own: one run, one folder);
3. let the task build itself, then restore its state and every RNG from the checkpoint;
4. open the MLflow run (the same one when resuming), log the config;
5. run the task's phases with SIGINT / SIGTERM asking it to stop at its next safe point
   (:mod:`snnrun.run.signals`); the run ends KILLED and its last checkpoint is uploaded;
6. write the final checkpoint, marked ``finished`` with the metrics, and the plots.

Every checkpoint (:meth:`Run.save`) is written atomically and refused when the network
holds NaN/inf (the NaN guard: the last good checkpoint stays).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import random
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..build import to_container
from ..config.overrides import check_experiment_package, check_overrides_used
from ..config.schema import RunConfig
from ..config.validate import ConfigError, from_dict
from ..core.network import SimulationError
from ..integrations import tracking
from . import console
from .checkpoint import CheckpointError, resume_checkpoint, resume_dir, save_checkpoint
from .resume import resumed_config
from .seeding import resolve_device, seed_everything
from .signals import stop_on_signals
from .tags import config_yaml, run_tags, snnrun_version
from .task import TASKS, Task

# the run's own top-level keys; any other top-level key is a variable for interpolation
SCHEMA_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig))

# modules whose import registers the built-in tasks (imported in order, on demand)
BUILTIN_TASK_MODULES = ("snnrun.run.classify", "snnrun.run.simulate", "snnrun.rl.task", "snnrun.rl.transfer_task")


def task_class(kind: str) -> type[Task]:
    """The task registered as ``kind``; a ConfigError naming ``train.kind`` otherwise."""
    for module in (None, *BUILTIN_TASK_MODULES):
        if module is not None:
            importlib.import_module(module)
        if kind in TASKS:
            return TASKS[kind]
    near = difflib.get_close_matches(str(kind), list(TASKS), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError("train.kind", f"{kind!r} is not a task{hint}; tasks are: {', '.join(task_kinds())}")


def config_keys() -> tuple[str, ...]:
    """The run's own top-level keys and every task's sections (any other top-level key is a
    variable for interpolation)."""
    task_kinds()
    return SCHEMA_KEYS + tuple(sorted({s for cls in TASKS.values() for s in cls.sections}))


def task_kinds() -> list[str]:
    """Every registered task kind, the built-in ones included."""
    for module in BUILTIN_TASK_MODULES:
        importlib.import_module(module)
    return list(TASKS)


def validate(cfg: Any) -> tuple[RunConfig, dict]:
    """Resolve and validate a config (OmegaConf or dict); return (typed config, plain dict)."""
    raw = to_container(cfg)
    if not isinstance(raw, dict):
        raise ConfigError("", f"expected a mapping at the top level, got {type(raw).__name__}")
    check_experiment_package(raw)
    typed = from_dict(RunConfig, {k: v for k, v in raw.items() if k in SCHEMA_KEYS})
    return typed, raw


def _unresolved(cfg: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    except ImportError:  # pragma: no cover
        return cfg


def _new_folder(parent: Path) -> Path:
    """``parent/<date_time>`` (as the CLI names run folders), never one that exists."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    folder, n = parent / stamp, 1
    while folder.exists():
        folder, n = parent / f"{stamp}_{n}", n + 1
    return folder


def rng_state() -> dict[str, Any]:
    """Every global RNG: Python's, numpy's, torch's (and CUDA's once initialised)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    if "python" in state:
        random.setstate(state["python"])
    if isinstance(state.get("numpy"), tuple):
        np.random.set_state(state["numpy"])
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Run:
    """One run of one task (see the module docstring).  ``overrides``: the command line's
    (None: every key of ``cfg`` counts as given); ``extra_tags`` go on the MLflow run."""

    def __init__(self, cfg: Any, output_dir: Optional[str | Path] = None, hydra_dir: Optional[str | Path] = None,
                 extra_tags: Optional[dict] = None, default_run_name: Optional[str] = None,
                 overrides: Optional[list[str]] = None, config_groups: tuple = ()):
        typed, raw = validate(cfg)
        if overrides is not None:
            check_overrides_used(_unresolved(cfg), overrides, config_keys(), config_groups)
        ckpt = resume_checkpoint(typed)
        if ckpt is not None and isinstance(ckpt.get("config"), dict):
            typed, raw = validate(resumed_config(ckpt["config"], raw, overrides))
        self.task_cls = task_class(typed.train.kind)
        if ckpt is not None and not self.task_cls.resumable:
            raise CheckpointError(f"resume: a {typed.train.kind} run cannot be resumed (it has no training loop "
                                  "to continue); start a new run")
        self.cfg, self.raw, self.ckpt = typed, raw, ckpt
        self.hydra_dir, self.extra_tags = hydra_dir, extra_tags
        self.device = resolve_device(typed.device)
        self.generator = seed_everything(typed.seed)
        self.out_dir = resume_dir(typed, ckpt) or Path(output_dir or _new_folder(Path("outputs") / typed.name))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        t = typed.tracking
        self.tracker = tracking.Tracker(t.uri, t.experiment, t.run_name or default_run_name, t.artifact_location, t.enabled)
        self.final: Optional[dict[str, float]] = None  # the metrics, once every phase is done
        self.task: Optional[Task] = None

    def log(self, metrics: dict, step: Optional[int]) -> None:
        self.tracker.log_metrics(metrics, step)

    def save(self) -> Path:
        """Write the checkpoint (atomically): the task's state, every RNG, the config, the
        MLflow run id and, at the end, the final metrics.  NaN/inf in the network is refused."""
        task = self.task
        net = getattr(task, "net", None)
        bad = net.nonfinite() if net is not None else None
        if bad is not None:
            kept = f"; the last good checkpoint {str(self.checkpoint_path)!r} is kept" if self.checkpoint_path.exists() else ""
            raise SimulationError(f"{bad} became NaN/inf{kept}; check the parameters (weights, time constants, dt)")
        payload = {**task.state(), "task": self.cfg.train.kind, "config": self.raw, "mlflow_run_id": self.tracker.run_id,
                   "finished": self.final, "rng": {**rng_state(), "task": task.rng_state()},
                   "snnrun_version": snnrun_version()}
        return save_checkpoint(self.checkpoint_path, payload)

    def _restore(self, task: Task) -> Optional[str]:
        ckpt = self.ckpt
        if ckpt is None:
            return None
        try:
            task.load_state(ckpt)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {str(ckpt['_path'])!r} does not fit this network: {exc}") from None
        rng = ckpt.get("rng") or {}
        set_rng_state(rng)
        task.set_rng_state(rng.get("task") or {})
        return ckpt.get("mlflow_run_id")

    def execute(self) -> float:
        """Run every phase of the task; return its headline metric."""
        t0 = time.monotonic()
        task = self.task = self.task_cls(self)
        try:
            run_id = self._restore(task)
            self.tracker.keep_on_exit.append((self.checkpoint_path, "checkpoint"))
            tags = run_tags(self.device, task.backend, self.out_dir, self.extra_tags)
            with tracking.tracked(self.tracker, tracking.flatten(self.raw), tags, run_id):
                if self.hydra_dir is not None:
                    self.tracker.log_artifact(self.hydra_dir, ".hydra")
                self.tracker.log_text(config_yaml(self.raw), "config.yaml")
                task.start()
                console.banner(self, task)
                with stop_on_signals(task.stop_target):
                    metrics = task.execute()
                self.final = dict(metrics) or {"done": 1.0}
                self.save()
                self.tracker.log_artifact(self.checkpoint_path, "checkpoint")
                if self.cfg.train.plots:
                    task.log_plots(self.tracker)
        except KeyboardInterrupt as exc:
            console.interrupted(self, exc)
            exc.reported = True  # the CLI adds nothing
            raise
        finally:
            task.close()
        console.summary(self, self.final, time.monotonic() - t0)
        return float(metrics.get(task.headline, float("nan")))
