#!/usr/bin/env python
"""A model written only in YAML runs at the speed of the built-in it copies.

``diehl_cook_bindsnet`` (100 excitatory neurons, 250 ms per image, intensity 128) twice on
the fused kernel: once with the built-in ``diehl_cook`` neurons and ``post_pre`` rule, once
with their ``kind: equations`` copies (below).  Same seed, same images: the spike counts
must be identical (checked), and images/s are compared (medians of --repeats measurements,
interleaved between the two networks; training at batch 1, then test at batch 1).

    python experiments/benchmarks/bench_yaml_model.py
    python experiments/benchmarks/bench_yaml_model.py --n-images 200 --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

DC_COPY = """
kind: equations
n: 100
traces: true
one_spike: true
refrac_ms: 5.0
params: {v_rest_mv: -65.0, v_reset_mv: -60.0, v_thresh_mv: -52.0, tau_mem_ms: 100.0, theta_plus_mv: 0.05,
         tau_theta_ms: 1.0e+7}
constants: {decay: "exp(-dt / tau_mem_ms)", theta_decay: "exp(-dt / tau_theta_ms)"}
state: {v: v_rest_mv}
slow: {theta: 0.0}
slow_update: theta = theta * theta_decay
update: |
  v = (v - v_rest_mv) * decay + v_rest_mv
  if active:
      v = v + I
threshold: v >= theta + v_thresh_mv
reset: |
  v = v_reset_mv
  theta += theta_plus_mv
"""

POST_PRE_COPY = """
kind: equations
params: {nu_pre: 1.0e-4, nu_post: 1.0e-2}
on_pre: w -= nu_pre * x_post
on_post: w += nu_post * x_pre
"""


def networks(n: int) -> tuple:
    from omegaconf import OmegaConf

    from snnrun.build import build_network

    cfg = OmegaConf.load(C.REPO / "configs" / "network" / "diehl_cook_bindsnet.yaml")
    root = OmegaConf.create({"network": cfg, "n_neurons": n, "exc": 22.5, "inh": 120.0, "theta_plus": 0.05,
                             "nu_pre": 1e-4, "nu_post": 1e-2, "norm": 78.4})
    builtin = OmegaConf.to_container(root.network, resolve=True)
    copy = json.loads(json.dumps(builtin))
    copy["populations"]["Ae"] = {**yaml.safe_load(DC_COPY), "n": n}
    copy["connections"]["X_Ae"]["learning"] = yaml.safe_load(POST_PRE_COPY)
    return build_network(builtin, seed=0), build_network(copy, seed=0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-neurons", type=int, default=100)
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-root", default=None)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    from snnrun.core.encoders import BernoulliTrain
    from snnrun.core.fused import FusedSimulator

    torch.set_num_threads(1)
    from bench_diehl_cook import data_root

    from snnrun.integrations.datasets import load_dataset

    images, _ = load_dataset("mnist", data_root(args.data_root), train=True, n=args.n_images, download=False)
    a, b = networks(args.n_neurons)
    sims = {"builtin": FusedSimulator(a, ["Ae"]), "yaml": FusedSimulator(b, ["Ae"])}
    nets = {"builtin": a, "yaml": b}
    # Bernoulli spikes at pixel/255 x 128 Hz, drawn by the kernel itself (the same draws for both)
    trains = [BernoulliTrain((img.float().unsqueeze(0) * (128.0 / 1000.0)).clamp(max=1.0), 250) for img in images]
    results: dict = {}
    for mode in ("train", "test"):
        learn = mode == "train"
        times: dict = {k: [] for k in sims}
        counts: dict = {k: [] for k in sims}
        for rep in range(args.repeats + 1):  # the first round compiles / loads: not timed
            for name, sim in sims.items():
                torch.manual_seed(rep)
                t0 = time.perf_counter()
                out = []
                for train in trains:
                    nets[name].reset_state()
                    out.append(sim.run({"X": train}, learn)["Ae"])
                if rep:
                    times[name].append(len(trains) / (time.perf_counter() - t0))
                counts[name].append(torch.stack(out))
        same = all(torch.equal(x, y) for x, y in zip(counts["builtin"], counts["yaml"]))
        row = {k: round(statistics.median(v), 1) for k, v in times.items()}
        row["yaml_over_builtin"] = round(row["yaml"] / row["builtin"], 3)
        row["identical_spike_counts"] = same
        results[mode] = row
        print(mode, json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
