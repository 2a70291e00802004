#!/usr/bin/env python
"""snnrun against Brian2 on Diehl & Cook's training protocol, the same images, one run.

The network (written here from the paper's equations, dt 0.5 ms, 784 Poisson inputs at
pixel/4 Hz, ``n`` conductance-based excitatory neurons with adaptive thresholds, ``n``
inhibitory ones, one-to-one Ae -> Ai (10.4), all-but-self Ai -> Ae (17.0), input synapses
with delays uniform in [0, 10] ms and triplet STDP (nu_pre 1e-4, nu_post 1e-2, traces 20 /
20 / 40 ms)) is trained on the first images of MNIST's training set:

* ``snnrun``: ``+experiment=diehl_cook n_neurons=N``, the runner's presentation (350 ms,
  150 ms rest, +32 Hz and shown again while Ae fires fewer than 5 spikes, weights
  normalised to 78 per neuron), fused kernel, batch 1; ``--snnrun-repeats`` passes from the
  same fresh network, half of them before Brian2's sides and half after, the median pass
  counted (one pass lasts about a second, Brian2's sides minutes: the shared VM's speed
  drifts by a third within minutes, so snnrun is timed on both sides of Brian2's runs).
* ``brian2-runtime``: Brian2's runtime mode (Cython code generation), the same protocol as
  a Python loop over images (normalisation in numpy, ``run(350 ms)``, ``run(150 ms)``,
  retries), as in the Brian2 reproduction of the paper (brian2's examples/frompapers).
* ``brian2-protocol``: Brian2's C++ standalone mode running the protocol: the network compiled
  once for one 500 ms presentation, the program executed once per presentation with the
  state carried over (potentials, conductances, thresholds, weights normalised between
  images, STDP traces), the image's rates and the retries handed in as ``run_args`` (the
  fastest Brian2 mode that does what the protocol does).
* ``brian2-standalone``: Brian2's C++ standalone mode, the images as one run with the rates
  in a ``TimedArray`` (350 ms on, 150 ms off).  A standalone run cannot stop between images,
  so it does *less* work than the protocol: no normalisation and no re-presentations.  The
  compile time is excluded (timed separately); the figure is the C++ program's run.

    python3 -m venv .venv-brian2 && .venv-brian2/bin/pip install "brian2>=2.9" "cython>=3" "numpy<2.4" setuptools
    python experiments/benchmarks/bench_brian2.py --n-images 100 --json out.json

Brian2 2.9 needs numpy < 2.4 (it wraps ``ndarray.ptp``), older than snnrun's environment, so
its sides run in their own interpreter (``--brian2-python``, default ``.venv-brian2/bin/python``)
on the same images (handed over as a .npy file), one after the other with snnrun's.

Prints images per second per side and the ratio snnrun / the fastest Brian2 mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

DT_MS, ON_MS, OFF_MS, MIN_SPIKES, STEP_HZ, NORM = 0.5, 350.0, 150.0, 5, 32.0, 78.0


def images(n: int, offset: int = 0) -> np.ndarray:
    """The first ``offset + n`` MNIST training images as [N, 784] floats in [0, 255]."""
    from snnrun.integrations.datasets import load_dataset

    x, _ = load_dataset("mnist", os.environ.get("SNNRUN_DATA_DIR"), n=offset + n, download=False)
    x = x.reshape(len(x), -1).double().numpy()
    return x * 255.0 if x.max() <= 1.0 else x


def snnrun_side(x: np.ndarray, n_neurons: int, warmup: int, repeats: int = 1) -> dict:
    """snnrun's protocol on ``x`` (the first ``warmup`` images untimed), ``repeats`` times
    from the same fresh network; images per second is the median of the repeats (the VM's
    speed drifts within seconds, and one pass takes about one)."""
    runs = [_snnrun_once(x, n_neurons, warmup) for _ in range(max(repeats, 1))]
    return with_passes(runs[0], [r["images_per_s"] for r in runs])


def with_passes(side: dict, rates: list) -> dict:
    """``side`` with images per second the median of the passes' ``rates``."""
    s = sorted(rates)
    med = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    out = dict(side)
    out.update(images_per_s=med, seconds=out["images"] / med, repeats=len(rates), images_per_s_runs=list(rates))
    return out


def _snnrun_once(x: np.ndarray, n_neurons: int, warmup: int) -> dict:
    import torch
    from hydra import compose, initialize_config_module

    from snnrun.build import build_encoder, build_network
    from snnrun.core.simulate import make_simulator
    from snnrun.run.job import validate
    from snnrun.run.unsupervised import UnsupervisedRunner

    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=diehl_cook", f"n_neurons={n_neurons}", "device=cpu"])
    typed, _ = validate(cfg)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the runner sets it for the fused kernel (snnrun/run/classify.py)
    net = build_network(typed.network, dt_ms=typed.dt_ms, device="cpu", seed=typed.seed)
    encoder = build_encoder(typed.encoder, dt_ms=typed.dt_ms)
    sim = make_simulator(net, [typed.train.exc_population], "numba")
    runner = UnsupervisedRunner(typed, net, encoder, sim, data={}, log=lambda m, s: None)
    net.train(True)
    xs = torch.tensor(x / 255.0, dtype=torch.float32).view(len(x), 1, 28, 28)
    for k in range(warmup):
        runner.present(xs[k:k + 1], True)
    p0, t0 = runner.presentations, time.perf_counter()
    for k in range(warmup, len(x)):
        runner.present(xs[k:k + 1], True)
    secs = time.perf_counter() - t0
    n = len(x) - warmup
    return {"images": n, "seconds": secs, "images_per_s": n / secs,
            "presentations_per_image": (runner.presentations - p0) / n}


def brian2_network(b2, n: int, rates):
    """The paper's network in Brian2 (equations as in the module docstring)."""
    ms, mV = b2.ms, b2.mV
    exc = b2.NeuronGroup(n, """
        dv/dt = ((-65*mV - v) + ge * (0*mV - v) + gi * (-100*mV - v)) / (100*ms) : volt (unless refractory)
        dge/dt = -ge / (1*ms) : 1
        dgi/dt = -gi / (2*ms) : 1
        dtheta/dt = -theta / (1e7*ms) : volt
        dtimer/dt = 0.1 : second
        """, threshold="v > (theta - 20*mV - 52*mV) and timer > 5*ms", reset="v = -65*mV; theta += 0.05*mV; timer = 0*ms",
        refractory=5 * ms, method="euler")
    exc.v, exc.theta = -105 * mV, 20 * mV
    inh = b2.NeuronGroup(n, """
        dv/dt = ((-60*mV - v) + ge * (0*mV - v) + gi * (-85*mV - v)) / (10*ms) : volt (unless refractory)
        dge/dt = -ge / (1*ms) : 1
        dgi/dt = -gi / (2*ms) : 1
        """, threshold="v > -40*mV", reset="v = -45*mV", refractory=2 * ms, method="euler")
    inh.v = -100 * mV
    inp = b2.PoissonGroup(784, rates=rates)
    s_in = b2.Synapses(inp, exc, """
        w : 1
        post2before : 1
        dapre/dt = -apre / (20*ms) : 1 (event-driven)
        dapost1/dt = -apost1 / (20*ms) : 1 (event-driven)
        dapost2/dt = -apost2 / (40*ms) : 1 (event-driven)
        """, on_pre="ge_post += w; apre = 1.; w = clip(w - 0.0001 * apost1, 0, 1.0)",
        on_post="post2before = apost2; w = clip(w + 0.01 * apre * post2before, 0, 1.0); apost1 = 1.; apost2 = 1.")
    s_in.connect(True)
    s_in.delay = "rand() * 10*ms"
    s_in.w = "(rand() + 0.01) * 0.3"
    s_ei = b2.Synapses(exc, inh, on_pre="ge_post += 10.4")
    s_ei.connect(j="i")
    s_ie = b2.Synapses(inh, exc, on_pre="gi_post += 17.0")
    s_ie.connect("i != j")
    mon = b2.SpikeMonitor(exc)
    return b2.Network(exc, inh, inp, s_in, s_ei, s_ie, mon), inp, s_in, mon


def brian2_runtime(x: np.ndarray, n_neurons: int, warmup: int) -> dict:
    import brian2 as b2

    b2.prefs.codegen.target = "cython"
    b2.defaultclock.dt = DT_MS * b2.ms
    b2.seed(0)
    net, inp, s_in, mon = brian2_network(b2, n_neurons, 0 * b2.Hz)
    net.run(0 * b2.ms)  # compiles
    presentations, spikes, t0 = 0, 0, None
    for k in range(len(x)):
        if k == warmup:
            presentations, spikes, t0 = 0, 0, time.perf_counter()
        w = np.asarray(s_in.w[:]).reshape(784, n_neurons)  # connect(True): pre-major order
        s_in.w[:] = (w * (NORM / w.sum(0))).reshape(-1)
        boost = 0.0
        while True:
            presentations += 1
            before = np.asarray(mon.count[:]).copy()
            inp.rates = x[k] / 4.0 * (1.0 + boost * STEP_HZ / 63.75) * b2.Hz  # +32 Hz at the brightest pixel
            net.run(ON_MS * b2.ms)
            fired = int((np.asarray(mon.count[:]) - before).sum())
            spikes += fired
            inp.rates = 0 * b2.Hz
            net.run(OFF_MS * b2.ms)
            if fired >= MIN_SPIKES:
                break
            boost += 1.0
    secs = time.perf_counter() - t0
    n = len(x) - warmup
    return {"images": n, "seconds": secs, "images_per_s": n / secs, "presentations_per_image": presentations / n,
            "exc_spikes_per_image": spikes / n}  # in the 350 ms windows of the timed presentations


def brian2_standalone(x: np.ndarray, n_neurons: int, threads: int) -> dict:
    import brian2 as b2

    out = tempfile.mkdtemp(prefix="brian2-standalone-")
    b2.set_device("cpp_standalone", build_on_run=False, directory=out)
    b2.prefs.devices.cpp_standalone.openmp_threads = threads
    b2.defaultclock.dt = DT_MS * b2.ms
    b2.seed(0)
    slots = int(round((ON_MS + OFF_MS) / 50.0))  # 50 ms rows: 7 on, 3 off per image
    table = np.zeros((len(x) * slots, 784))
    for k in range(len(x)):
        table[k * slots:k * slots + int(ON_MS / 50.0)] = x[k] / 4.0
    table_rates = b2.TimedArray(table * b2.Hz, dt=50 * b2.ms)
    net, inp, s_in, mon = brian2_network(b2, n_neurons, "table_rates(t, i)")
    net.run(len(x) * (ON_MS + OFF_MS) * b2.ms, namespace={"table_rates": table_rates})
    t0 = time.perf_counter()
    b2.device.build(directory=out, compile=True, run=False)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    b2.device.run(directory=out)
    secs = time.perf_counter() - t0
    spikes = int(mon.num_spikes)
    b2.device.reinit()
    b2.set_device("runtime")
    return {"images": len(x), "seconds": secs, "images_per_s": len(x) / secs, "compile_s": compile_s,
            "openmp_threads": threads, "presentations_per_image": 1.0, "exc_spikes_per_image": spikes / len(x)}


def brian2_standalone_protocol(x: np.ndarray, n_neurons: int, warmup: int) -> dict:
    """The protocol in C++ standalone: one compiled 500 ms presentation, executed once per
    presentation with the carried-over state, the normalised weights and the image's rates
    handed in as ``run_args`` and the results read back (Brian2 >= 2.6)."""
    import brian2 as b2

    out = tempfile.mkdtemp(prefix="brian2-protocol-")
    b2.set_device("cpp_standalone", build_on_run=False, directory=out)
    b2.defaultclock.dt = DT_MS * b2.ms
    b2.seed(0)
    table_rates = b2.TimedArray(np.zeros((10, 784)) * b2.Hz, dt=50 * b2.ms)
    net, inp, s_in, mon = brian2_network(b2, n_neurons, "table_rates(t, i)")
    groups = [o for o in net.objects if isinstance(o, b2.NeuronGroup)]
    exc, inh = groups if groups[0].N == n_neurons and "theta" in groups[0].variables else groups[::-1]
    end = ON_MS + OFF_MS
    net.run(end * b2.ms, namespace={"table_rates": table_rates})
    t0 = time.perf_counter()
    b2.device.build(directory=out, compile=True, run=False)
    compile_s = time.perf_counter() - t0
    carry = {exc: ("v", "ge", "gi", "theta", "timer"), inh: ("v", "ge", "gi"),
             s_in: ("w", "apre", "apost1", "apost2", "post2before", "lastupdate")}
    state = None
    presentations, spikes, t0 = 0, 0, None
    for k in range(len(x)):
        if k == warmup:
            presentations, spikes, t0 = 0, 0, time.perf_counter()
        boost = 0.0
        while True:
            presentations += 1
            table = np.zeros((10, 784))
            table[:int(ON_MS / 50.0)] = x[k] / 4.0 * (1.0 + boost * STEP_HZ / 63.75)
            args = {table_rates: table * b2.Hz}
            if state is not None:
                w = np.asarray(state[(s_in, "w")]).reshape(784, n_neurons)
                if boost == 0.0:
                    w = w * (NORM / w.sum(0))
                state[(s_in, "w")] = w.reshape(-1)
                state[(s_in, "lastupdate")] = state[(s_in, "lastupdate")] - end * b2.ms  # the clock restarts at 0
                for (obj, var), val in state.items():
                    args[getattr(obj, var)] = val
            b2.device.run(directory=out, with_output=False, run_args=args)
            fired = int((np.asarray(mon.t[:]) < ON_MS * 1e-3).sum())
            spikes += fired
            state = {(obj, var): getattr(obj, var)[:].copy() for obj, vs in carry.items() for var in vs}  # with units
            if fired >= MIN_SPIKES:
                break
            boost += 1.0
    secs = time.perf_counter() - t0
    b2.device.reinit()
    b2.set_device("runtime")
    n = len(x) - warmup
    return {"images": n, "seconds": secs, "images_per_s": n / secs, "compile_s": compile_s,
            "presentations_per_image": presentations / n, "exc_spikes_per_image": spikes / n}


def brian2_worker(mode: str, npy: str, n_neurons: int, warmup: int, threads: int, out: str) -> None:
    """Run one Brian2 side in this interpreter (numpy + brian2 only) and write its figures."""
    import json

    x = np.load(npy)
    if mode == "runtime":
        res = brian2_runtime(x, n_neurons, warmup)
    elif mode == "protocol":
        res = brian2_standalone_protocol(x, n_neurons, warmup)
    else:
        res = brian2_standalone(x[warmup:], n_neurons, threads)
    import brian2

    res["brian2_version"], res["numpy_version"] = brian2.__version__, np.__version__
    with open(out, "w") as f:
        json.dump(res, f)


def brian2_side(python: str, mode: str, x: np.ndarray, a: argparse.Namespace, threads: int = 1) -> dict:
    import json
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-brian2-") as tmp:
        npy, out = os.path.join(tmp, "x.npy"), os.path.join(tmp, "out.json")
        np.save(npy, x)
        cmd = [python, os.path.abspath(__file__), "--worker", mode, npy, str(a.n_neurons), str(a.warmup), str(threads), out]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"Brian2 {mode} failed: {res.stderr.strip()[-1500:]}")
        with open(out) as f:
            return json.load(f)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-images", type=int, default=100, help="timed training images per side")
    ap.add_argument("--warmup", type=int, default=5, help="images before the timed ones (runtime sides)")
    ap.add_argument("--n-neurons", type=int, default=100)
    ap.add_argument("--sides", default="snnrun,brian2-runtime,brian2-protocol,brian2-standalone")
    ap.add_argument("--standalone-threads", default="1,2", help="OpenMP threads tried for standalone")
    ap.add_argument("--snnrun-repeats", type=int, default=5,
                    help="snnrun passes over the images (fresh network each); its img/s is their median")
    ap.add_argument("--json", default=None)
    ap.add_argument("--brian2-python", default=str(C.REPO / ".venv-brian2" / "bin" / "python"),
                    help="the interpreter with brian2 installed (see the module docstring)")
    a = ap.parse_args(argv)
    sides = a.sides.split(",")
    if any(s.startswith("brian2") for s in sides) and not os.path.exists(a.brian2_python):
        sys.exit(f"error: no Brian2 interpreter at {a.brian2_python}; create it as the module docstring says "
                 "(or pass --brian2-python)")
    C.set_threads(1)
    env = C.environment(1)
    C.print_env(env)
    x = images(a.n_images, a.warmup)
    res: dict = {}
    brian_sides = [s for s in sides if s.startswith("brian2")]
    before = (a.snnrun_repeats + 1) // 2 if brian_sides else a.snnrun_repeats
    if "snnrun" in sides:  # half of snnrun's passes before Brian2's sides, half after: the VM's speed drifts
        res["snnrun"] = snnrun_side(x, a.n_neurons, a.warmup, before)
        print("snnrun img/s per pass: " + ", ".join(f"{v:.0f}" for v in res["snnrun"]["images_per_s_runs"]))
    if "brian2-runtime" in sides:
        res["brian2-runtime"] = brian2_side(a.brian2_python, "runtime", x, a)
    if "brian2-protocol" in sides:
        res["brian2-protocol"] = brian2_side(a.brian2_python, "protocol", x, a)
    if "brian2-standalone" in sides:
        for th in C.parse_ints(a.standalone_threads):
            res[f"brian2-standalone-{th}t"] = brian2_side(a.brian2_python, "standalone", x, a, th)
    if "snnrun" in sides and a.snnrun_repeats > before:
        after = snnrun_side(x, a.n_neurons, a.warmup, a.snnrun_repeats - before)["images_per_s_runs"]
        print("snnrun img/s per pass after Brian2's sides: " + ", ".join(f"{v:.0f}" for v in after))
        res["snnrun"] = with_passes(res["snnrun"], res["snnrun"]["images_per_s_runs"] + after)
    rows = [[k, v["images"], C.fmt(v["seconds"]), C.fmt(v["images_per_s"]), C.fmt(v["presentations_per_image"]),
             C.fmt(v.get("compile_s"))] for k, v in res.items()]
    C.print_table(["side", "images", "seconds", "img/s", "presentations/img", "compile s"], rows)
    brian = [v["images_per_s"] for k, v in res.items() if k.startswith("brian2")]
    if "snnrun" in res and brian:
        ratio = res["snnrun"]["images_per_s"] / max(brian)
        print(f"snnrun / fastest Brian2 mode: {ratio:.1f}x")
        res["ratio_to_fastest_brian2"] = ratio
        if "brian2-protocol" in res:  # the fastest Brian2 mode that runs the whole protocol
            proto = res["snnrun"]["images_per_s"] / res["brian2-protocol"]["images_per_s"]
            print(f"snnrun / Brian2 running the protocol (standalone, per presentation): {proto:.1f}x")
            res["ratio_to_brian2_protocol"] = proto
    C.write_json(a.json, {"env": env, "n_neurons": a.n_neurons, "results": res})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, npy, n, warmup, threads, out = sys.argv[2:8]
        brian2_worker(mode, npy, int(n), int(warmup), int(threads), out)
    else:
        main()
