#!/usr/bin/env python
"""The GPU backends side by side on one device: torch eager, ``torch.compile`` and the
generated CUDA kernel (``backend=cuda``), written to one JSON.  ``gpu_check.sh`` runs it.

* ``diehl_cook_bindsnet`` (BindsNET's eth_mnist settings, 250 steps per image) at
  ``--sizes`` neurons: training at batch 1, inference at batch 1 and ``--big-batch``, on
  real MNIST images through the runner's own ``UnsupervisedRunner.present`` (encoding,
  reset, simulation and the counts' copy to the host all timed).  Per case one warm-up
  batch (its time, compile included, is reported as ``first_batch_s``), then batches until
  ``--budget-s`` seconds or ``--max-images`` images: images per second.
* the LIF benchmark network of ``bench_lif.py`` at ``--lif-n`` neurons (1000 steps of
  Bernoulli input, inference): steps per second.
* ``--epoch``: the full 400-neuron ``diehl_cook_bindsnet`` epoch with test on the CUDA
  backend (60k training images at batch 1, the assignment pass and the 10k test at
  ``--big-batch``), wall time and accuracy (all-activity).

    python experiments/benchmarks/bench_gpu.py --json out/gpu.json --epoch
    python experiments/benchmarks/bench_gpu.py --device cpu --backends torch --sizes 10 --big-batch 4 --budget-s 1 --lif-n 50
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="100,400,1600", help="excitatory layer sizes (default: %(default)s)")
    p.add_argument("--backends", default="torch,compile,cuda", help="(default: %(default)s)")
    p.add_argument("--big-batch", type=int, default=1024, help="the large inference batch (default: %(default)s)")
    p.add_argument("--budget-s", type=float, default=8.0, help="seconds of timed batches per case (default: %(default)s)")
    p.add_argument("--max-images", type=int, default=20000, help="images per case at most (default: %(default)s)")
    p.add_argument("--lif-n", type=int, default=10000, help="LIF benchmark size (0: skip; default: %(default)s)")
    p.add_argument("--epoch", action="store_true", help="also the full 400-neuron epoch with test on backend cuda")
    p.add_argument("--epoch-backend", default="cuda", help="(default: %(default)s)")
    p.add_argument("--epoch-train", type=int, default=60000, help="training images of --epoch (default: %(default)s)")
    p.add_argument("--epoch-test", type=int, default=10000, help="test images of --epoch (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="MNIST location (default: $SNNRUN_DATA_DIR, else ../shared/data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.sizes = C.parse_ints(args.sizes)
    args.backends = [b for b in args.backends.replace(",", " ").split() if b]
    return args


def build(n_neurons: int, backend: str, device: str, seed: int) -> tuple:
    """(runner, simulator) of ``diehl_cook_bindsnet`` as the job builds them."""
    import torch
    from hydra import compose, initialize_config_module

    from snnrun.build import build_encoder, build_network
    from snnrun.core.simulate import make_simulator
    from snnrun.run.job import validate
    from snnrun.run.unsupervised import UnsupervisedRunner

    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=diehl_cook_bindsnet", f"n_neurons={n_neurons}", f"seed={seed}",
                                           f"device={device}", f"backend={backend}"])
    typed, _ = validate(cfg)
    torch.manual_seed(seed)
    net = build_network(typed.network, dt_ms=typed.dt_ms, device=device, seed=typed.seed)
    sim = make_simulator(net, [typed.train.exc_population], backend)
    if sim.backend != backend:
        raise RuntimeError(f"make_simulator gave {sim.note!r}, not {backend}")
    runner = UnsupervisedRunner(typed, net, build_encoder(typed.encoder, dt_ms=typed.dt_ms), sim, data={},
                                log=lambda m, s: None)
    return runner, sim


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def case(runner: Any, images: Any, learning: bool, batch: int, args) -> dict[str, Any]:
    """Warm-up batch, then timed batches within the budget: images per second."""
    runner.net.train(learning)
    t0 = time.perf_counter()
    runner.present(images[:batch].to(args.device), learning)
    sync(args.device)
    first = time.perf_counter() - t0
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.budget_s and done < args.max_images:
        i = (batch + done) % max(len(images) - batch, 1)
        runner.present(images[i:i + batch].to(args.device), learning)
        done += batch
    sync(args.device)
    elapsed = time.perf_counter() - start
    return {"images": done, "seconds": elapsed, "ips": done / elapsed if done else None, "first_batch_s": first}


def lif(n: int, backend: str, args) -> dict[str, Any]:
    import torch

    from snnrun.build import build_network
    from snnrun.core.encoders import BernoulliTrain
    from snnrun.core.simulate import make_simulator

    cfg = {"populations": {"X": {"kind": "input", "n": n},
                           "Y": {"kind": "lif", "n": n, "v_rest_mv": -65.0, "v_reset_mv": -65.0, "v_thresh_mv": -52.0,
                                 "tau_mem_ms": 100.0, "refrac_ms": 5.0}},
           "connections": {"X_Y": {"kind": "dense", "source": "X", "target": "Y",
                                   "weight": {"dist": "normal", "mean": 0.0, "std": 1.0}}}}
    net = build_network(cfg, dt_ms=1.0, device=args.device, seed=args.seed)
    net.train(False)
    sim = make_simulator(net, ["Y"], backend)
    rates = torch.rand(1, n, generator=torch.Generator().manual_seed(args.seed)) * 100.0
    train = BernoulliTrain((rates / 1000.0).to(args.device), 1000)
    times = []
    for rep in range(4):  # the first compiles
        net.reset_state()
        sync(args.device)
        dt, out = C.timed(lambda: (sim.run({"X": train}, learning=False), sync(args.device)))
        times.append(dt)
    return {"backend": sim.backend, "first_s": times[0], "median_s": C.median(times[1:]),
            "steps_per_s": 1000 / C.median(times[1:])}


def epoch(images: dict, args) -> dict[str, Any]:
    """The 400-neuron epoch with test (``--epoch-backend``): train, assign, test."""
    import torch

    from snnrun.run.evaluation import accuracy, all_activity, assign_labels

    runner, sim = build(400, args.epoch_backend, args.device, args.seed)
    t0 = time.perf_counter()
    xs, ys = images["train"]
    n = min(args.epoch_train, len(xs))
    runner.net.train(True)
    for i in range(n):
        runner.present(xs[i:i + 1].to(args.device), True)
    sync(args.device)
    t_train = time.perf_counter() - t0
    runner.net.train(False)
    out = {}
    tx, ty = images["test"]
    for name, (x, y) in (("assign", (xs[:n], ys[:n])), ("test", (tx[:args.epoch_test], ty[:args.epoch_test]))):
        t1 = time.perf_counter()
        counts = torch.cat([runner.present(x[i:i + args.big_batch].to(args.device), False).cpu()
                            for i in range(0, len(x), args.big_batch)])
        out[name] = (counts, y, time.perf_counter() - t1)
    assignments, _, _ = assign_labels(out["assign"][0], out["assign"][1], 10)
    acc = accuracy(all_activity(out["test"][0], assignments, 10), out["test"][1])
    return {"train_images": n, "train_s": t_train, "assign_s": out["assign"][2], "test_s": out["test"][2],
            "wall_s": time.perf_counter() - t0, "test_accuracy": acc}


def main(argv=None) -> int:
    import torch

    from snnrun.integrations.datasets import load_dataset

    args = parse_args(argv)
    root = args.data_root or C.os.environ.get("SNNRUN_DATA_DIR") or str(C.REPO.parent / "shared" / "data")
    env = C.environment(torch.get_num_threads())
    env["device_name"] = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"# GPU check on {env['device_name']}, MNIST from {root}")
    n_train = max(args.epoch_train if args.epoch else 0, args.max_images + 2 * args.big_batch)
    images = {"train": load_dataset("mnist", root, train=True, n=min(n_train, 60000), download=False),
              "test": load_dataset("mnist", root, train=False, n=10000, download=False)}
    out: dict[str, Any] = {"benchmark": "gpu", "args": vars(args), "env": env, "diehl_cook": [], "lif": [], "epoch": None}
    save = lambda: C.write_json(args.json, out)  # noqa: E731  (after every case: a timeout keeps what was measured)
    # the new backend first, torch.compile (long compiles per size and batch) last
    order = sorted(args.backends, key=lambda b: {"cuda": 0, "compile": 2}.get(b, 1))
    for backend in order:
        if backend == "compile" and args.epoch:
            run_epoch(out, images, args, save)
        for n in args.sizes:
            out["diehl_cook"] += sizes_cases(n, backend, images, args)
            save()
        if backend == order[0] and args.lif_n:
            for b in [b for b in order if b != "compile"]:
                try:
                    r = lif(args.lif_n, b, args)
                except Exception as exc:
                    r = {"error": f"{type(exc).__name__}: {exc}"}
                    traceback.print_exc()
                out["lif"].append({"n": args.lif_n, "backend": b, **r})
                print(f"LIF n={args.lif_n} {b}: {r.get('steps_per_s', r.get('error'))} steps/s", flush=True)
            save()
    if args.epoch and out["epoch"] is None:
        run_epoch(out, images, args, save)
    return 0


def sizes_cases(n: int, backend: str, images: dict, args) -> list[dict[str, Any]]:
    try:
        runner, sim = build(n, backend, args.device, args.seed)
    except Exception as exc:
        traceback.print_exc()
        return [{"n_neurons": n, "backend": backend, "error": f"{type(exc).__name__}: {exc}"}]
    rows = []
    for mode, batch in (("train", 1), ("test", 1), ("test", args.big_batch)):
        try:
            r = case(runner, images["train" if mode == "train" else "test"][0], mode == "train", batch, args)
        except Exception as exc:
            r = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        rows.append({"n_neurons": n, "backend": backend, "mode": mode, "batch": batch, **r})
        print(f"N={n} {backend:8s} {mode} b{batch}: " + (f"{r['ips']:.1f} img/s (first batch {r['first_batch_s']:.2f} s)"
                                                          if r.get("ips") else r.get("error", "no images")), flush=True)
    return rows


def run_epoch(out: dict, images: dict, args, save) -> None:
    try:
        out["epoch"] = epoch(images, args)
    except Exception as exc:
        out["epoch"] = {"error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    print(f"epoch (400 neurons, {args.epoch_backend}): {out['epoch']}", flush=True)
    save()


if __name__ == "__main__":
    sys.exit(main())
