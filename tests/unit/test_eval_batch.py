"""``data.eval_batch_size``: the learning-off passes present samples in batches of that size;
with the state reset between samples (rest_ms 0) and a deterministic encoder, every sample's
counts equal those of presenting it alone."""

from __future__ import annotations

import torch

from snnrun.build import build_encoder, build_network
from snnrun.core.simulate import make_simulator
from snnrun.run.unsupervised import UnsupervisedRunner


NET = {"populations": {"X": {"kind": "input", "n": 6}, "E": {"kind": "lif", "n": 5, "refrac_ms": 2.0}},
       "connections": {"XE": {"kind": "dense", "source": "X", "target": "E", "weight": "0.5 + 3 * U(0, 1)"}}}


def runner(eval_batch_size, backend):
    class Cfg:
        seed = 0

        class data:
            batch_size = 1

        class train:
            supervise_current, supervise_others, min_spikes, max_retries, rest_ms = 0.0, 0.0, 0, 0, 0.0
            exc_population, input_population, progress = "E", "X", False
            assign_pass, eval_streams = False, 1

    Cfg.data.eval_batch_size = eval_batch_size
    net = build_network(NET, seed=0)
    enc = build_encoder({"kind": "rank_order", "time_ms": 30.0})
    presented = []
    sim = make_simulator(net, ["E"], backend)
    run = sim.run

    def spy(inputs, **kw):
        presented.append(int(next(iter(inputs.values())).shape[1]))
        return run(inputs, **kw)

    sim.run = spy
    r = UnsupervisedRunner(Cfg, net, enc, sim, {}, lambda m, s: None)

    def replicate():
        twin = build_network(NET, seed=5)  # other initial weights, replaced by the trained ones
        twin.load_state_dict(net.state_dict())
        return twin, make_simulator(twin, ["E"], backend)

    r.replicate = replicate
    return r, presented


def test_learning_off_passes_batch_without_changing_any_sample():
    x = torch.rand(7, 6, generator=torch.Generator().manual_seed(1))
    for backend in ("torch", "auto"):
        alone, sizes1 = runner(None, backend)
        batched, sizes3 = runner(3, backend)
        c1, _ = alone.collect(x, learning=False, desc="test")
        c3, _ = batched.collect(x, learning=False, desc="test")
        assert sizes1 == [1] * 7 and sizes3 == [3, 3, 1]
        assert c1.sum() > 0 and torch.equal(c1, c3), backend


def test_retries_are_counted_as_presentations():
    """A network that never fires with min_spikes 1 and max_retries 3: every batch is presented
    1 + 3 times, and collect reports 4 presentations per batch."""
    r, sizes = runner(2, "torch")
    r.cfg.train.min_spikes, r.cfg.train.max_retries, r.cfg.train.intensity_step = 1, 3, 10.0
    r.net.connections["XE"].w.zero_()
    counts, _ = r.collect(torch.rand(3, 6), learning=False, desc="test")
    assert counts.sum() == 0 and r.presentations == 8 and r.presentations_per_batch == 4.0
    assert sizes == [2, 2, 2, 2, 1, 1, 1, 1]


def test_parallel_streams_give_every_sample_its_serial_counts():
    """``train.eval_streams``: the pass cut into 3 contiguous parts on network replicas in
    threads; with the state reset between samples and a deterministic encoder every sample's
    counts equal the serial pass's, in order, on both backends; presentations add up."""
    x = torch.rand(8, 6, generator=torch.Generator().manual_seed(2))
    for backend in ("torch", "auto"):
        serial, _ = runner(None, backend)
        par, sizes = runner(None, backend)
        par.cfg.train.eval_streams = 3
        c1, _ = serial.collect(x, learning=False, desc="test")
        c3, _ = par.collect(x, learning=False, desc="test")
        assert c1.sum() > 0 and torch.equal(c1, c3), backend
        assert sizes == [1, 1]  # the first part (samples 0-1) on the spied simulator; 2-4 and 5-7 on replicas
        assert par.presentations_per_batch == 1.0 and par.sim.seeds is None


def test_streams_replicate_from_the_config_and_stop_on_a_failure():
    """Without a task's ``replicate`` the replicas are rebuilt from ``cfg.network`` with the
    trained state (counts equal the serial pass's); an error in one part is raised by
    ``collect`` (not after the other parts finish) and the runner's seed generator is reset."""
    from snnrun.run import streams

    x = torch.rand(6, 6, generator=torch.Generator().manual_seed(3))
    serial, _ = runner(None, "auto")
    par, _ = runner(None, "auto")
    par.cfg.network, par.cfg.dt_ms, par.replicate = NET, 1.0, None
    par.cfg.train.eval_streams = 2
    assert torch.equal(serial.collect(x, learning=False, desc="test")[0], par.collect(x, learning=False, desc="test")[0])

    bad, _ = runner(None, "auto")
    bad.cfg.network, bad.cfg.dt_ms, bad.cfg.train.eval_streams = NET, 1.0, 2
    calls = []

    def replicate():
        twin, sim = streams.build_replica(bad)

        def fail(*a, **k):
            calls.append(1)
            raise RuntimeError("part 1 failed")

        sim.run = fail
        return twin, sim

    bad.replicate = replicate
    try:
        bad.collect(x, learning=False, desc="test")
        raise AssertionError("no error")
    except RuntimeError as exc:
        assert "part 1 failed" in str(exc)
    assert calls == [1] and bad.sim.seeds is None
