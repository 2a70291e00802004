"""What a run says on the terminal: a start banner, notes and warnings, an end summary, and
on Ctrl-C / SIGTERM where the checkpoint is and the command that resumes it.

Everything goes through the ``snnrun`` logger, so under the CLI it reaches the terminal
(info on stdout, warnings on stderr: ``configs/hydra/default.yaml``) and Hydra's log file
(``<run folder>/cli.log``) alike.  Without any logging set up (the Python API in a plain
script) the lines are printed.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

log = logging.getLogger("snnrun")


class BelowWarning(logging.Filter):
    """Passes records under WARNING (the stdout handler; warnings go to stderr)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def _configured() -> bool:
    logger: Optional[logging.Logger] = log
    while logger is not None:
        if logger.handlers:
            return True
        logger = logger.parent if logger.propagate else None
    return False


def _emit(level: int, text: str) -> None:
    if _configured():
        log.log(level, text)
    else:
        print(text, file=sys.stderr if level >= logging.WARNING else sys.stdout, flush=True)


def say(text: str) -> None:
    """An informational line (or lines): stdout and the log file."""
    _emit(logging.INFO, text)


def warn(text: str) -> None:
    """``snnrun: warning: <text>``: stderr and the log file."""
    _emit(logging.WARNING, f"snnrun: warning: {text}")


def _table(rows: list[tuple[str, str]]) -> str:
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def store_text(uri: str) -> str:
    """The tracking URI with a SQLite path made absolute (a relative one depends on the folder)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


# MLflow 3's UI shows an experiment as a GenAI app (its "Overview" of traces) unless asked for
# the model-training view; this query asks for it (experiments/ui/mlflow_landing.py checks it)
TRAINING_VIEW = "?workflowType=machine_learning"


def ui_rows(uri: str, experiment_id: Optional[str], run_id: Optional[str]) -> list[tuple[str, str]]:
    """How to see the run in the MLflow UI: the command that serves a local store, the page."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}{TRAINING_VIEW}"
    if uri.startswith(("http://", "https://")):
        return [("open", f"{uri.rstrip('/')}/{page}")]
    return [("view", f"{_mlflow_command()} ui --backend-store-uri {store_text(uri)}"),
            ("then open", f"http://127.0.0.1:5000/{page}")]


def _mlflow_command() -> str:
    """``mlflow`` if that is the one beside this Python, else its full path (a venv not on PATH)."""
    here = Path(sys.executable).parent / "mlflow"
    found = shutil.which("mlflow")
    if found and Path(found).resolve() == here.resolve():
        return "mlflow"
    return str(here) if here.exists() else "mlflow"


def banner(run: Any, task: Any) -> None:
    cfg, tracker = run.cfg, run.tracker
    rows = [("task", f"{cfg.train.kind}{'  (resumed)' if run.ckpt is not None else ''}"),
            ("run", f"{tracker.run_name or '-'}  id {tracker.run_id}" if tracker.run_id else "not tracked (tracking.enabled=false)"),
            ("folder", str(run.out_dir)),
            ("store", f"{store_text(tracker.uri)}  experiment {tracker.experiment!r}" if tracker.enabled else "-"),
            ("backend", f"{getattr(task, 'backend_note', None) or task.backend}"),
            ("device", f"{run.device}  seed {cfg.seed}")]
    say(f"snnrun: {cfg.name}\n{_table(rows)}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def summary(run: Any, metrics: Mapping[str, Any], seconds: float) -> None:
    tracker = run.tracker
    minutes, secs = divmod(int(round(seconds)), 60)
    rows = [(k, _fmt(v)) for k, v in metrics.items()]
    rows += [("run id", tracker.run_id or "not tracked"), ("folder", str(run.out_dir))]
    if tracker.run_id:
        rows += ui_rows(tracker.uri, tracker.experiment_id, tracker.run_id)
    say(f"snnrun: {run.cfg.name} finished in {minutes}m{secs:02d}s\n{_table(rows)}")


def _program() -> str:
    """How the user started snnrun (``.venv/bin/snnrun`` if so), else ``snnrun``."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if Path(argv0).name == "snnrun" and "/" in argv0 else "snnrun"


def interrupted(run: Any, exc: BaseException) -> None:
    """On a fresh line: what stopped the run, where its checkpoint is, how to resume it."""
    code = getattr(exc, "exit_code", 130)
    what = "terminated (SIGTERM)" if code == 143 else "interrupted (Ctrl-C)"
    status = "; the MLflow run is marked KILLED" if run.tracker.run_id else ""
    if run.checkpoint_path.exists() and run.task_cls.resumable:
        tail = f"\n  checkpoint  {run.checkpoint_path}\n  resume      {_program()} resume={shlex.quote(str(run.out_dir))}"
    else:
        tail = "\n  no checkpoint to resume from; start the run again"
    sys.stderr.write("\n")  # off the progress bar's line
    _emit(logging.WARNING, f"snnrun: {what}{status}{tail}")
