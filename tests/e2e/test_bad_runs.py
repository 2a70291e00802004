"""Table-driven: what went wrong when hostile users tried the run lifecycle (issue 16), each
case now one line naming the culprit, exit status 2, no run left RUNNING, nothing touched.
(SIGTERM, resume twice / of a finished run / with changed keys: tests/e2e/test_resilience.py;
concurrent store creation: tests/integrations/test_tracking_store.py.)"""

from __future__ import annotations

import gzip
import hashlib
import socket
import sqlite3
import struct
import time
from pathlib import Path

import pytest

from .test_cli import snnrun

pytestmark = pytest.mark.slow

TINY = ["data.n_train=20", "data.n_test=10", "n_neurons=5", "train.progress=false", "train.plots=false",
        "time_ms=20"]


def _foreign_db(tmp: Path) -> list[str]:
    con = sqlite3.connect(tmp / "mine.db")
    con.execute("create table notes (x text)")
    con.commit()
    con.close()
    return [f"tracking.uri=sqlite:///{tmp}/mine.db"]


def _closed_port(tmp: Path) -> list[str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return [f"tracking.uri=http://127.0.0.1:{port}"]


def _idx(path: Path, magic: int, dims: tuple, payload: bytes) -> None:
    path.write_bytes(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)


def _short_labels(tmp: Path) -> list[str]:
    raw = tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n_img, n_lab in (("train", 30, 12), ("t10k", 10, 10)):
        _idx(raw / f"{split}-images-idx3-ubyte", 0x803, (n_img, 28, 28), bytes(n_img * 784))
        _idx(raw / f"{split}-labels-idx1-ubyte", 0x801, (n_lab,), bytes(n_lab))
        for name in (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"):
            with gzip.open(raw / (name + ".gz"), "wb") as f:
                f.write((raw / name).read_bytes())
    return [f"data.root={tmp}/data", "data.download=false"]


def _broken_gz(tmp: Path) -> list[str]:
    args = _short_labels(tmp)
    gz = tmp / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-20])  # the end of the stream missing
    for f in gz.parent.glob("*-ubyte"):
        f.unlink()  # only the archives: they must be unpacked
    return args


def _garbage_gz(tmp: Path) -> list[str]:
    args = _broken_gz(tmp)
    (tmp / "data" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>503 Service Unavailable</html>")
    (tmp / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").unlink()
    return args


def _store_under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("")
    return [f"tracking.uri=sqlite:///{tmp}/afile/mlflow.db"]


def _truncated_unpacked(tmp: Path) -> list[str]:
    args = _short_labels(tmp)
    f = tmp / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-784])
    return args


def _root_is_a_file(tmp: Path) -> list[str]:
    (tmp / "data.txt").write_text("not a folder")
    return [f"data.root={tmp}/data.txt"]


def _unpackaged_experiment(tmp: Path) -> list[str]:
    (tmp / "mine" / "experiment").mkdir(parents=True)
    (tmp / "mine" / "experiment" / "mine.yaml").write_text("name: mine\nn_neurons: 7\n")
    return [f"hydra.searchpath=[file://{tmp}/mine]", "+experiment=mine"]


CASES = {
    # id: (setup -> extra args, args, expected text on stderr)
    "foreign sqlite store": (_foreign_db, ["+experiment=diehl_cook_bindsnet"], "is an SQLite file but not an MLflow store"),
    "closed tracking port": (_closed_port, ["+experiment=diehl_cook_bindsnet"], "tracking.uri: cannot reach the tracking server"),
    "labels of the wrong length": (_short_labels, ["+experiment=diehl_cook_bindsnet"], "30 images but 12 labels"),
    "experiment without @package": (_unpackaged_experiment, [], "@package _global_"),
    "typo as a new key": (None, ["+experiment=diehl_cook_bindsnet", "+n_neuron=30"], "n_neuron: nothing in this experiment uses it"),
    "a variable the experiment ignores": (None, ["+experiment=conv_mnist", "n_neurons=100"], "n_neurons: nothing in this experiment uses it"),
    "resume of nothing": (None, ["resume=does/not/exist"], "does/not/exist"),
    "truncated .gz": (_broken_gz, ["+experiment=diehl_cook_bindsnet"], "train-images-idx3-ubyte.gz' is truncated or corrupt"),
    "truncated unpacked file": (_truncated_unpacked, ["+experiment=diehl_cook_bindsnet"],
                                "train-images-idx3-ubyte' is truncated or corrupt (22752 bytes, its header says 23536)"),
    "garbage .gz": (_garbage_gz, ["+experiment=diehl_cook_bindsnet"], "train-labels-idx1-ubyte.gz' is truncated or corrupt"),
    "store path under a file": (_store_under_a_file, ["+experiment=diehl_cook_bindsnet"], "tracking.uri"),
    "root that is a file": (_root_is_a_file, ["+experiment=diehl_cook_bindsnet"], "data.txt' is a file, not a folder"),
    "ten million neurons": (None, ["+experiment=diehl_cook_bindsnet", "n_neurons=10000000"],
                            "network.connections.Ai_Ae: 10000000 x 10000000 synapses need 1091.4 TiB"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_run_is_one_line_exit_2(tmp_path, case):
    setup, args, expected = CASES[case]
    extra = setup(tmp_path) if setup else []
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*.db")}
    t0 = time.monotonic()
    res = snnrun([*TINY, *args, *extra, f"hydra.run.dir={tmp_path}/run"], tmp_path, timeout=120)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("snnrun: error:")]
    assert len(err_lines) == 1 and expected in err_lines[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert time.monotonic() - t0 < 60
    for p, digest in before.items():  # a store that is not ours is left as it was
        assert hashlib.sha256(p.read_bytes()).hexdigest() == digest, p
    db = tmp_path / "outputs" / "mlflow.db"
    if db.exists():  # no run left RUNNING
        con = sqlite3.connect(db)
        assert con.execute("select count(*) from runs where status='RUNNING'").fetchone()[0] == 0
