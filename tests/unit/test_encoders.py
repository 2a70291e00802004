"""Encoders: output shapes/dtypes and statistics against their definitions."""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.core import ENCODERS


def make(kind: str, dt: float = 1.0, **params):
    entry = ENCODERS.get(kind)
    return entry.factory(entry.params(**params), dt=dt)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_poisson_mean_rate_within_binomial_tolerance(dt):
    """value 50 with intensity 1 -> 50 Hz -> p = 50 dt / 1000 per step.  Over N = T B n draws
    the spike fraction has std sqrt(p (1 - p) / N); require |p_hat - p| < 4 std, per neuron
    (N = T B) as well as overall.  A value 0 must never spike."""
    T_ms, B = 10000.0, 4
    enc = make("poisson", dt, time_ms=T_ms, intensity=1.0)
    x = torch.tensor([[50.0, 50.0, 0.0, 20.0]]).expand(B, 4)
    g = torch.Generator().manual_seed(1234)
    s = enc(x, generator=g)
    T = round(T_ms / dt)
    assert s.shape == (T, B, 4) and s.dtype == torch.bool
    assert not s[:, :, 2].any()
    for j, rate in ((0, 50.0), (1, 50.0), (3, 20.0)):
        p = rate * dt / 1000.0
        N = T * B
        p_hat = s[:, :, j].double().mean().item()
        assert abs(p_hat - p) < 4 * math.sqrt(p * (1 - p) / N), (j, p_hat, p)
        # in Hz: spikes / (B * duration in s)
        hz = s[:, :, j].sum().item() / (B * T_ms / 1000.0)
        assert abs(hz - rate) < 4 * math.sqrt(p * (1 - p) / N) * 1000.0 / dt
    # the 50 Hz and 20 Hz neurons are clearly distinguished (would fail if value were ignored)
    assert s[:, :, 0].sum() > 2 * s[:, :, 3].sum()


def test_poisson_intensity_and_errors():
    """Default intensity 128: value 1 -> 128 Hz (p = 0.128 at dt = 1); rates above 1000/dt Hz
    clamp to p = 1 (a spike every step); negative or non-finite values are rejected."""
    enc = make("poisson", time_ms=5000.0)
    s = enc(torch.ones(2, 3), generator=torch.Generator().manual_seed(0))
    p, N = 0.128, s.numel()
    assert abs(s.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / N)
    assert make("poisson", time_ms=10.0, intensity=1.0)(torch.full((1, 2), 5000.0)).all()
    with pytest.raises(ValueError):
        enc(torch.tensor([[-1.0]]))
    with pytest.raises(ValueError):
        enc(torch.tensor([[float("nan")]]))


def test_bernoulli_probability():
    """p = value * max_prob per step: 0.6 * 0.5 = 0.3; value 0 -> never; value 1 with max_prob 1 -> always."""
    T = 20000
    s = make("bernoulli", time_ms=float(T), max_prob=0.5)(torch.tensor([[0.6, 0.0, 1.0]]), generator=torch.Generator().manual_seed(3))
    assert s.shape == (T, 1, 3) and s.dtype == torch.bool
    for j, p in ((0, 0.3), (2, 0.5)):
        assert abs(s[:, 0, j].double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / T)
    assert not s[:, 0, 1].any()
    assert make("bernoulli", time_ms=50.0)(torch.ones(2, 2)).all()


def test_rank_order_times_by_hand():
    """T = 11 steps; t = round((1 - v / max) * (T - 1)) per sample:
    sample 0 values [1.0, 0.8, 0.5, 0.2, 0.0, -0.3] -> times 0, 2, 5, 8, never, never.
    sample 1 is sample 0 scaled by 0.1 -> same times (per-sample max).
    sample 2 all zero -> no spike at all."""
    enc = make("rank_order", time_ms=11.0)
    v = torch.tensor([1.0, 0.8, 0.5, 0.2, 0.0, -0.3])
    x = torch.stack([v, 0.1 * v, torch.zeros(6)])
    s = enc(x)
    assert s.shape == (11, 3, 6) and s.dtype == torch.bool
    counts = s.sum(0)
    assert counts[:2].tolist() == [[1, 1, 1, 1, 0, 0]] * 2
    assert counts[2].sum() == 0
    for b in range(2):
        times = [torch.nonzero(s[:, b, j]).item() for j in range(4)]
        assert times == [0, 2, 5, 8]


def test_rank_order_larger_spikes_earlier_random():
    """Random positive inputs: every positive input spikes exactly once, zeros never, and the
    spike order is the value order (t_i < t_j whenever v_i > v_j, up to ties in rounding)."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 2, 5, generator=g)
    x[x < 0.2] = 0.0
    s = make("rank_order", time_ms=100.0)(x)
    assert s.shape == (100, 4, 2, 5)
    assert torch.equal(s.sum(0), (x > 0).long())
    t = s.float().argmax(0).reshape(4, -1)
    v = x.reshape(4, -1)
    for b in range(4):
        pos = v[b] > 0
        vb, tb = v[b][pos], t[b][pos]
        order = torch.argsort(vb, descending=True)
        assert torch.all(torch.diff(tb[order]) >= 0)
        assert tb[order[0]] == 0


def test_repeat_and_single():
    """repeat: the value itself at every step (float); single: one spike at step 0 where value > threshold."""
    x = torch.tensor([[0.5, -2.0, 3.0]])
    r = make("repeat", time_ms=7.0)(x)
    assert r.shape == (7, 1, 3) and r.dtype == torch.float32
    assert torch.equal(r, x.expand(7, 1, 3))
    s = make("single", dt=0.5, time_ms=5.0, threshold=0.4)(x)
    assert s.shape == (10, 1, 3) and s.dtype == torch.bool
    assert s[0, 0].tolist() == [True, False, True]
    assert not s[1:].any()


def test_bernoulli_train_probabilities_by_hand():
    """poisson / bernoulli describe their train as per-step probabilities:
    poisson p = value * intensity * dt / 1000 (clamped to 1): 50 * 2 * 0.5 / 1000 = 0.05, 0 -> 0,
    20000 -> 20 -> 1; bernoulli p = value * max_prob clamped to [0, 1]."""
    tr = make("poisson", dt=0.5, time_ms=30.0, intensity=2.0).train(torch.tensor([[50.0, 0.0, 20000.0]]))
    assert tr.n_steps == 60
    torch.testing.assert_close(tr.prob, torch.tensor([[0.05, 0.0, 1.0]]))
    tr = make("bernoulli", time_ms=4.0, max_prob=0.5).train(torch.tensor([[0.6, 0.0, 3.0]]))
    assert tr.n_steps == 4
    torch.testing.assert_close(tr.prob, torch.tensor([[0.3, 0.0, 1.0]]))
    assert make("rank_order", time_ms=4.0).train(torch.ones(1, 2)) is None
