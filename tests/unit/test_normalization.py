"""Weight normalisation (``norm``): after ``net.normalize()`` the incoming weights of every
target neuron sum to ``norm``; ``w_ij <- w_ij * norm / sum_i w_ij`` keeps their ratios.
A neuron whose incoming weights are all zero stays all-zero (no division by zero)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnrun.core import Network


def make(kind: str, n_pre: int, n_post: int, norm: float, **kw) -> Network:
    net = Network()
    net.add_population("X", "input", n=n_pre)
    net.add_population("E", "lif", n=n_post)
    net.add_connection("XE", "X", "E", kind, weight={"dist": "uniform", "low": 0.0, "high": 1.0}, norm=norm, **kw)
    return net


def test_dense_columns_sum_to_norm_and_keep_ratios():
    net = make("dense", 7, 5, norm=3.5)
    w = net.weights("XE")
    w[:, 4] = 0.0  # a target with no input weight
    before = w.clone()
    net.normalize()
    sums = w.sum(0)
    torch.testing.assert_close(sums[:4], torch.full((4,), 3.5), rtol=1e-6, atol=0)
    assert torch.all(w[:, 4] == 0) and torch.isfinite(w).all()
    # ratios within a column preserved: w_ij / w_kj unchanged, i.e. w = before * (3.5 / before_sum)
    torch.testing.assert_close(w[:, :4], before[:, :4] * (3.5 / before[:, :4].sum(0)), rtol=1e-6, atol=0)
    # idempotent
    again = w.clone()
    net.normalize()
    torch.testing.assert_close(w, again, rtol=1e-6, atol=0)


def test_dense_all_but_self_mask_normalised():
    """Recurrent inhibition-style mask: diagonal stays 0, off-diagonal column sums = norm."""
    net = Network()
    net.add_population("E", "lif", n=4)
    net.add_connection("EE", "E", "E", "dense", weight={"dist": "uniform", "low": 0.1, "high": 1.0}, mask="all_but_self", norm=2.0)
    net.normalize()
    w = net.weights("EE")
    assert torch.all(torch.diagonal(w) == 0)
    torch.testing.assert_close(w.sum(0), torch.full((4,), 2.0), rtol=1e-6, atol=0)


def test_one_to_one_each_target_gets_norm():
    """one_to_one: a target has a single incoming weight, so after normalisation it equals norm
    (zero weights stay zero)."""
    net = make("one_to_one", 5, 5, norm=0.8)
    net.weights("XE")[2] = 0.0
    net.normalize()
    torch.testing.assert_close(net.weights("XE"), torch.tensor([0.8, 0.8, 0.0, 0.8, 0.8]), rtol=1e-6, atol=0)


def test_normalisation_applied_after_learning_run_only():
    """net.run normalises after the run when learning is on (Diehl & Cook's per-sample norm),
    and leaves weights alone in test mode; connections without norm are untouched."""
    net = make("dense", 6, 3, norm=1.5)
    net.add_population("F", "lif", n=2)
    net.add_connection("XF", "X", "F", "dense", weight=0.25)
    x = torch.zeros(3, 1, 6)
    net.eval()
    net.run({"X": x})
    assert not torch.allclose(net.weights("XE").sum(0), torch.full((3,), 1.5))
    net.train()
    net.run({"X": x})
    torch.testing.assert_close(net.weights("XE").sum(0), torch.full((3,), 1.5), rtol=1e-6, atol=0)
    assert torch.all(net.weights("XF") == 0.25)


def test_sum_preserved_through_plasticity():
    """With post_pre learning changing weights, the per-neuron sums after the run are still norm."""
    net = Network()
    net.add_population("X", "input", n=8)
    net.add_population("E", "mcculloch_pitts", n=3, v_thresh_mv=1.0)
    net.add_connection("XE", "X", "E", "dense", weight={"dist": "uniform", "low": 0.0, "high": 0.1}, wmin=0.0, wmax=1.0, norm=0.6,
                       learning={"kind": "post_pre", "nu_pre": 1e-3, "nu_post": 5e-2})
    g = torch.Generator().manual_seed(1)
    x = torch.rand(50, 1, 8, generator=g) < 0.2
    cur = (torch.rand(50, 1, 3, generator=g) < 0.2).float()
    before = net.weights("XE").clone()
    net.run({"X": x, "E": cur})
    w = net.weights("XE")
    assert not torch.allclose(w / w.sum(0), before / before.sum(0))  # learning did change the profile
    torch.testing.assert_close(w.sum(0), torch.full((3,), 0.6), rtol=1e-5, atol=0)


# ----------------------------------------------------------------- conv2d / local / sparse
def shaped_net(kind: str, src_shape, tgt_shape, norm: float, **kw) -> Network:
    net = Network()
    net.add_population("X", "input", shape=list(src_shape))
    net.add_population("E", "lif", shape=list(tgt_shape))
    net.add_connection("XE", "X", "E", kind, weight={"dist": "uniform", "low": 0.1, "high": 1.0}, norm=norm,
                       generator=torch.Generator().manual_seed(7), **kw)
    return net


def test_conv2d_kernel_sums_to_norm():
    """conv2d normalises each output channel's kernel (shared weights): w[co].sum() = norm.
    Without padding every target neuron sees the whole kernel, so its incoming weights in the
    equivalent dense matrix also sum to norm."""
    net = shaped_net("conv2d", (2, 6, 6), (3, 4, 4), norm=1.7, kernel_size=3)
    net.normalize()
    conn = net.connections["XE"]
    torch.testing.assert_close(conn.w.sum((1, 2, 3)), torch.full((3,), 1.7), rtol=1e-5, atol=0)
    torch.testing.assert_close(conn.dense_weights().sum(0), torch.full((3 * 16,), 1.7), rtol=1e-5, atol=0)
    # with zero padding the kernel sum is still norm (border neurons see part of it)
    net = shaped_net("conv2d", (1, 5, 5), (2, 5, 5), norm=0.9, kernel_size=3, padding=1)
    net.normalize()
    torch.testing.assert_close(net.connections["XE"].w.sum((1, 2, 3)), torch.full((2,), 0.9), rtol=1e-5, atol=0)


@pytest.mark.parametrize("padding,stride,tgt", [(0, 1, (2, 3, 3)), (1, 2, (2, 3, 3))])
def test_local_every_target_neuron_sums_to_norm(padding, stride, tgt):
    """local: unshared kernels, so every target neuron (co, y, x) has its own incoming weights;
    after normalisation each column of the equivalent dense matrix sums to norm, and weights
    that would read the zero padding stay exactly 0."""
    net = shaped_net("local", (2, 5, 5), tgt, norm=2.5, kernel_size=3, stride=stride, padding=padding)
    conn = net.connections["XE"]
    net.normalize()
    n_post = 2 * 9
    torch.testing.assert_close(conn.dense_weights().sum(0), torch.full((n_post,), 2.5), rtol=1e-5, atol=0)
    if padding:
        assert conn.mask is not None
        assert torch.all(conn.w[conn.mask.expand_as(conn.w) == 0] == 0)


def test_sparse_every_connected_target_sums_to_norm():
    """sparse: targets with at least one synapse get incoming sum = norm; unconnected ones 0."""
    net = shaped_net("sparse", (20,), (10,), norm=1.2, density=0.2)
    conn = net.connections["XE"]
    net.normalize()
    dense = conn.dense_weights()
    has = torch.bincount(conn.cols, minlength=10) > 0
    assert has.sum() >= 5
    torch.testing.assert_close(dense.sum(0)[has], torch.full((int(has.sum()),), 1.2), rtol=1e-5, atol=0)
    assert torch.all(dense.sum(0)[~has] == 0)


@pytest.mark.parametrize("kind,n_post,strided", [("dense", 9, False), ("one_to_one", 30, False), ("dense", 9, True)])
def test_normalisation_is_bit_for_bit_w_times_norm_over_sums(kind, n_post, strided):
    """The scale is torch's ``norm / sums`` (a reciprocal, then a product) to the last bit,
    in numpy (contiguous CPU weights) as in torch (the rest): runs recorded before stay
    reproducible."""
    net = make(kind, 30 if kind == "one_to_one" else 784, n_post, norm=78.0)
    conn = net.connections["XE"]
    if strided:  # not contiguous: the torch path
        conn.w = conn.w.t().contiguous().t()
        assert not conn.w.is_contiguous()
    w = conn.w
    w.mul_(torch.rand(w.shape, generator=torch.Generator().manual_seed(3)) * 0.37)
    if kind == "dense" and not strided:  # contiguous CPU weights: the rows added in order (a running sum)
        sums = torch.from_numpy(np.add.accumulate(w.numpy(), axis=0)[-1:])
    else:
        sums = w.sum(0, keepdim=True) if kind == "dense" else w
    expect = w * (78.0 / torch.where(sums == 0, torch.ones_like(sums), sums))
    net.normalize()
    assert torch.equal(w, expect)


@pytest.mark.parametrize("n_post", [1, 2, 5, 100])
def test_dense_sums_add_the_rows_in_order(n_post):
    """CPU float32 weights sum as ``((w0 + w1) + w2) + ...`` (the fused kernel's order).
    A column ``[2^25, 1 (eight times), -2^25]`` sums to 0 in that order: float32's spacing
    at 2^25 is 4, so each 1 is lost.  Orders that group the ones keep some: numpy's pairwise
    sum along one column gives 4, torch's (partial sums four rows apart) 6 or 7."""
    net = make("dense", 10, n_post, norm=1.0)
    conn = net.connections["XE"]
    conn.w.copy_(torch.tensor([2.0 ** 25] + [1.0] * 8 + [-(2.0 ** 25)])[:, None].expand(10, n_post))
    assert torch.equal(conn.incoming_sums(), torch.zeros(1, n_post))
