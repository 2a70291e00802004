#!/usr/bin/env python
"""BindsNET's README benchmark, snnrun and BindsNET side by side in one process.

The network: ``n`` Poisson input neurons (rates drawn from U(0, --max-rate) Hz) connected
all-to-all to ``n`` LIF neurons (BindsNET ``LIFNodes`` defaults: v_rest -65, v_reset -65,
v_thresh -52 mV, tau 100 ms, refractory 5 ms) with weights N(0, 1); --steps steps of
--dt ms (1000 x 1 ms).  Both sides get the same weight matrix.

* BindsNET: ``Network`` with ``Input(n)`` + ``LIFNodes(n)`` + ``Connection(w=W)``; input
  spikes from ``PoissonEncoder(time, dt)`` (encoded before the clock starts); the time is
  that of ``network.run(inputs=..., time=...)``.
* snnrun: the same network through ``build_network``, run by ``make_simulator(net, ["Y"],
  backend)`` for each backend (``numba``: the fused kernel, ``torch``: the eager
  reference).  ``--input bernoulli`` (default): the input is a
  ``BernoulliTrain(prob=rate*dt/1000, steps)``, which the numba kernel samples inside the
  timed call and the torch backend samples (torch.rand) inside the timed call; so snnrun's
  time includes drawing its input spikes, BindsNET's does not.  ``--input spikes``: every
  side gets the SAME pre-encoded spike tensor (BindsNET's PoissonEncoder output), and the
  output spike counts are compared neuron by neuron.

Each side: one warm-up run (excluded; for numba its first call compiles or loads the
kernel, reported as compile time), then --repeats timed runs (--large-repeats for the
slow dense sides, BindsNET and snnrun torch, at n >= --large-n), interleaved across
sides so that machine-load drift hits all sides alike; the median is reported.  State is
reset before every run (outside the timed region).

    python experiments/benchmarks/bench_lif.py                       # n = 1000, 4000, 10000
    python experiments/benchmarks/bench_lif.py --sizes 1000 --repeats 2 --json out/lif.json
"""

from __future__ import annotations

import argparse
import gc
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,4000,10000", help="network sizes n (comma/space separated; default: %(default)s)")
    p.add_argument("--steps", type=int, default=1000, help="simulation steps per run (default: %(default)s)")
    p.add_argument("--dt", type=float, default=1.0, help="time step in ms (default: %(default)s)")
    p.add_argument("--max-rate", type=float, default=100.0, help="input rates ~ U(0, max-rate) Hz (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per side (median reported; default: %(default)s)")
    p.add_argument("--large-n", type=int, default=10000,
                   help="from this n on, the slow dense sides (BindsNET, snnrun torch) use --large-repeats (default: %(default)s)")
    p.add_argument("--large-repeats", type=int, default=3, help="timed runs of the slow sides at n >= --large-n (default: %(default)s)")
    p.add_argument("--backends", default="numba,torch",
                   help="snnrun backends to time: numba, torch, compile (default: %(default)s)")
    p.add_argument("--input", choices=("bernoulli", "spikes"), default="bernoulli",
                   help="snnrun input: a BernoulliTrain sampled inside the timed call (default) or the same "
                        "pre-encoded spikes as BindsNET (then output spike counts are compared)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (BindsNET, snnrun torch) and numba kernel threads (default: %(default)s)")
    p.add_argument("--numba-torch-threads", type=int, default=1,
                   help="torch threads while the snnrun numba side runs (default: %(default)s, as snnrun's runner "
                        "sets for the numba backend; the kernel itself uses --threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bindsnet", action="store_true", help="time snnrun only")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.sizes = C.parse_ints(args.sizes)
    args.backends = [b.strip() for b in args.backends.replace(",", " ").split() if b.strip()]
    for b in args.backends:
        if b not in ("numba", "torch", "compile"):
            p.error(f"--backends: {b!r} is not one of: numba, torch, compile")
    if args.repeats < 1 or args.large_repeats < 1:
        p.error("--repeats and --large-repeats must be >= 1")
    return args


# ------------------------------------------------------------------ the two sides
class Side:
    """One thing to time: ``prepare()`` (untimed: reset state, fresh input) then ``run()``."""

    def __init__(self, name: str, repeats: int, prepare: Callable[[], Any], run: Callable[[Any], Any],
                 counts: Callable[[Any], Any], threads: int):
        self.name, self.repeats, self.threads = name, repeats, threads
        self.prepare, self.run, self.counts = prepare, run, counts
        self.times: list[float] = []
        self.first: Optional[float] = None
        self.out_counts = None
        self.error: Optional[str] = None

    def once(self) -> tuple[float, Any]:
        C.torch_threads(self.threads)
        arg = self.prepare()
        dt, out = C.timed(lambda: self.run(arg))
        return dt, out


def bindsnet_side(n: int, W, spikes, args, repeats: int) -> Side:
    from bindsnet.network import Network
    from bindsnet.network.monitors import Monitor
    from bindsnet.network.nodes import Input, LIFNodes
    from bindsnet.network.topology import Connection

    net = Network(dt=args.dt)
    x_layer, y_layer = Input(n=n), LIFNodes(n=n)  # LIFNodes defaults are the benchmark's neuron
    net.add_layer(x_layer, name="X")
    net.add_layer(y_layer, name="Y")
    net.add_connection(Connection(source=x_layer, target=y_layer, w=W.clone()), source="X", target="Y")
    run_time = args.steps * args.dt
    state = {"monitor": True}
    # the warm-up run records Y's spikes (for the cross-check); the timed runs have no monitor
    net.add_monitor(Monitor(y_layer, state_vars=["s"], time=args.steps), name="Y_s")

    def prepare():
        net.reset_state_variables()
        if not state["monitor"] and "Y_s" in net.monitors:
            del net.monitors["Y_s"]
        # Input aliases the input tensor and reset zeroes its last step in place: use a copy
        return {"X": spikes.clone()}

    def run(inputs):
        net.run(inputs=inputs, time=run_time)

    def counts(_):
        c = net.monitors["Y_s"].get("s").reshape(args.steps, -1).sum(0)
        state["monitor"] = False
        return c

    return Side("bindsnet", repeats, prepare, run, counts, args.threads)


def snnrun_side(n: int, W, rates, spikes, args, backend: str, repeats: int) -> Side:
    import torch
    from snnrun.build import build_network
    from snnrun.core.encoders import BernoulliTrain
    from snnrun.core.simulate import make_simulator

    cfg = {
        "populations": {
            "X": {"kind": "input", "n": n},
            "Y": {"kind": "lif", "n": n, "v_rest_mv": -65.0, "v_reset_mv": -65.0, "v_thresh_mv": -52.0,
                  "tau_mem_ms": 100.0, "refrac_ms": 5.0},
        },
        "connections": {
            "X_Y": {"kind": "dense", "source": "X", "target": "Y", "weight": {"dist": "normal", "mean": 0.0, "std": 1.0}},
        },
    }
    net = build_network(cfg, dt_ms=args.dt, device="cpu", seed=args.seed)
    with torch.no_grad():
        net.connections["X_Y"].w.copy_(W)
    net.train(False)
    sim = make_simulator(net, ["Y"], backend)
    if getattr(sim, "backend", backend) != backend:
        raise RuntimeError(f"make_simulator gave backend {sim.backend!r}, not {backend!r}")
    if args.input == "bernoulli":
        train = BernoulliTrain((rates * (args.dt / 1000.0)).clamp(0, 1).view(1, n).float(), args.steps)
        inputs = {"X": train}
    else:
        inputs = {"X": spikes.view(args.steps, 1, n).bool()}

    def prepare():
        net.reset_state()
        return inputs

    def run(inp):
        return sim.run(inp, learning=False)

    def counts(out):
        return out["Y"].reshape(-1)

    threads = args.numba_torch_threads if backend == "numba" else args.threads
    return Side(f"snnrun {backend}", repeats, prepare, run, counts, threads)


# ------------------------------------------------------------------ one size
def bench_size(n: int, args, have_bindsnet: bool) -> dict[str, Any]:
    import torch

    torch.manual_seed(args.seed + n)
    rates = torch.rand(n) * args.max_rate                   # Hz
    W = torch.randn(n, n)
    spikes = None
    if have_bindsnet:
        from bindsnet.encoding import PoissonEncoder

        spikes = PoissonEncoder(time=int(args.steps * args.dt), dt=args.dt)(rates)  # [T, n] uint8
    elif args.input == "spikes":
        spikes = (torch.rand(args.steps, n) < rates * (args.dt / 1000.0)).to(torch.uint8)
    slow_reps = args.large_repeats if n >= args.large_n else args.repeats

    sides: list[Side] = []
    errors: dict[str, str] = {}
    makers = []
    if have_bindsnet:
        makers.append(("bindsnet", lambda: bindsnet_side(n, W, spikes, args, slow_reps)))
    for b in args.backends:
        reps = args.repeats if b == "numba" else slow_reps
        makers.append((f"snnrun {b}", lambda b=b, reps=reps: snnrun_side(n, W, rates, spikes, args, b, reps)))
    for name, make in makers:
        try:
            sides.append(make())
        except Exception as exc:  # a side that cannot even be built is reported, the rest go on
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    # warm-up (first call: numba compiles or loads its cached kernel), then interleaved repeats
    for s in sides:
        try:
            s.first, out = s.once()
            s.out_counts = s.counts(out)
            print(f"  n={n:<6d} {s.name:14s} warm-up {s.first:8.3f} s", flush=True)
        except Exception as exc:
            s.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    for r in range(max((s.repeats for s in sides), default=0)):
        for s in sides:
            if s.error is None and r < s.repeats:
                try:
                    dt, _ = s.once()
                    s.times.append(dt)
                    print(f"  n={n:<6d} {s.name:14s} run {r + 1}/{s.repeats} {dt:8.3f} s", flush=True)
                except Exception as exc:
                    s.error = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()

    res: dict[str, Any] = {"n": n, "steps": args.steps, "dt_ms": args.dt, "input": args.input, "sides": {}}
    for s in sides:
        med = C.median(s.times)
        res["sides"][s.name] = {
            "median_s": med if s.error is None else None,
            "times_s": s.times,
            "warmup_s": s.first,
            # numba / compile: the warm-up call compiles (numba: or loads the on-disk cached) kernel
            "compile_s": (s.first - med) if s.name in ("snnrun numba", "snnrun compile") and s.first is not None and s.times else None,
            "out_spikes": int(s.out_counts.sum()) if s.out_counts is not None else None,
            "out_rate_hz": (float(s.out_counts.float().mean()) / (args.steps * args.dt / 1000.0)
                            if s.out_counts is not None else None),
            "error": s.error,
        }
    for name, err in errors.items():
        res["sides"][name] = {"median_s": None, "error": err}
    # cross-check: with the same input spikes the spike counts should agree neuron by neuron
    if args.input == "spikes" and "bindsnet" in res["sides"]:
        ref = next((s.out_counts for s in sides if s.name == "bindsnet"), None)
        for s in sides:
            if s.name != "bindsnet" and ref is not None and s.out_counts is not None:
                same = (s.out_counts.long() == ref.long()).float().mean().item()
                res["sides"][s.name]["same_counts_as_bindsnet"] = same
    del sides
    gc.collect()
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    have_bindsnet, env = C.start(args)
    print(f"# LIF benchmark: n Poisson inputs (U(0,{args.max_rate:g}) Hz) -> n LIF, dense N(0,1) weights, "
          f"{args.steps} steps of {args.dt:g} ms; input: "
          + ("snnrun samples a BernoulliTrain inside the timed call; BindsNET gets PoissonEncoder spikes encoded "
             "before the clock" if args.input == "bernoulli" else
             "every side gets the same pre-encoded PoissonEncoder spikes (encoding not timed)"))
    results = []
    for n in args.sizes:
        results.append(bench_size(n, args, have_bindsnet))

    names = (["bindsnet"] if have_bindsnet else []) + [f"snnrun {b}" for b in args.backends]
    headers = ["n"] + [f"{nm} s" for nm in names] + [f"speed-up {b}" for b in args.backends if have_bindsnet]
    rows = []
    for r in results:
        med = {nm: (r["sides"].get(nm) or {}).get("median_s") for nm in names}
        row = [str(r["n"])] + [med[nm] if med[nm] is not None else "error" for nm in names]
        if have_bindsnet:
            for b in args.backends:
                a, s = med.get("bindsnet"), med.get(f"snnrun {b}")
                ratio = a / s if a and s else None
                r.setdefault("speedup", {})[b] = ratio
                row.append(f"{ratio:.1f}x" if ratio else "-")
        rows.append(row)
    print()
    print(f"LIF benchmark, median wall seconds per {args.steps}-step run (speed-up = BindsNET time / snnrun time)")
    C.print_table(headers, rows)
    print()
    for r in results:
        extra = []
        for nm in names:
            side = r["sides"].get(nm) or {}
            if side.get("compile_s") is not None:
                extra.append(f"{nm} first call {side['warmup_s']:.2f} s (compile/load ~{side['compile_s']:.2f} s)")
        rates = {nm: (r['sides'].get(nm) or {}).get("out_rate_hz") for nm in names}
        extra.append("output rate " + ", ".join(f"{nm} {v:.1f} Hz" for nm, v in rates.items() if v is not None))
        same = {nm: r["sides"][nm].get("same_counts_as_bindsnet") for nm in names if nm in r["sides"]}
        same = {k: v for k, v in same.items() if v is not None}
        if same:
            extra.append("same spike count as BindsNET: " + ", ".join(f"{k} {100 * v:.2f}% of neurons" for k, v in same.items()))
        errs = {nm: (r["sides"].get(nm) or {}).get("error") for nm in names}
        extra += [f"{nm} FAILED: {e}" for nm, e in errs.items() if e]
        print(f"n={r['n']}: " + "; ".join(extra))
    env["load_avg_end"] = list(C.os.getloadavg()) if hasattr(C.os, "getloadavg") else None
    C.write_json(args.json, {"benchmark": "lif", "args": vars(args), "env": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
