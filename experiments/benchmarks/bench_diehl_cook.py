#!/usr/bin/env python
"""Diehl & Cook (2015) on MNIST, BindsNET's eth_mnist.py settings: training and test
images per second of snnrun and BindsNET side by side in one process.

* BindsNET: ``bindsnet.models.DiehlAndCook2015(n_inpt=784, n_neurons, exc=22.5, inh=120,
  dt=1, norm=78.4, theta_plus=0.05, nu=(1e-4, 1e-2), inpt_shape=(1, 28, 28))`` with one
  spike ``Monitor`` on Ae (the spike counts a classifier needs; ``--no-monitor`` drops it).
  Per batch: ``PoissonEncoder(time=250, dt=1)(image * 128)``, ``network.run(inputs={"X":
  ...}, time=250)``, read the Ae counts, ``network.reset_state_variables()``.  Training:
  ``network.train(True)``, test: ``network.train(False)``.  The batch size comes from the
  input's shape (``[250, B, 1, 28, 28]``); ``network.run`` re-sizes the layers when it
  changes (weights and theta persist).  BindsNET's PostPre sums its update over the batch,
  so batched training runs too.
* snnrun: ``+experiment=diehl_cook_bindsnet n_neurons=N``, built with ``build_network`` /
  ``build_encoder`` / ``make_simulator``, presented with the runner's own
  ``UnsupervisedRunner.present`` (``encoder.train(x)`` -> ``BernoulliTrain``,
  ``net.reset_state()``, ``sim.run``), counts copied to the host as the runner does.

Both sides see the same real MNIST images (training split for ``train`` cases, test split
for ``test`` cases), encoding included in the timed region on both sides.  Cases run in
the order given on ONE network per side and size (so later cases see weights trained by
earlier ones, as in a real run): per case --warmup-batches warm-up batches (excluded; the
first snnrun call of a new kernel compiles or loads it, reported as compile time), then
--repeats timed measurements of --n-images images (BindsNET) / --snnrun-n-images (snnrun),
interleaved between the sides; medians are reported.

    python experiments/benchmarks/bench_diehl_cook.py
    python experiments/benchmarks/bench_diehl_cook.py --n-neurons 100 --cases train:1,test:1 --n-images 20
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

T_MS = 250.0
INTENSITY = 128.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-neurons", default="100,400", help="excitatory layer sizes (default: %(default)s)")
    p.add_argument("--cases", default="train:1,test:1,test:64,train:16",
                   help="MODE:BATCH list, run in this order on one network per size (default: %(default)s)")
    p.add_argument("--n-images", type=int, default=100,
                   help="BindsNET images per measurement, rounded up to whole batches (default: %(default)s)")
    p.add_argument("--snnrun-n-images", type=int, default=None,
                   help="snnrun images per measurement (default: 5 x --n-images; snnrun is much faster)")
    p.add_argument("--repeats", type=int, default=3, help="timed measurements per side and case (median; default: %(default)s)")
    p.add_argument("--warmup-batches", type=int, default=1, help="untimed batches before each case (default: %(default)s)")
    p.add_argument("--backends", default="numba", help="snnrun backends: numba, torch, compile (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (BindsNET, snnrun torch) and numba kernel threads (default: %(default)s)")
    p.add_argument("--numba-torch-threads", type=int, default=1,
                   help="torch threads while the snnrun numba side runs (default: %(default)s, what snnrun's runner "
                        "sets for the numba backend; the kernel itself uses --threads)")
    p.add_argument("--data-root", default=None, help="MNIST location (default: $SNNRUN_DATA_DIR, else ../shared/data, else ./data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-monitor", action="store_true", help="BindsNET without the Ae spike monitor (no counts read)")
    p.add_argument("--skip-bindsnet", action="store_true", help="time snnrun only")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.n_neurons = C.parse_ints(args.n_neurons)
    cases = []
    for item in args.cases.replace(",", " ").split():
        mode, _, batch = item.partition(":")
        if mode not in ("train", "test") or not batch.isdigit() or int(batch) < 1:
            p.error(f"--cases: {item!r} is not MODE:BATCH with MODE train|test and BATCH >= 1")
        cases.append((mode, int(batch)))
    args.cases = cases
    args.backends = [b.strip() for b in args.backends.replace(",", " ").split() if b.strip()]
    for b in args.backends:
        if b not in ("numba", "torch", "compile"):
            p.error(f"--backends: {b!r} is not one of: numba, torch, compile")
    if args.snnrun_n_images is None:
        args.snnrun_n_images = 5 * args.n_images
    if min(args.n_images, args.snnrun_n_images, args.repeats) < 1 or args.warmup_batches < 0:
        p.error("--n-images, --snnrun-n-images and --repeats must be >= 1, --warmup-batches >= 0")
    return args


def data_root(arg: Optional[str]) -> Optional[str]:
    import os

    if arg:
        return arg
    if os.environ.get("SNNRUN_DATA_DIR"):
        return os.environ["SNNRUN_DATA_DIR"]
    shared = C.REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


# ------------------------------------------------------------------ the two sides
class Side:
    """``present(x, learning) -> counts [B, n]`` on a network that persists over the cases."""

    def __init__(self, name: str, n_images: int, set_mode: Callable[[bool], None],
                 present: Callable[[Any, bool], Any], threads: int):
        self.name, self.n_images, self.threads = name, n_images, threads
        self.set_mode, self.present = set_mode, present


def bindsnet_side(n_neurons: int, args) -> Side:
    import torch
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    torch.manual_seed(args.seed)
    # batch_size only matters for sparse weights; the batch follows the input's shape
    net = DiehlAndCook2015(n_inpt=784, n_neurons=n_neurons, exc=22.5, inh=120.0, dt=1.0, norm=78.4,
                           theta_plus=0.05, nu=(1e-4, 1e-2), inpt_shape=(1, 28, 28))
    steps = int(T_MS / 1.0)
    if not args.no_monitor:
        net.add_monitor(Monitor(net.layers["Ae"], state_vars=["s"], time=steps), name="Ae_spikes")
    encoder = PoissonEncoder(time=int(T_MS), dt=1.0)

    def present(x, learning: bool):
        B = x.shape[0]
        spikes = encoder(x * INTENSITY).view(steps, B, 1, 28, 28)   # [T, B, 1, 28, 28] uint8
        net.run(inputs={"X": spikes}, time=T_MS)
        counts = None if args.no_monitor else net.monitors["Ae_spikes"].get("s").reshape(steps, B, -1).sum(0)
        net.reset_state_variables()
        return counts

    return Side("bindsnet", args.n_images, lambda mode: net.train(mode), present, args.threads)


def snnrun_side(n_neurons: int, backend: str, args, out_dir: Path) -> Side:
    import torch
    from hydra import compose, initialize_config_module

    from snnrun.build import build_encoder, build_network
    from snnrun.core.simulate import make_simulator
    from snnrun.run.job import validate
    from snnrun.run.unsupervised import UnsupervisedRunner

    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=diehl_cook_bindsnet", f"n_neurons={n_neurons}",
                                           f"seed={args.seed}", "device=cpu", f"backend={backend}"])
    typed, _ = validate(cfg)
    torch.manual_seed(args.seed)
    net = build_network(typed.network, dt_ms=typed.dt_ms, device="cpu", seed=typed.seed)
    encoder = build_encoder(typed.encoder, dt_ms=typed.dt_ms)
    sim = make_simulator(net, [typed.train.exc_population], backend)
    if getattr(sim, "backend", backend) != backend:
        raise RuntimeError(f"make_simulator gave backend {sim.backend!r}, not {backend!r}")
    runner = UnsupervisedRunner(typed, net, encoder, sim, data={}, log=lambda m, s: None)

    def present(x, learning: bool):
        return runner.present(x, learning).cpu()

    threads = args.numba_torch_threads if backend == "numba" else args.threads
    return Side(f"snnrun {backend}", args.snnrun_n_images, lambda mode: net.train(mode), present, threads)


# ------------------------------------------------------------------ measurement
def run_case(sides: list[Side], mode: str, batch: int, images, args, log_prefix: str) -> dict[str, Any]:
    """Warm-up, then interleaved timed measurements; returns per-side results."""
    learning = mode == "train"
    w = args.warmup_batches
    res: dict[str, Any] = {}
    live = []
    for s in sides:
        r = res[s.name] = {"n_batches": math.ceil(s.n_images / batch), "ips": [], "error": None, "first_batch_s": None,
                           "spikes_per_image": None}
        r["images_per_measurement"] = r["n_batches"] * batch
        try:
            C.torch_threads(s.threads)
            s.set_mode(learning)
            for k in range(w):
                x = _take(images, k * batch, batch)
                dt, counts = C.timed(lambda: s.present(x, learning))
                if k == 0:
                    r["first_batch_s"] = dt
            live.append(s)
        except Exception as exc:
            r["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    for rep in range(args.repeats):
        for s in list(live):
            r = res[s.name]
            start = (w + rep * r["n_batches"]) * batch
            total_spikes = 0
            try:
                C.torch_threads(s.threads)
                elapsed = 0.0
                for k in range(r["n_batches"]):
                    x = _take(images, start + k * batch, batch)
                    dt, counts = C.timed(lambda: s.present(x, learning))
                    elapsed += dt
                    if counts is not None:
                        total_spikes += int(counts.sum())
            except Exception as exc:
                r["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
                live.remove(s)
                continue
            ips = r["images_per_measurement"] / elapsed
            r["ips"].append(ips)
            r["spikes_per_image"] = total_spikes / r["images_per_measurement"]
            print(f"  {log_prefix} {s.name:13s} {rep + 1}/{args.repeats}: {r['images_per_measurement']} img "
                  f"in {elapsed:7.2f} s = {ips:8.1f} img/s", flush=True)
    for s in sides:
        r = res[s.name]
        r["median_ips"] = C.median(r["ips"]) if r["ips"] and r["error"] is None else None
        if s.name.startswith("snnrun") and r["first_batch_s"] is not None and r["median_ips"]:
            # the first call of a new kernel compiles (or loads the cached) numba code
            r["first_batch_minus_steady_s"] = r["first_batch_s"] - batch / r["median_ips"]
    return res


def _take(images, start: int, batch: int):
    import torch

    N = len(images)
    idx = torch.arange(start, start + batch) % N
    return images[idx]


def main(argv=None) -> int:
    args = parse_args(argv)
    have_bindsnet, env = C.start(args)

    from snnrun.integrations.datasets import load_dataset

    root = data_root(args.data_root)
    need = {}
    for mode, batch in args.cases:
        per = max(math.ceil(args.n_images / batch), math.ceil(args.snnrun_n_images / batch))
        need[mode] = max(need.get(mode, 0), (args.warmup_batches + args.repeats * per) * batch)
    images = {}
    for mode, n in need.items():
        limit = 60000 if mode == "train" else 10000
        images[mode], _ = load_dataset("mnist", root, train=(mode == "train"), n=min(n, limit), download=False)
    print(f"# Diehl & Cook (BindsNET eth_mnist settings), MNIST from {root or './data'}: "
          + ", ".join(f"{len(v)} {k} images" for k, v in images.items())
          + f"; {int(T_MS)} steps/image; BindsNET {'with one Ae spike monitor' if not args.no_monitor else 'without monitors'}")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_neurons in args.n_neurons:
            sides: list[Side] = []
            if have_bindsnet:
                sides.append(bindsnet_side(n_neurons, args))
            for b in args.backends:
                try:
                    sides.append(snnrun_side(n_neurons, b, args, Path(tmp)))
                except Exception as exc:
                    print(f"snnrun {b} could not be built for n_neurons={n_neurons}: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
            for mode, batch in args.cases:
                res = run_case(sides, mode, batch, images[mode], args, f"N={n_neurons} {mode} b{batch}")
                results.append({"n_neurons": n_neurons, "mode": mode, "batch": batch, "sides": res})

    names = (["bindsnet"] if have_bindsnet else []) + [f"snnrun {b}" for b in args.backends]
    headers = ["n_neurons", "mode", "batch"] + [f"{nm} img/s" for nm in names]
    if have_bindsnet:
        headers += [f"ratio {b}" for b in args.backends]
    rows = []
    for r in results:
        ips = {nm: (r["sides"].get(nm) or {}).get("median_ips") for nm in names}
        row = [str(r["n_neurons"]), r["mode"], str(r["batch"])]
        row += [ips[nm] if ips[nm] is not None else ("error" if nm in r["sides"] else "-") for nm in names]
        if have_bindsnet:
            for b in args.backends:
                a, s = ips.get("bindsnet"), ips.get(f"snnrun {b}")
                ratio = s / a if a and s else None
                r.setdefault("ratio", {})[b] = ratio
                row.append(f"{ratio:.1f}x" if ratio else "-")
        rows.append(row)
    print()
    print("Diehl & Cook images/s, median over repeats (ratio = snnrun img/s / BindsNET img/s)")
    C.print_table(headers, rows)
    print()
    for r in results:
        notes = []
        for nm in names:
            s = r["sides"].get(nm) or {}
            if s.get("error"):
                notes.append(f"{nm} FAILED: {s['error']}")
            elif s.get("spikes_per_image") is not None:
                notes.append(f"{nm} {s['spikes_per_image']:.1f} Ae spikes/img")
            if nm.startswith("snnrun") and s.get("first_batch_minus_steady_s") is not None and s["first_batch_minus_steady_s"] > 0.5:
                notes.append(f"{nm} first batch {s['first_batch_s']:.2f} s (compile/load ~{s['first_batch_minus_steady_s']:.2f} s)")
        print(f"N={r['n_neurons']} {r['mode']} b{r['batch']}: " + "; ".join(notes))
    env["load_avg_end"] = list(C.os.getloadavg()) if hasattr(C.os, "getloadavg") else None
    args_json = dict(vars(args), cases=[f"{m}:{b}" for m, b in args.cases])
    C.write_json(args.json, {"benchmark": "diehl_cook", "args": args_json, "env": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
