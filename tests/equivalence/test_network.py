"""Network-level equivalences: batching, transmission delays, CPU vs CUDA."""

from __future__ import annotations

import pytest
import torch

from snnrun.core import Network, Recorder

LIF = dict(tau_mem_ms=20.0, refrac_ms=2.0)



def spikes(shape, p=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < p


# ------------------------------------------------------------------ batching

def test_batch_equals_separate_runs():
    """B=4 samples at once == 4 runs of one sample (learning off)."""
    net = Network()
    net.add_population("in", "input", n=20)
    net.add_population("exc", "lif", n=15, **LIF)
    gen = torch.Generator().manual_seed(0)
    net.add_connection("ff", "in", "exc", "dense", weight={"low": 0.0, "high": 5.0}, generator=gen,
                       learning={"kind": "post_pre", "nu_pre": 0.1, "nu_post": 0.1})
    net.add_connection("rec", "exc", "exc", "dense", mask="all_but_self", weight={"low": -4.0, "high": 0.0},
                       generator=gen)
    x = spikes((60, 4, 20), p=0.3, seed=1)
    w0 = {k: v.clone() for k, v in net.state_dict().items()}
    rec = Recorder({"exc": ["s", "v"]})
    net.run({"in": x}, recorders=[rec], learning=False)
    batch_s, batch_v = rec.get("exc", "s").clone(), rec.get("exc", "v").clone()
    assert batch_s.sum() > 50 and (batch_s.sum((0, 2)) > 0).all()
    for b in range(4):
        net.run({"in": x[:, b:b + 1]}, recorders=[rec], learning=False, reset=True)
        assert torch.equal(rec.get("exc", "s")[:, 0], batch_s[:, b]), f"sample {b}"
        assert torch.equal(rec.get("exc", "v")[:, 0], batch_v[:, b]), f"sample {b}"
    for k, v in net.state_dict().items():
        assert torch.equal(v, w0[k]), f"{k} changed with learning off"


# ------------------------------------------------------------------ delays

def delay_network(dt, delays_ms, n_in=10, n_out=6, seed=0):
    """in -> out_<i> (dense, the same weights) for every delay in ``delays_ms``."""
    net = Network(dt_ms=dt)
    net.add_population("in", "input", n=n_in)
    w = torch.rand(n_in, n_out, generator=torch.Generator().manual_seed(seed)) * 6.0
    conns = []
    for i, d in enumerate(delays_ms):
        net.add_population(f"out{i}", "lif", n=n_out, **LIF)
        c = net.add_connection(f"c{i}", "in", f"out{i}", "dense", weight=0.0, delay_ms=d,
                               generator=torch.Generator().manual_seed(seed + 1))
        c.w.copy_(w)
        conns.append(c)
    return net, conns


@pytest.mark.parametrize("dt, delay_ms, shift", [(1.0, 3, 3), (0.5, 2, 4), (1.0, 1, 1)])
def test_homogeneous_delay_is_a_shift(dt, delay_ms, shift):
    net, _ = delay_network(dt, [0, delay_ms])
    x = spikes((80, 2, 10), p=0.3, seed=2)
    rec = Recorder({"out0": ["s", "v"], "out1": ["s", "v"]})
    net.run({"in": x}, recorders=[rec])
    v0, v1 = rec.get("out0", "v"), rec.get("out1", "v")
    assert rec.get("out0", "s").sum() > 20
    assert torch.equal(v1[shift:], v0[:-shift])
    assert torch.equal(rec.get("out1", "s")[shift:], rec.get("out0", "s")[:-shift])
    assert (v1[:shift] == -65.0).all()


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_per_synapse_delays_all_equal_k_match_homogeneous(kind, k):
    net = Network()
    net.add_population("in", "input", n=10)
    gen = torch.Generator().manual_seed(0)
    net.add_population("hom", "lif", n=6, **LIF)
    net.add_population("syn", "lif", n=6, **LIF)
    extra = {"density": 0.5} if kind == "sparse" else {}
    syn = net.add_connection("syn", "in", "syn", kind, weight={"low": 0.0, "high": 8.0}, delay_ms={"max_ms": 3},
                             generator=gen, **extra)
    hom = net.add_connection("hom", "in", "hom", "dense", weight=0.0, delay_ms=k)
    hom.w.copy_(syn.dense_weights())
    syn.delays.fill_(k)
    x = spikes((60, 2, 10), p=0.3, seed=3)
    rec = Recorder({"hom": ["s", "v"], "syn": ["s", "v"]})
    net.run({"in": x}, recorders=[rec])
    assert rec.get("hom", "s").sum() > 10
    assert torch.equal(rec.get("hom", "s"), rec.get("syn", "s"))
    torch.testing.assert_close(rec.get("hom", "v"), rec.get("syn", "v"), atol=1e-5, rtol=0)


def test_sparse_per_synapse_delays_equal_dense():
    """Random per-synapse delays: sparse == dense with the same delays on the same synapses."""
    net = Network()
    net.add_population("in", "input", n=12)
    net.add_population("a", "lif", n=8, **LIF)
    net.add_population("b", "lif", n=8, **LIF)
    gen = torch.Generator().manual_seed(0)
    sp = net.add_connection("a", "in", "a", "sparse", density=0.4, weight={"low": 0.0, "high": 10.0},
                            delay_ms={"max_ms": 4}, generator=gen)
    de = net.add_connection("b", "in", "b", "dense", weight=0.0, delay_ms={"max_ms": 4}, generator=gen)
    de.w.copy_(sp.dense_weights())
    de.delays.zero_()
    de.delays[sp.indices[0], sp.indices[1]] = sp.delays
    assert len(sp.delays.unique()) == 5
    x = spikes((80, 3, 12), p=0.3, seed=4)
    rec = Recorder({"a": ["s", "v"], "b": ["s", "v"]})
    net.run({"in": x}, recorders=[rec])
    assert rec.get("a", "s").sum() > 10
    assert torch.equal(rec.get("a", "s"), rec.get("b", "s"))
    torch.testing.assert_close(rec.get("a", "v"), rec.get("b", "v"), atol=1e-5, rtol=0)


def test_per_synapse_delay_by_hand():
    """2 pre -> 1 post, delays (0, 2) steps, weights (1, 10); transmission adds one step."""
    net = Network()
    net.add_population("in", "input", n=2)
    net.add_population("out", "mcculloch_pitts", n=1, v_thresh_mv=1e9)   # v = input current
    c = net.add_connection("c", "in", "out", "dense", weight=0.0, delay_ms={"max_ms": 2})
    c.w.copy_(torch.tensor([[1.0], [10.0]]))
    c.delays.copy_(torch.tensor([[0], [2]]))
    x = torch.zeros(7, 1, 2, dtype=torch.bool)
    x[0, 0, 0] = True                  # pre 0 at t=0 -> arrives t=1
    x[0, 0, 1] = x[1, 0, 1] = True     # pre 1 at t=0, 1 -> arrives t=3, 4
    x[3, 0, 0] = True                  # pre 0 at t=3 -> arrives t=4
    rec = Recorder({"out": ["v"]})
    net.run({"in": x}, recorders=[rec])
    expected = torch.tensor([0.0, 1.0, 0.0, 10.0, 11.0, 0.0, 0.0])
    assert torch.equal(rec.get("out", "v")[:, 0, 0], expected)


# ------------------------------------------------------------------ devices

def dc_like_run(device: str, steps: int = 100):
    """A small Diehl & Cook-style network (plus conv2d / local / sparse branches) with
    learning; returns recorded spikes, voltages and final weights on the CPU."""
    net = Network(device=device)
    net.add_population("in", "input", shape=[1, 8, 8])
    net.add_population("exc", "diehl_cook", n=16, one_spike=False, theta_plus_mv=0.5, tau_mem_ms=20.0)
    net.add_population("inh", "lif", n=16, tau_mem_ms=10.0, refrac_ms=2.0)
    net.add_population("conv", "lif", shape=[4, 4, 4], **LIF)
    net.add_population("loc", "lif", shape=[2, 4, 4], **LIF)
    net.add_population("sp", "lif", n=16, **LIF)
    gen = torch.Generator().manual_seed(0)
    stdp = {"kind": "post_pre", "nu_pre": 1e-3, "nu_post": 1e-2}
    net.add_connection("in_exc", "in", "exc", "dense", weight={"low": 0.0, "high": 1.0}, wmin=0.0, wmax=1.0,
                       norm=20.0, learning=stdp, generator=gen)
    net.add_connection("exc_inh", "exc", "inh", "one_to_one", weight=22.5)
    net.add_connection("inh_exc", "inh", "exc", "dense", mask="all_but_self", weight=-5.0)
    geo = dict(kernel_size=3, stride=2, padding=1, weight={"low": 0.0, "high": 3.0}, wmin=0.0, wmax=3.0,
               learning=stdp, generator=gen)
    net.add_connection("in_conv", "in", "conv", "conv2d", **geo)
    net.add_connection("in_loc", "in", "loc", "local", **geo)
    net.add_connection("in_sp", "in", "sp", "sparse", density=0.3, weight={"low": 0.0, "high": 3.0},
                       delay_ms={"max_ms": 3}, learning=stdp, generator=gen)
    x = spikes((steps, 2, 1, 8, 8), p=0.25, seed=5)
    pops = ["exc", "inh", "conv", "loc", "sp"]
    rec = Recorder({p: ["s", "v"] for p in pops})
    net.run({"in": x}, recorders=[rec])
    out = {f"{p}.{v}": rec.get(p, v).cpu() for p in pops for v in ("s", "v")}
    out.update({k: v.cpu() for k, v in net.state_dict().items()})
    return out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_equals_cuda():
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        cpu, gpu = dc_like_run("cpu"), dc_like_run("cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    assert cpu.keys() == gpu.keys()
    for p in ("exc", "inh", "conv", "loc", "sp"):
        assert cpu[f"{p}.s"].sum() > 0, p
    for k in cpu:
        if k.endswith(".s"):
            assert torch.equal(cpu[k], gpu[k]), k
        else:
            torch.testing.assert_close(cpu[k], gpu[k], atol=1e-4, rtol=1e-4, msg=k)


def test_dc_like_run_is_deterministic_on_cpu():
    """The CPU half of the device test (runs everywhere): the run fires and repeats exactly."""
    a, b = dc_like_run("cpu", steps=60), dc_like_run("cpu", steps=60)
    for p in ("exc", "inh", "conv", "loc", "sp"):
        assert a[f"{p}.s"].sum() > 0, p
    for k in a:
        assert torch.equal(a[k], b[k]), k
