"""MLflow tracking: one run per job, params = the flattened resolved config, metrics
logged as they happen, artifacts, tags, and an honest final status
(FINISHED / FAILED on an exception / KILLED on Ctrl-C)."""

from __future__ import annotations

import logging
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

_log = logging.getLogger("snnrun")

MAX_PARAM_LEN = 6000


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}`` (lists kept as their string form)."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = str(value)[:MAX_PARAM_LEN]
    return out


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_tags_of(run_id: str, uri: str) -> dict[str, str]:
    """The tags of MLflow run ``run_id`` at ``uri`` (LookupError naming the reason if it
    cannot be read)."""
    try:
        import mlflow

        _prepare_local_store(uri)
        return dict(mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.tags)
    except Exception as exc:
        raise LookupError(f"no MLflow run {run_id!r} at {uri} ({type(exc).__name__})") from None


class TrackingError(ValueError):
    """The tracking store cannot be used; the message names ``tracking.uri``."""


SQLITE_MAGIC = b"SQLite format 3\x00"
MLFLOW_TABLES = {"experiments", "runs", "metrics", "params"}
CONNECT_TIMEOUT_S = 5.0


def _sqlite_path(uri: str) -> Optional[Path]:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _check_sqlite(uri: str, path: Path) -> None:
    """A new store's folder must be writable; an existing file must be an MLflow store
    (an SQLite file with MLflow's tables, or empty), else it is refused untouched."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(f"tracking.uri: cannot create the folder of {uri} ({exc.strerror or exc})") from None
    if not path.exists():
        if not os.access(path.parent, os.W_OK):
            raise TrackingError(f"tracking.uri: cannot write a store in {str(path.parent)!r} ({uri})")
        return
    if path.is_dir() or not os.access(path, os.R_OK | os.W_OK):
        raise TrackingError(f"tracking.uri: {str(path)!r} is not a readable and writable file ({uri})")
    if path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise TrackingError(f"tracking.uri: {str(path)!r} is not an SQLite file; refusing to write an MLflow store into it")
    import sqlite3

    con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    except sqlite3.DatabaseError as exc:
        raise TrackingError(f"tracking.uri: {str(path)!r} is not a readable SQLite file ({exc})") from None
    finally:
        con.close()
    if tables and not MLFLOW_TABLES <= tables:
        raise TrackingError(f"tracking.uri: {str(path)!r} is an SQLite file but not an MLflow store "
                            f"(tables: {', '.join(sorted(tables)[:5])}); refusing to write into it")


def _check_server(uri: str) -> None:
    """An http(s) store must accept a connection within a few seconds (MLflow itself would
    retry for minutes)."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(uri)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname or "localhost", port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise TrackingError(f"tracking.uri: cannot reach the tracking server {uri} ({exc.strerror or exc})") from None
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # fail in seconds, not minutes, if it goes away
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise first-time creation of a local SQLite store across processes (two runs
    started together on a new store would both create the schema and one would fail)."""
    path = _sqlite_path(uri)
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(path.parent / (path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare_local_store(uri: str) -> None:
    path = _sqlite_path(uri)
    if path is not None:
        _check_sqlite(uri, path)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)


def prepare_store(uri: str, experiment: Optional[str] = None, artifact_location: Optional[str] = None) -> None:
    """Create the store's tables and the experiment if missing (a local store keeps its
    artifacts in ``mlartifacts/`` beside the database).  Run once before parallel workers
    open a new SQLite store: concurrent first-time schema creation in one file fails."""
    import mlflow

    # MLflow's own info lines (creating and migrating tables) are not the user's business
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

    _prepare_local_store(uri)
    with _store_lock(uri):
        _create(mlflow.MlflowClient(tracking_uri=uri), uri, experiment, artifact_location)


# MLflow 3 opens an experiment on its GenAI "Overview" unless it is tagged as model training;
# with this tag the UI opens on the "Training runs" table (and asks no experiment-type question)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def _create(client: Any, uri: str, experiment: Optional[str], artifact_location: Optional[str]) -> None:
    if experiment is None:
        client.search_experiments(max_results=1)
    elif client.get_experiment_by_name(experiment) is None:
        location = artifact_location
        if location is None and uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts" / experiment).as_uri()
        try:
            client.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_TAGS)
        except Exception:  # created meanwhile by another worker
            pass


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover
    _HydraCallback = object


class PrepareStoreCallback(_HydraCallback):
    """Hydra callback (configs/hydra/default.yaml): before a multirun launches its jobs,
    prepare the MLflow store in the launching process."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        t = config.get("tracking") or {}
        if t.get("enabled", True) and t.get("uri"):
            try:
                prepare_store(str(t["uri"]), str(t.get("experiment") or config.get("name")))
            except Exception as exc:  # a server not up yet etc.: the jobs will report it
                _log.warning("snnrun: warning: could not prepare the MLflow store %s: %s", t["uri"], exc)


class Tracker:
    """Thin wrapper over an active MLflow run (a no-op when ``enabled`` is False)."""

    def __init__(self, uri: str, experiment: str, run_name: Optional[str] = None,
                 artifact_location: Optional[str] = None, enabled: bool = True):
        self.enabled = enabled
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.artifact_location = artifact_location
        self.run_id: Optional[str] = None
        self.experiment_id: Optional[str] = None
        self.resumed = False
        self._mlflow: Any = None
        self._logged: dict[str, int] = {}  # a resumed run: the last step of each metric already logged
        self.keep_on_exit: list[tuple[Path, str]] = []  # (file, artifact folder) uploaded even if KILLED / FAILED

    def start(self, params: Mapping[str, str], tags: Mapping[str, str], run_id: Optional[str] = None) -> None:
        if not self.enabled:
            return
        import mlflow

        self._mlflow = mlflow
        mlflow.set_tracking_uri(self.uri)
        prepare_store(self.uri, self.experiment, self.artifact_location)
        exp = mlflow.set_experiment(self.experiment)
        if exp.tags.get("mlflow.experimentKind") is None:  # a store made before snnrun tagged experiments
            mlflow.MlflowClient(tracking_uri=self.uri).set_experiment_tag(exp.experiment_id, *next(iter(EXPERIMENT_TAGS.items())))
        run = mlflow.start_run(run_id=run_id, run_name=self.run_name, tags=dict(tags))
        self.run_id, self.experiment_id, self.resumed = run.info.run_id, run.info.experiment_id, run_id is not None
        if run_id is not None:  # resuming: metrics up to the kill are there; never write a step twice
            client = mlflow.MlflowClient(tracking_uri=self.uri)
            for key in run.data.metrics:
                self._logged[key] = max(m.step for m in client.get_metric_history(run_id, key))
        if run_id is None:
            items = list(params.items())
            for i in range(0, len(items), 100):
                mlflow.log_params(dict(items[i:i + 100]))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters known once the run has started (sizes of the data); a resumed run has them."""
        if self._mlflow is not None and not self.resumed:
            self._mlflow.log_params({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        if self._mlflow is not None:
            s = step or 0
            fresh = {k: float(v) for k, v in metrics.items() if s > self._logged.get(k, -1)}
            if fresh:
                self._mlflow.log_metrics(fresh, step=step)

    def log_artifact(self, path: str | Path, artifact_path: Optional[str] = None) -> None:
        if self._mlflow is not None and Path(path).exists():
            if Path(path).is_dir():
                self._mlflow.log_artifacts(str(path), artifact_path)
            else:
                self._mlflow.log_artifact(str(path), artifact_path)

    def last_step(self, key: str) -> int:
        """The last step of metric ``key`` that a resumed run had logged before (else -1)."""
        return self._logged.get(key, -1)

    def log_image(self, image: Any, key: str, step: int) -> None:
        """A step-indexed image (the UI's image slider)."""
        if self._mlflow is not None:
            # synchronous: its cost lands where the live-plot budget measures it (MLflow's
            # background thread would take the same CPU and GIL unseen)
            self._mlflow.log_image(image, key=key, step=int(step), synchronous=True)

    def log_figure(self, fig: Any, name: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_figure(fig, name)

    def log_text(self, text: str, name: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_text(text, name)

    def end(self, status: str) -> None:
        if self._mlflow is not None:
            self._mlflow.end_run(status=status)
            self._mlflow = None


def _upload_kept(tracker: Tracker) -> None:
    """A run that stops early still gets its last checkpoint in MLflow (best effort: the
    file stays in the run folder whatever happens here)."""
    for path, folder in tracker.keep_on_exit:
        try:
            tracker.log_artifact(path, folder)
        except Exception as exc:
            _log.warning("snnrun: warning: could not upload %s to MLflow (%s)", path, type(exc).__name__)


@contextmanager
def tracked(tracker: Tracker, params: Mapping[str, str], tags: Mapping[str, str],
            run_id: Optional[str] = None) -> Iterator[Tracker]:
    """Start a run; end it FINISHED, FAILED (exception) or KILLED (KeyboardInterrupt)."""
    tracker.start(params, tags, run_id)
    try:
        yield tracker
    except KeyboardInterrupt:
        _upload_kept(tracker)
        tracker.end("KILLED")
        raise
    except BaseException:
        _upload_kept(tracker)
        tracker.end("FAILED")
        raise
    else:
        tracker.end("FINISHED")
