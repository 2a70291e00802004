#!/usr/bin/env python
"""The main job per phase: run ``snnrun +experiment=<preset> <overrides>`` as a user would (a
fresh folder, its own MLflow store), then read the phases' rates from the run's metrics.

Per phase (train / assign labels / test): images, seconds, images/s, microseconds per
nominal step, ``1e6 / (images/s * steps per image)`` with ``steps per image = (time_ms +
rest_ms) / dt_ms``, presentations per batch (1 + the re-presentations of ``min_spikes``) and
microseconds per simulated step (the same with the re-presentations counted as steps).  Train
seconds add up the logged windows (``train_images_per_s`` every ``update_interval``).

    python experiments/benchmarks/bench_main_job.py                       # the full main job (~15-25 min)
    python experiments/benchmarks/bench_main_job.py data.n_train=2000 data.n_test=1000
    python experiments/benchmarks/bench_main_job.py --json out.json data.eval_batch_size=32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def phase_rates(db: Path) -> dict:
    con = sqlite3.connect(db)
    (run_id,) = con.execute("select run_uuid from runs order by start_time desc limit 1").fetchone()
    rows = con.execute("select key, value, step from metrics where run_uuid=? order by step", (run_id,)).fetchall()
    params = dict(con.execute("select key, value from params where run_uuid=?", (run_id,)).fetchall())
    con.close()
    metrics: dict[str, list] = {}
    for key, value, step in rows:
        metrics.setdefault(key, []).append((step, value))
    return {"run_id": run_id, "metrics": metrics, "params": params}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="diehl_cook")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the run")
    a = ap.parse_args(argv)
    from hydra import compose, initialize_config_module

    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={a.preset}", *a.overrides])
    steps = (cfg.encoder.time_ms + cfg.train.rest_ms) / cfg.dt_ms
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        cmd = [sys.executable, "-m", "snnrun.cli", f"+experiment={a.preset}", *a.overrides,
               "train.progress=false", "train.plots=false", "train.live_plots=false"]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            sys.exit(f"the run failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
        run = phase_rates(Path(tmp) / "outputs" / "mlflow.db")
    m, n_train = run["metrics"], int(run["params"].get("n_train", 0))
    train_windows, last = [], 0
    for step, ips in m.get("train_images_per_s", []):
        train_windows.append((step - last, ips))
        last = step
    phases = {"train": (n_train * cfg.train.epochs, sum(n / ips for n, ips in train_windows))}
    for name, key, n in (("assign", "assign_images_per_s", None), ("test", "test_images_per_s", None)):
        if key in m:
            ips = m[key][-1][1]
            n = (n_train if cfg.train.assign_n is None else min(n_train, cfg.train.assign_n)) if name == "assign" \
                else int(run["params"].get("n_test", 0))
            phases[name] = (n, n / ips)
    out = {"command": " ".join(["snnrun", f"+experiment={a.preset}", *a.overrides]), "wall_s": wall,
           "steps_per_image": steps, "phases": {}, "accuracy": {k: m[k][-1][1] for k in ("test_accuracy", "test_accuracy_proportion") if k in m},
           "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "loadavg": os.getloadavg()}
    print(f"{out['command']}  (commit {out['commit']}, {out['machine']}, load {out['loadavg'][0]:.2f})")
    for name, (n, secs) in phases.items():
        ips = n / max(secs, 1e-9)
        pres = [v for _, v in m.get(f"{name}_presentations_per_batch", [])]
        ppb = sum(pres) / len(pres) if pres else 1.0  # 1 + retries (min_spikes), mean over the logged windows
        out["phases"][name] = {"images": n, "seconds": secs, "images_per_s": ips, "us_per_step": 1e6 / (ips * steps),
                               "presentations_per_batch": ppb, "us_per_simulated_step": 1e6 / (ips * steps * ppb)}
        print(f"  {name:7s} {n:6d} images  {secs:7.1f} s  {ips:7.1f} img/s  {1e6 / (ips * steps):6.2f} us/step  "
              f"{ppb:5.2f} presentations/batch  {1e6 / (ips * steps * ppb):6.2f} us/simulated step")
    print(f"  wall    {wall:.1f} s (with start-up and data loading); accuracy {out['accuracy']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
