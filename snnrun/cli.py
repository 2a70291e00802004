"""The ``snnrun`` command: a Hydra app over ``configs/``.

    snnrun +experiment=diehl_cook                       # run an experiment
    snnrun +experiment=diehl_cook n_neurons=400 device=cuda
    snnrun -m +experiment=diehl_cook n_neurons=100,400   # sweep
    snnrun --cfg job +experiment=diehl_cook              # print the resolved config
    snnrun export nir outputs/tutorial/<time> -o net.nir # a run's network as a NIR graph

Config mistakes, missing data and unreadable checkpoints end with one line on stderr
(``snnrun: error: <config path>: <what is wrong>``) and exit status 2, no traceback
(set ``SNNRUN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from .config.validate import ConfigError
from .core.registry import ParamError

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ParamError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from .core.network import SimulationError
    from .integrations.datasets import DatasetError
    from .integrations.tracking import TrackingError
    from .run.checkpoint import CheckpointError

    return (*USER_ERRORS, DatasetError, CheckpointError, SimulationError, TrackingError)


@hydra.main(version_base="1.3", config_path="pkg://snnrun.configs", config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from .run.job import run_job

    from hydra.types import RunMode

    hc = HydraConfig.get()
    out_dir = hc.runtime.output_dir
    hydra_dir = f"{out_dir}/{hc.output_subdir}" if hc.output_subdir else None
    given = list(hc.overrides.task)
    overrides = " ".join(o for o in given if not o.startswith("+experiment="))
    tags = {"overrides": overrides}
    if hc.mode == RunMode.MULTIRUN:  # every job of a sweep: tagged with the sweep, named by its overrides
        tags.update(sweep=os.path.abspath(hc.sweep.dir), sweep_job=str(hc.job.num))
    from .run.signals import exit_code, stop_on_signals

    try:
        with stop_on_signals():  # SIGINT / SIGTERM before (or after) a task's loop: stop at once
            return run_job(cfg, output_dir=out_dir, hydra_dir=hydra_dir, extra_tags=tags,
                           default_run_name=(f"#{hc.job.num} {overrides}" if hc.mode == RunMode.MULTIRUN
                                             else f"{cfg.get('name', '')} {overrides}").strip() or None,
                           overrides=given, config_groups=tuple(hc.runtime.choices))
    except _user_errors() as exc:
        print(f"snnrun: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, KeyError) as exc:
        if os.environ.get("SNNRUN_DEBUG"):
            raise
        msg = str(exc).strip("'\"").splitlines()[0] if str(exc) else type(exc).__name__
        print(f"snnrun: error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        code = exit_code(exc)
        if not getattr(exc, "reported", False):  # stopped before the run began: nothing to resume
            what = "terminated (SIGTERM)" if code == 143 else "interrupted (Ctrl-C)"
            print(f"\nsnnrun: {what} before the run started; nothing was recorded", file=sys.stderr)
        sys.exit(code)


def _one_line(exc: BaseException) -> str:
    """Hydra's multi-line composition errors, and their cause, in one line."""
    parts = []
    for e in (exc, exc.__cause__):
        if e is None:
            continue
        text = str(e).split("Config search path:")[0]
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("full_key:", "object_type"))]
        if lines:
            parts.append(" ".join(lines))
    return "; ".join(parts) or type(exc).__name__


def entry() -> None:
    """The console script: Hydra's app, with Hydra's own errors (unknown override keys,
    missing config groups, bad override syntax) also reported as one ``snnrun: error:``
    line and exit status 2.  ``SNNRUN_DEBUG=1`` or ``HYDRA_FULL_ERROR=1`` show tracebacks."""
    if sys.argv[1:2] == ["export"]:  # a subcommand, not a run: no Hydra
        from .interop.cli import entry as export_entry

        export_entry(sys.argv[2:])
        return
    import hydra._internal.utils as hydra_utils

    original = getattr(hydra_utils, "run_and_report", None)

    def run_and_report(func):
        try:
            return func()
        except Exception as exc:
            if os.environ.get("SNNRUN_DEBUG") or os.environ.get("HYDRA_FULL_ERROR") or original is None:
                raise
            print(f"snnrun: error: {_one_line(exc)}", file=sys.stderr)
            sys.exit(2)

    if original is not None:
        hydra_utils.run_and_report = run_and_report
    try:
        main()
    finally:
        if original is not None:
            hydra_utils.run_and_report = original


if __name__ == "__main__":
    entry()
