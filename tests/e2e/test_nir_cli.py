"""`snnrun export nir` and `network=nir` through the command line: the README's NIR block runs
as written and the imported network reproduces the run it came from; mistakes are one line."""

from __future__ import annotations

import re
import shlex

import pytest

from .test_cli import mlflow_runs, snnrun
from .test_readme import TEXT

pytest.importorskip("nir")
pytestmark = pytest.mark.slow


def readme_nir_block() -> list[list[str]]:
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", TEXT, re.S) if "snnrun export nir" in b]
    return [shlex.split(line.split("snnrun ", 1)[1], comments=True) for line in block.splitlines() if line.startswith("snnrun ")]


def test_readme_nir_commands_run_and_the_import_reproduces_the_run(tmp_path):
    commands = readme_nir_block()
    assert [c[0] for c in commands] == ["+experiment=tutorial", "export", "+experiment=tutorial"]
    for args in commands:
        res = snnrun(args + (["train.progress=false"] if args[0] != "export" else []), tmp_path)
        assert res.returncode == 0, (args, res.stderr[-2000:])
        if args[0] == "export":
            assert res.stdout.startswith("wrote tutorial.nir: populations A (input, 100), B (lif, 1000); 2 connections")
    assert (tmp_path / "tutorial.nir").is_file()
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "tutorial")
    rates = sorted(r.data.metrics["rate_hz.B"] for r in runs)
    assert len(rates) == 2 and rates[0] == rates[1] > 5.0  # same spikes, so the same rate
    # an MLflow run id works as the source too (its folder is the run's output_dir tag)
    first = min(runs, key=lambda r: r.info.start_time).info.run_id
    res = snnrun(["export", "nir", first, "-o", "by_id.nir"], tmp_path)
    assert res.returncode == 0, res.stderr
    import nir
    import numpy as np

    a, b = nir.read(str(tmp_path / "by_id.nir")), nir.read(str(tmp_path / "tutorial.nir"))
    assert sorted(a.nodes) == sorted(b.nodes) and np.array_equal(a.nodes["A_B"].weight, b.nodes["A_B"].weight)


@pytest.mark.parametrize("setup, args, message", [
    (None, ["export", "nir", "nowhere", "-o", "x.nir"], "snnrun: error: 'nowhere': no such run folder or checkpoint file"),
    ("tutorial", ["export", "nir", "outputs/t", "-o", "x.nir"],
     "snnrun: error: network.populations.B: refractory period 5 ms: NIR's neurons have none (refrac_ms: 0 exports)"),
    (None, ["+experiment=tutorial", "network=nir", "network.nir=missing.nir"],
     "snnrun: error: network.nir: 'missing.nir' is not a file"),
])
def test_nir_mistakes_are_one_line(tmp_path, setup, args, message):
    if setup:
        assert snnrun(["+experiment=tutorial", "hydra.run.dir=outputs/t", "train.progress=false"], tmp_path).returncode == 0
    res = snnrun(args, tmp_path)
    assert res.returncode == 2 and res.stderr.strip() == message, res.stderr[-2000:]
