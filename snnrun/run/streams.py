"""Learning-off passes in parallel streams (``train.eval_streams``).

With learning off the weights do not change, so a pass over N samples (the label
assignment, the test) can be cut into S contiguous parts that run side by side: part 0 on
the trained network itself, part k on a replica (the same weights and slow state, rebuilt
from the config: :func:`build_replica`), each part presented exactly as the serial pass would present it
(batch by batch, re-presentations, rests), each in its own thread (the fused kernel releases
the GIL).  Counts come back in the samples' order.

What differs from one serial pass: part k starts from the network at rest rather than from
the state the previous sample left (a rest period later), and its Poisson draws come from
its own seed generator (seeded from torch's global RNG before the parts start), so the
result is deterministic for a given seed and part count, and equal to the serial pass in
distribution, not spike for spike.  ``eval_streams: 1`` is the serial pass.

Kernels with numba ``parallel`` loops (dense layers of millions of synapses) are then entered
from several threads at once, which numba's ``omp`` and ``tbb`` threading layers allow and its
``workqueue`` fallback does not (numba aborts): use ``eval_streams: 1`` there.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import threading
from typing import Any

import torch


def parts(n: int, streams: int) -> list[tuple[int, int]]:
    """``streams`` contiguous ranges covering ``range(n)``, sizes differing by at most one."""
    bounds = [n * k // streams for k in range(streams + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(streams) if bounds[k + 1] > bounds[k]]


def collect_streams(runner: Any, images: torch.Tensor, bar: Any, streams: int) -> tuple[torch.Tensor, int, int]:
    """Present ``images`` (learning off) in ``streams`` parallel parts; return (counts in
    order, presentations, batches), as the serial :meth:`present_all` does.  A failure in
    one part (or a signal) stops the others at their next batch, and the first error is raised."""
    ranges = parts(len(images), streams)
    seeds = [int(torch.randint(0, 2**31 - 1, (1,))) for _ in ranges]  # from the global RNG: reproducible
    workers = [runner] + [replica(runner) for _ in ranges[1:]]
    lock, abort = threading.Lock(), threading.Event()

    def tick(n: int) -> None:
        if bar is not None:
            with lock:
                bar.update(n)

    def stop() -> bool:
        return bool(runner.stop_signal) or abort.is_set()

    def work(k: int) -> tuple[torch.Tensor, int, int]:
        w = workers[k]
        w.sim.seeds = torch.Generator().manual_seed(seeds[k])
        a, b = ranges[k]
        try:
            return w.present_all(images[a:b], False, tick, stop=stop)
        except BaseException:
            abort.set()
            raise

    try:
        with cf.ThreadPoolExecutor(len(ranges)) as pool:
            futures = [pool.submit(work, k) for k in range(len(ranges))]
            try:
                while cf.wait(futures, timeout=0.5, return_when=cf.FIRST_EXCEPTION)[1] and not abort.is_set():
                    pass  # the main thread stays free for signal handlers
            except BaseException:  # e.g. KeyboardInterrupt where no handler turns it into stop_signal
                abort.set()
                raise
            results = [f.result() for f in futures]
    finally:
        runner.sim.seeds = None
    runner.presentations += sum(r[1] for r in results[1:])  # the replicas' presentations count as the run's
    counts = torch.cat([r[0] for r in results])
    return counts, sum(r[1] for r in results), sum(r[2] for r in results)


def replica(runner: Any) -> Any:
    """A shallow copy of ``runner`` on its own network and simulator: ``runner.replicate()``
    if set, else the network rebuilt from ``runner.cfg.network`` with the trained state loaded."""
    net, sim = (runner.replicate or (lambda: build_replica(runner)))()
    net.train(False)
    twin = copy.copy(runner)
    twin.net, twin.sim, twin.presentations, twin._rest_input = net, sim, 0, None
    return twin


def build_replica(runner: Any) -> tuple[Any, Any]:
    """The network of ``runner.cfg`` with ``runner.net``'s weights and slow state (fast state
    at rest) and a simulator of the same backend."""
    from ..build import build_network
    from ..core.simulate import make_simulator

    cfg, net = runner.cfg, runner.net
    twin = build_network(cfg.network, dt_ms=cfg.dt_ms, device=net.device, seed=cfg.seed)
    twin.load_state_dict(net.state_dict())
    return twin, make_simulator(twin, [cfg.train.exc_population], runner.sim.backend)
