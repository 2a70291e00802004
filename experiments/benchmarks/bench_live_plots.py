"""What plots while learning cost (issue 18): the same run with live plots on (the defaults)
and off, its wall time and the fraction of it spent drawing and logging images.

    SNNRUN_DATA_DIR=$PWD/../shared/data .venv/bin/python experiments/benchmarks/bench_live_plots.py \\
        +experiment=diehl_cook_bindsnet data.n_train=20000 data.n_test=1000
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], work: Path, live: bool, name: str = "") -> tuple[float, dict]:
    import mlflow

    name = name or ("on" if live else "off")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snnrun.cli", *args, "train.progress=false", "train.plots=false",
                          f"train.live_plots={str(live).lower()}", f"tracking.experiment=live_{name}"],
                         cwd=work, capture_output=True, text=True, env=dict(os.environ, SNNRUN_CACHE_DIR=str(work / "cache")))
    wall = time.perf_counter() - t0
    if res.returncode:
        sys.exit(res.stderr[-2000:])
    client = mlflow.MlflowClient(f"sqlite:///{work}/outputs/mlflow.db")
    (r,) = client.search_runs([client.get_experiment_by_name(f"live_{name}").experiment_id])
    return wall, r.data.metrics


def main(argv: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="snnrun-live-"))
    run(argv, work, live=False, name="warmup")  # compiles the kernels into the cache: not timed
    off_wall, off = run(argv, work, live=False)
    on_wall, on = run(argv, work, live=True)
    print(f"command: snnrun {' '.join(argv)}")
    print(f"live plots off: {off_wall:.1f} s wall, test_accuracy {off.get('test_accuracy')}")
    print(f"live plots on:  {on_wall:.1f} s wall, test_accuracy {on.get('test_accuracy')}; "
          f"{int(on['live_plots_logged'])} intervals logged, {on['live_plots_s']:.2f} s drawing and logging "
          f"= {100 * on['live_plots_fraction']:.2f} % of the training time")
    print(f"wall-time difference: {100 * (on_wall - off_wall) / off_wall:+.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
