"""One job: validated config -> task -> tracking.  Used by the CLI and usable from Python
(``run_job(cfg_dict)``); the lifecycle itself is :class:`snnrun.run.lifecycle.Run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .lifecycle import SCHEMA_KEYS, Run, validate

__all__ = ["SCHEMA_KEYS", "run_job", "validate"]


def run_job(cfg: Any, output_dir: Optional[str | Path] = None, hydra_dir: Optional[str | Path] = None,
            extra_tags: Optional[dict] = None, default_run_name: Optional[str] = None,
            overrides: Optional[list[str]] = None, config_groups: tuple = ()) -> float:
    """Run one configured experiment end to end; return its headline metric (the test
    accuracy of a classification run, the mean return of an RL run).  ``extra_tags`` are
    added to the MLflow run (the CLI adds the sweep of a multirun).  Resuming (``resume=``),
    the run continues with the config stored in its checkpoint; ``overrides`` (the command
    line's) say which keys the user set (None: all of ``cfg``), see :mod:`snnrun.run.resume`."""
    return Run(cfg, output_dir, hydra_dir, extra_tags, default_run_name, overrides, config_groups).execute()
