"""Run experiments from Python as the command line does.

    import snnrun.api
    acc = snnrun.api.run("diehl_cook", ["n_neurons=400", "data.n_train=10000"])

:func:`config` composes ``configs/`` with Hydra (``+experiment=<name>`` plus the overrides)
and :func:`run` runs the result through the same lifecycle as ``snnrun`` (checked overrides,
MLflow tracking, checkpoints, resume)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence


def config(experiment: Optional[str] = None, overrides: Sequence[str] = ()) -> Any:
    """The composed config of ``+experiment=<experiment>`` and ``overrides`` (a DictConfig)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    args = ([f"+experiment={experiment}"] if experiment else []) + list(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module("snnrun.configs", version_base="1.3"):
        return compose("config", overrides=args)


def run(experiment: Optional[str] = None, overrides: Sequence[str] = (), output_dir: Optional[str | Path] = None) -> float:
    """Run an experiment; return its headline metric (test accuracy, or mean return for RL).
    Its folder is ``output_dir`` (default ``outputs/<name>/``)."""
    from .run.job import run_job

    args = ([f"+experiment={experiment}"] if experiment else []) + list(overrides)
    return run_job(config(experiment, overrides), output_dir=output_dir, overrides=args)
