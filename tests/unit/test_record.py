"""Recorder / SpikeCounter: preallocated buffers, windows, counts."""

from __future__ import annotations

import pytest
import torch

from snnrun.core import Network, Recorder, SpikeCounter


def if_net(n: int = 3) -> Network:
    net = Network()
    net.add_population("E", "if", n=n, refrac_ms=0.0)
    return net


def drive(T: int, B: int, currents) -> torch.Tensor:
    return torch.tensor(currents, dtype=torch.float32).expand(T, B, len(currents)).contiguous()


def test_recorded_values_by_hand():
    """IF, I = [13, 6.5, 1]: neuron 0 spikes every step (v = -65 + 13 >= -52, reset);
    neuron 1 every 2nd step (0-based 1, 3, ...); neuron 2 never in 10 steps and v_t = -65 + (t+1)."""
    net = if_net()
    rec = Recorder({"E": ["s", "v"]})
    net.run({"E": drive(10, 1, [13.0, 6.5, 1.0])}, recorders=[rec])
    s, v = rec.get("E", "s"), rec["E", "v"]
    assert s.shape == (10, 1, 3) and s.dtype == torch.bool and v.dtype == torch.float32
    assert s[:, 0, 0].all()
    assert torch.nonzero(s[:, 0, 1]).flatten().tolist() == [1, 3, 5, 7, 9]
    assert not s[:, 0, 2].any()
    assert v[:, 0, 2].tolist() == [-65.0 + t for t in range(1, 11)]


def test_buffers_preallocated_once_and_overwritten():
    """Same T and batch: the same tensor objects are reused across runs and hold the latest run."""
    net = if_net()
    rec = Recorder({"E": ["s", "v"]})
    net.run({"E": drive(10, 2, [13.0, 6.5, 1.0])}, recorders=[rec])
    s_buf, v_buf = rec.get("E", "s"), rec.get("E", "v")
    ptr = v_buf.data_ptr()
    net.run({"E": drive(10, 2, [0.0, 0.0, 0.0])}, recorders=[rec], reset=True)
    assert rec.get("E", "s") is s_buf and rec.get("E", "v") is v_buf and v_buf.data_ptr() == ptr
    assert not s_buf.any()
    assert torch.all(v_buf == -65.0)
    # a different length re-allocates (new shape)
    net.run({"E": drive(4, 2, [0.0, 0.0, 0.0])}, recorders=[rec])
    assert rec.get("E", "v").shape == (4, 2, 3)


@pytest.mark.parametrize("start,stop,length", [(3, 8, 5), (0, None, 12), (5, 100, 7), (12, None, 0)])
def test_window(start, stop, length):
    """Recorder(start, stop) keeps steps start <= t < min(stop, T), equal to the full record's slice."""
    T = 12
    full, win = Recorder({"E": ["v", "s"]}), Recorder({"E": ["v", "s"]}, start=start, stop=stop)
    net = if_net()
    net.run({"E": drive(T, 1, [13.0, 6.5, 1.0])}, recorders=[full, win])
    assert win.get("E", "v").shape == (length, 1, 3)
    end = T if stop is None else min(stop, T)
    assert torch.equal(win.get("E", "v"), full.get("E", "v")[start:end])
    assert torch.equal(win.get("E", "s"), full.get("E", "s")[start:end])


def test_slow_state_recording_shape():
    """diehl_cook theta is [n] (batch-shared): recorded as [T, n]."""
    net = Network()
    net.add_population("E", "diehl_cook", n=2, one_spike=False, refrac_ms=0.0, theta_plus_mv=1.0, tau_theta_ms=1e9)
    rec = Recorder({"E": ["theta"]})
    x = torch.zeros(3, 1, 2)
    x[1, 0, 0] = 1000.0
    net.run({"E": x}, recorders=[rec])
    th = rec.get("E", "theta")
    assert th.shape == (3, 2)
    assert th[:, 0].tolist() == [0.0, 1.0, 1.0] and th[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_unknown_population_or_variable_rejected():
    net = if_net()
    x = drive(2, 1, [0.0, 0.0, 0.0])
    with pytest.raises(KeyError):
        net.run({"E": x}, recorders=[Recorder({"Z": ["s"]})])
    with pytest.raises(KeyError):
        net.run({"E": x}, recorders=[Recorder({"E": ["nope"]})])


def test_spike_counter_matches_recorded_spikes_and_resets_per_run():
    """SpikeCounter counts = recorded spikes summed over time, per sample and neuron, and start
    from zero at every run.  Hand numbers for B = 2, T = 10: I = 13 -> 10 spikes, 6.5 -> 5, 1 -> 0."""
    net = if_net()
    rec, cnt = Recorder({"E": ["s"]}), SpikeCounter(["E"])
    x = drive(10, 2, [13.0, 6.5, 1.0])
    net.run({"E": x}, recorders=[rec, cnt])
    counts = cnt.get("E")
    assert counts.dtype == torch.int32
    assert torch.equal(counts, rec.get("E", "s").sum(0).to(torch.int32))
    assert counts.tolist() == [[10, 5, 0], [10, 5, 0]]
    net.run({"E": x}, recorders=[rec, cnt], reset=True)
    assert cnt["E"] is counts
    assert counts.tolist() == [[10, 5, 0], [10, 5, 0]]
