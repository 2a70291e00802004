#!/usr/bin/env python
"""Fused-kernel compile and cache-load times of the Diehl & Cook networks at several sizes.

Each measurement is a new Python process (what a user's run pays), timing the first
presentation (compile or cache load + one run) minus a second, identical presentation
(the run alone).  Three situations, per size:

* ``fresh``: an empty kernel cache (``SNNRUN_CACHE_DIR``) -- everything the network uses is
  compiled: the generic library's functions (``snnrun/core/fused/lib.py``, once per
  installation) and the network's pieces;
* ``new structure``: the library already compiled (``loader.precompile()``), the network's
  pieces not;
* ``cache hit``: everything cached (by a run of *another* size: sizes are arguments).

    python experiments/benchmarks/bench_compile.py
    python experiments/benchmarks/bench_compile.py --networks diehl_cook --sizes 100,1600 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
t0 = time.perf_counter()
import torch
from omegaconf import OmegaConf
from snnrun.build import build_network
from snnrun.core.fused import FusedSimulator
import numba
t_import = time.perf_counter() - t0
which, n, warm_lib = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.set_num_threads(1)
if warm_lib:  # compile the whole generic library (what a machine has after its first runs)
    from snnrun.core.fused.loader import precompile
    precompile()
cfg = OmegaConf.load(f"configs/network/{which}.yaml")
paper = which == "diehl_cook"
root = OmegaConf.create({"network": cfg, "n_neurons": n, "exc": 10.4 if paper else 22.5, "inh": 17.0 if paper else 120.0,
                         "theta_plus": 0.05, "nu_pre": 1e-4, "nu_post": 1e-2, "norm": 78.0 if paper else 78.4})
dt, T = (0.5, 700) if paper else (1.0, 250)
net = build_network(OmegaConf.to_container(root.network, resolve=True), dt_ms=dt, seed=0)
sim = FusedSimulator(net, ["Ae"])
x = torch.rand(T, 1, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.01
out = []
for learn in (True, False):
    t = time.perf_counter(); net.reset_state(); sim.run({"X": x}, learn); first = time.perf_counter() - t
    t = time.perf_counter(); net.reset_state(); sim.run({"X": x}, learn); second = time.perf_counter() - t
    out.append(first - second)
print(f"RESULT {out[0]:.3f} {out[1]:.3f} {t_import:.3f}")
"""


def child(which: str, n: int, cache: str, warm_lib: bool = False) -> tuple[float, float]:
    env = {**os.environ, "SNNRUN_CACHE_DIR": cache}
    res = subprocess.run([sys.executable, "-c", CHILD, which, str(n), "1" if warm_lib else "0"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT"))
    train, test, _ = map(float, line.split()[1:])
    return train, test


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="diehl_cook,diehl_cook_bindsnet")
    p.add_argument("--sizes", default="100,400,1600")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for which in args.networks.split(","):
        for n in sizes:
            with tempfile.TemporaryDirectory() as fresh, tempfile.TemporaryDirectory() as lib_only:
                f_train, f_test = child(which, n, fresh)              # fresh cache: everything compiled
                s_train, s_test = child(which, n, lib_only, True)      # library cached, this network not
                other = sizes[0] if n != sizes[0] else sizes[-1]
                child(which, other, lib_only)                          # cache this structure at another size
                h_train, h_test = child(which, n, lib_only)            # cache hit
            row = {"network": which, "n": n, "fresh_s": round(f_train, 2), "fresh_test_kernel_s": round(f_test, 2),
                   "new_structure_s": round(s_train, 2), "cache_hit_s": round(h_train, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
