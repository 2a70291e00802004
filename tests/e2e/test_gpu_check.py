"""The prepared GPU check cannot rot between GPU sessions: its benchmark runs on the CPU
(torch and numba backends, tiny sizes) and writes the JSON it would write on a GPU, and
its shell scripts parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks"


def test_bench_gpu_runs_on_the_cpu_and_writes_one_json(tmp_path, data_dir):
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), "--device", "cpu", "--backends", "torch,numba",
                          "--sizes", "10", "--big-batch", "4", "--budget-s", "0.5", "--max-images", "8", "--lif-n", "50",
                          "--epoch", "--epoch-backend", "numba", "--epoch-train", "20", "--epoch-test", "40", "--data-root", str(data_dir),
                          "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    cases = {(r["backend"], r["mode"], r["batch"]) for r in got["diehl_cook"] if r.get("ips")}
    assert cases == {(b, m, n) for b in ("torch", "numba") for m, n in (("train", 1), ("test", 1), ("test", 4))}
    assert {r["backend"] for r in got["lif"] if r.get("steps_per_s")} == {"torch", "numba"}
    assert got["epoch"]["train_images"] == 20 and 0.0 <= got["epoch"]["test_accuracy"] <= 1.0


def test_gpu_check_scripts_parse():
    for script in ("gpu_check.sh", "gpu_carry.sh"):
        res = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
