"""The CUDA kernel equals the reference (eager torch) loop: identical spikes at every step,
the same voltages, weights and thresholds (float32 rounding aside, as for the fused
kernel).  Without a GPU the kernels run in numba-cuda's simulator on CPU tensors (the
test session sets ``NUMBA_ENABLE_CUDASIM=1``), so the networks are small; with one they
run on the device, against the reference on the same device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from snnrun.build import build_network
from snnrun.core.encoders import BernoulliTrain
from snnrun.core.gpu import CudaSimulator, simulated, unsupported_reason
from snnrun.core.simulate import TorchSimulator, make_simulator

from .test_fused import DC_BINDSNET, DC_PAPER, ZOO, _assert_same

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not simulated():
    pytest.skip("no GPU and numba-cuda's simulator is off (NUMBA_ENABLE_CUDASIM)", allow_module_level=True)

# the paper's network without delays, and the zoo without delays and bias (not generated yet)
DC_PAPER_NO_DELAY = DC_PAPER.replace("delay_ms: {max_ms: 4.0}, ", "")
ZOO_CUDA = ZOO.replace("delay_ms: 2, bias: 0.2,", "")
assert DC_PAPER_NO_DELAY != DC_PAPER and ZOO_CUDA != ZOO


def _pair(text, dt, threads):
    cfg = yaml.safe_load(text)
    ref, gpu = (build_network(cfg, dt_ms=dt, seed=3, device=DEVICE) for _ in range(2))
    for net in (ref, gpu):
        for conn in net.connections.values():
            conn.norm = None  # normalisation runs after each call; tested below
    rs, gs = TorchSimulator(ref, []), CudaSimulator(gpu, [], threads=threads)
    rs.seeds, gs.seeds = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)  # one_spike's draws
    return ref, gpu, rs, gs


DC_ONE_SPIKE = DC_BINDSNET.replace("one_spike: false", "one_spike: true")  # as configs/network/diehl_cook_bindsnet.yaml
assert DC_ONE_SPIKE != DC_BINDSNET


@pytest.mark.parametrize("text,dt,threads", [(DC_BINDSNET, 1.0, 32), (DC_ONE_SPIKE, 1.0, 8), (DC_PAPER_NO_DELAY, 0.5, 8),
                                             (ZOO_CUDA, 1.0, 32)],
                         ids=["dc_bindsnet", "dc_one_spike", "dc_paper", "zoo"])
@pytest.mark.parametrize("learning,batch", [(True, 1), (True, 2), (False, 3)], ids=["learn", "learn_b2", "infer_b3"])
def test_cuda_equals_reference_step_by_step(text, dt, threads, learning, batch):
    """One step per launch: the state after every step equals the reference's.  Learning
    with a batch runs in one block (the samples' increments summed); inference in one
    block per sample; 8 threads for 10 neurons exercise the strided loops."""
    ref, gpu, rs, gs = _pair(text, dt, threads)
    n_in = ref.populations["X"].n
    steps = 30
    x = torch.rand(steps, batch, n_in, generator=torch.Generator().manual_seed(0)) < 0.3
    x = x.view(steps, batch, *ref.populations["X"].shape).to(DEVICE)
    w0 = {k: c.w.clone() for k, c in ref.connections.items()}
    fired = 0
    for t in range(steps):
        rs.run({"X": x[t:t + 1]}, learning)
        gs.run({"X": x[t:t + 1]}, learning)
        _assert_same(ref, gpu, f"step {t}")
        fired += sum(int(p.s.sum()) for n, p in ref.populations.items() if n != "X")
    assert fired > 10, "the test network should be active"
    if learning:
        assert any(float((c.w - w0[k]).abs().max()) > 1e-4 for k, c in ref.connections.items()), "weights should learn"


def test_cuda_whole_presentations_with_bernoulli_input_counts_and_normalisation():
    """Presentations of 60 steps in one launch each, inputs drawn from probabilities (the
    same counter-based draw as the reference), spike counts, weight normalisation."""
    cfg = yaml.safe_load(DC_BINDSNET)
    ref, gpu = (build_network(cfg, seed=3, device=DEVICE) for _ in range(2))
    rs, gs = TorchSimulator(ref, ["Ae"]), CudaSimulator(gpu, ["Ae"])
    rs.seeds, gs.seeds = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    g = torch.Generator().manual_seed(1)
    total = 0
    for sample in range(3):
        p = (torch.rand(1, 1, 8, 8, generator=g) * 0.6).to(DEVICE)
        ref.reset_state()
        gpu.reset_state()
        cr = rs.run({"X": BernoulliTrain(p, 60)}, True)["Ae"]
        cg = gs.run({"X": BernoulliTrain(p, 60)}, True)["Ae"]
        assert torch.equal(cr, cg)
        _assert_same(ref, gpu, f"sample {sample}")
        total += int(cr.sum())
    assert total > 0
    torch.testing.assert_close(gpu.connections["X_Ae"].w.sum(0), torch.full((12,), 20.0, device=DEVICE))


def test_cuda_external_current_opens_the_inhibitory_conductance_when_negative():
    """External input to a non-input population: positive drives g_e, negative g_i (as
    Network.run), in a batch of 2 blocks."""
    cfg = yaml.safe_load(DC_PAPER_NO_DELAY)
    ref, gpu = (build_network(cfg, dt_ms=0.5, seed=3, device=DEVICE) for _ in range(2))
    rs, gs = TorchSimulator(ref, ["Ae"]), CudaSimulator(gpu, ["Ae"], threads=16)
    x = (torch.rand(40, 2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.4).to(DEVICE)
    cur = torch.zeros(40, 2, 10, device=DEVICE)
    cur[:, :, :5] = 0.5
    cur[:, :, 5:] = -0.5
    cr = rs.run({"X": x, "Ae": cur}, False)["Ae"]
    cg = gs.run({"X": x, "Ae": cur}, False)["Ae"]
    assert torch.equal(cr, cg)
    _assert_same(ref, gpu, "after the presentation")
    assert int(cr[:, :5].sum()) > int(cr[:, 5:].sum())


@pytest.mark.parametrize("change,needle", [
    ("delay_ms: {max_ms: 4.0}, ", None),
    ("kind: dense, source: Ai", "bias"),
    ("kind: triplet_post_pre", "mstdp"),
], ids=["delays", "bias", "reward_rule"])
def test_cuda_names_what_it_cannot_run(change, needle):
    text = DC_PAPER
    if needle == "bias":
        text = text.replace("delay_ms: {max_ms: 4.0}, ", "").replace(change, "bias: 0.1, " + change)
    elif needle == "mstdp":
        text = text.replace("delay_ms: {max_ms: 4.0}, ", "").replace(change, "kind: mstdp")
        text = text.replace(", nu_pre: 1.0e-3, nu_post: 5.0e-2", "")
    net = build_network(yaml.safe_load(text), dt_ms=0.5, seed=0, device=DEVICE)
    why = unsupported_reason(net)
    assert why is not None and ("delays" in why if needle in (None, "bias") else needle in why)
    with pytest.raises(ValueError, match="cuda backend"):
        CudaSimulator(net, [])


def test_auto_picks_the_kernel_only_on_cuda_and_says_why_not(monkeypatch):
    net = build_network(yaml.safe_load(DC_BINDSNET), seed=0)
    assert make_simulator(net, [], "auto").backend == "numba"  # the CPU's own kernel, even under the simulator
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")
    with pytest.raises(ValueError, match="runs on CUDA devices"):
        make_simulator(net, [], "cuda")


@pytest.mark.skipif(DEVICE == "cuda", reason="the GPU run compiles the kernels itself")
def test_generated_kernel_compiles_for_a_real_gpu(tmp_path):
    """The simulator runs Python; this compiles the same kernel text to PTX (sm_90) with
    numba-cuda's real compiler, so typing and lowering are checked without a GPU: the
    step's barriers are there, no product is fused into an FMA (the other backends round
    twice), and, where CUDA's ptxas is installed, a thread needs at most the registers a
    512-thread block may have.  Needs NVVM (libnvvm), skipped where it is missing."""
    code = textwrap.dedent(r"""
        import re, shutil, subprocess, sys, types, numba, torch, yaml
        import numba.cuda.dispatcher as dispatcher
        from numba import cuda
        from snnrun.build import build_network
        from snnrun.core.encoders import BernoulliTrain
        from snnrun.core.gpu import CudaSimulator
        from snnrun.core.gpu.source import MAX_REGISTERS
        dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))  # no GPU here
        for n, (text, counted, prob) in enumerate(NETWORKS):
            net = build_network(yaml.safe_load(text), seed=0)
            net.allocate(2)
            n_in = net.populations["X"].n
            x = BernoulliTrain(torch.full((2, n_in), 0.1), 5) if prob else torch.zeros(5, 2, n_in, dtype=torch.uint8)
            module, sig = CudaSimulator(net, [counted], check=False).compile_target({"X": x}, True)
            try:
                ptx, _ = cuda.compile_ptx(module.kernel.py_func, sig, cc=(9, 0))
            except Exception as exc:
                if "nvvm" in (type(exc).__name__ + str(exc)).lower():
                    print("NO-NVVM", exc)
                    raise SystemExit(0)
                raise
            print("BARS", ptx.count("bar.sync"), "FMA", ptx.count("fma.rn.f32"))
            ptxas = shutil.which("ptxas")
            if ptxas:
                path = f"OUT/k{n}.ptx"
                open(path, "w").write(ptx.replace(".entry", ".entry", 1))
                res = subprocess.run([ptxas, "-arch=sm_90", "-v", "--maxrregcount", str(MAX_REGISTERS), path,
                                      "-o", path + ".o"], capture_output=True, text=True)
                regs = [int(r) for r in re.findall(r"Used (\d+) registers", res.stdout + res.stderr)]
                print("REGS", max(regs) if regs else -1, res.returncode)
    """).replace("NETWORKS", repr(((ZOO_CUDA, "AL", False), (DC_ONE_SPIKE, "Ae", True)))).replace("OUT", str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    if "NO-NVVM" in out.stdout:
        pytest.skip(f"no NVVM to compile with: {out.stdout.strip()[:200]}")
    lines = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("BARS")]
    assert len(lines) == 2, out.stdout
    for ln in lines:
        assert int(ln[1]) >= 3 and int(ln[3]) == 0, out.stdout  # barriers; no fma.rn.f32
    for ln in [ln.split() for ln in out.stdout.splitlines() if ln.startswith("REGS")]:
        assert 0 < int(ln[1]) <= 128 and ln[2] == "0", out.stdout


def test_device_views_are_kept_for_state_and_made_anew_for_inputs(monkeypatch):
    """On a GPU each launch passes numba views of the tensors: the network's own are made
    once (until it re-allocates), this launch's inputs every time."""
    import snnrun.core.gpu as gpu

    made = []

    class FakeCuda:
        @staticmethod
        def as_cuda_array(t):
            made.append(t.data_ptr())
            return ("view", t.data_ptr())

    net = build_network(yaml.safe_load(DC_BINDSNET), seed=0)
    net.allocate(1)
    sim = CudaSimulator(net, [], check=False)
    monkeypatch.setattr(gpu, "simulated", lambda: False)
    monkeypatch.setattr(gpu, "_cuda", lambda: FakeCuda)
    state = [net.populations["Ae"].v, net.connections["X_Ae"].w]
    first = sim._args([torch.zeros(3)] + state, fresh={0})
    again = sim._args([torch.zeros(3)] + state, fresh={0})
    assert len(made) == 4 and first[1:] == again[1:]  # 3 views, then only the new input's
    net.allocate(2)  # new state tensors: new views
    sim._args([net.populations["Ae"].v], fresh=set())
    assert len(made) == 5
    launch = gpu.Launch(sim, {}, {})  # placeholders (a connection without a mask) are made once
    assert launch.dummy(2) is launch.dummy(2) and launch.scratch("p1_ie", 12) is launch.scratch("p1_ie", 12)
