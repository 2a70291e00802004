"""The tracking store cannot be corrupted or hang: concurrent creation, a foreign SQLite
file refused untouched, an unreachable server or unwritable folder reported in seconds."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import socket
import sqlite3
import time

import pytest

from snnrun.integrations.tracking import Tracker, TrackingError, prepare_store


def _one_run(uri: str, q) -> None:
    try:
        t = Tracker(uri, "race")
        t.start({"a": "1"}, {})
        t.log_metrics({"m": 1.0}, 0)
        t.end("FINISHED")
        q.put("ok")
    except BaseException as exc:  # pragma: no cover - reported below
        q.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_runs_started_together_on_a_new_store_all_finish(tmp_path, attempt):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_one_run, args=(uri, q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = [q.get(timeout=5) for _ in procs]
    assert results == ["ok"] * 3, results
    con = sqlite3.connect(tmp_path / "mlflow.db")
    assert con.execute("select count(*) from runs where status='FINISHED'").fetchone()[0] == 3


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "mine.db"
    con = sqlite3.connect(db)
    con.execute("create table notes (x text)")
    con.execute("insert into notes values ('keep me')")
    con.commit()
    con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(TrackingError, match="is an SQLite file but not an MLflow store"):
        prepare_store(f"sqlite:///{db}", "x")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    with pytest.raises(TrackingError, match="not an SQLite file"):
        prepare_store(f"sqlite:///{text}", "x")
    assert text.read_text() == "not a database"


def test_a_closed_port_fails_fast_naming_the_uri():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(TrackingError, match=f"tracking.uri: cannot reach the tracking server http://127.0.0.1:{port}"):
        prepare_store(f"http://127.0.0.1:{port}", "x")
    assert time.monotonic() - t0 < 20


def test_an_unwritable_folder_fails_naming_the_uri(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if __import__("os").access(ro, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(TrackingError, match="tracking.uri"):
            prepare_store(f"sqlite:///{ro}/mlflow.db", "x")
    finally:
        ro.chmod(0o700)


def test_a_store_under_a_file_fails_naming_the_uri(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TrackingError, match="tracking.uri: cannot create the folder of sqlite:///"):
        prepare_store(f"sqlite:///{tmp_path}/afile/mlflow.db", "x")
