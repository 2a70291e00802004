"""Equivalence of the structured connection kinds (conv2d, local, sparse) with dense ones.

Every kind must act exactly like a ``dense`` connection whose weights are its
``dense_weights()``: the same currents, the same spikes in a network run, and -- where
the weights are not shared (local, sparse) -- the same weights under learning.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from snnrun.core import Network, ParamError, Recorder

LIF = dict(tau_mem_ms=20.0, refrac_ms=2.0)


# (C_in, H, W, C_out, kernel_size, stride, padding)
GEOMETRIES = [
    (1, 6, 6, 2, 3, 1, 0),
    (2, 7, 7, 3, 3, 2, 1),   # stride 2 with padding
    (2, 5, 6, 2, 2, 2, 0),   # non-square source, even kernel
]


def out_hw(h, w, k, stride, padding):
    return (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1


def spikes(shape, p=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < p


def twin_network(kind, geometry, weight, seed=0, dt=1.0, learning=None, **params):
    """in [C_in, H, W] -> a (structured ``kind``) and -> b (dense with a's dense weights)."""
    c_in, h, w, c_out, k, stride, padding = geometry
    ho, wo = out_hw(h, w, k, stride, padding)
    net = Network(dt_ms=dt)
    net.add_population("in", "input", shape=[c_in, h, w])
    net.add_population("a", "lif", shape=[c_out, ho, wo], **LIF)
    net.add_population("b", "lif", shape=[c_out, ho, wo], **LIF)
    gen = torch.Generator().manual_seed(seed)
    a = net.add_connection("a", "in", "a", kind, kernel_size=k, stride=stride, padding=padding, weight=weight,
                           generator=gen, learning=learning, **params)
    b = net.add_connection("b", "in", "b", "dense", weight=0.0, learning=learning, **params)
    b.w.copy_(a.dense_weights())
    return net, a, b


@pytest.mark.parametrize("kind", ["conv2d", "local"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_currents_equal_dense(kind, geometry):
    net, a, b = twin_network(kind, geometry, {"dist": "normal"})
    s = spikes((5, *a.source.shape)).float()
    ia, ib = a.compute(s), b.compute(s)
    assert ia.shape == (5, *a.target.shape)
    torch.testing.assert_close(ia, ib, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["conv2d", "local"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_network_run_equals_dense(kind, geometry):
    net, a, b = twin_network(kind, geometry, {"low": 0.0, "high": 4.0})
    x = spikes((50, 2, *a.source.shape), p=0.3, seed=1)
    rec = Recorder({"a": ["s", "v"], "b": ["s", "v"]})
    net.run({"in": x}, recorders=[rec])
    assert rec.get("a", "s").sum() > 20, "test needs target spikes"
    assert torch.equal(rec.get("a", "s"), rec.get("b", "s"))
    torch.testing.assert_close(rec.get("a", "v"), rec.get("b", "v"), atol=1e-4, rtol=0)


def test_conv_dense_weights_by_identity_basis():
    """dense_weights() row i is the conv's response to a single spike at source neuron i."""
    net, a, _ = twin_network("conv2d", GEOMETRIES[1], {"dist": "normal"})
    eye = torch.eye(a.source.n).view(a.source.n, *a.source.shape)
    torch.testing.assert_close(a.dense_weights(), a.compute(eye).reshape(a.source.n, -1))


@pytest.mark.parametrize("kind", ["conv2d", "local"])
def test_shape_mismatch_raises(kind):
    net = Network()
    net.add_population("in", "input", shape=[2, 8, 8])
    net.add_population("bad", "lif", shape=[4, 4, 4])   # k=3, stride 1 needs [4, 6, 6]
    net.add_population("flat", "lif", n=36)
    for target in ("bad", "flat"):
        with pytest.raises(ParamError, match=r"expected shape \[.*6, 6\] from conv arithmetic") as err:
            net.add_connection(target, "in", target, kind, kernel_size=3)
        assert err.value.field == "target"
    net.add_population("flat_in", "input", n=64)
    with pytest.raises(ParamError) as err:
        net.add_connection("x", "flat_in", "bad", kind, kernel_size=3)
    assert err.value.field == "source"


def test_conv_out_channels_param():
    net = Network()
    net.add_population("in", "input", shape=[1, 6, 6])
    net.add_population("out", "lif", shape=[3, 4, 4])
    assert net.add_connection("ok", "in", "out", "conv2d", kernel_size=3, out_channels=3).w.shape == (3, 1, 3, 3)
    with pytest.raises(ParamError, match=r"\[5, 4, 4\]"):
        net.add_connection("bad", "in", "out", "conv2d", kernel_size=3, out_channels=5)


# ------------------------------------------------------------------ learning

def test_conv_post_pre_equals_brute_force():
    c_in, h, w, c_out, k, stride, pad = 2, 5, 5, 3, 3, 2, 1
    ho, wo = out_hw(h, w, k, stride, pad)
    net = Network()
    net.add_population("in", "input", shape=[c_in, h, w])
    net.add_population("out", "lif", shape=[c_out, ho, wo], **LIF)
    nu_pre, nu_post = 0.1, 0.2
    conv = net.add_connection("c", "in", "out", "conv2d", kernel_size=k, stride=stride, padding=pad,
                              learning={"kind": "post_pre", "nu_pre": nu_pre, "nu_post": nu_post},
                              generator=torch.Generator().manual_seed(0))
    B = 2
    x = spikes((1, B, c_in, h, w), p=0.5, seed=2)
    current = 20.0 * spikes((1, B, c_out, ho, wo), p=0.5, seed=3).float()   # makes half the targets spike
    rec = Recorder({"in": ["s", "x"], "out": ["s", "x"]})
    w0 = conv.w.clone()
    net.run({"in": x, "out": current}, recorders=[rec])
    s_pre, x_pre = rec.get("in", "s")[0].float(), rec.get("in", "x")[0]
    s_post, x_post = rec.get("out", "s")[0].float(), rec.get("out", "x")[0]
    assert 0 < s_post.sum() < s_post.numel()
    dw = torch.zeros_like(w0)
    for b, co, y, xx, ci, ky, kx in itertools.product(range(B), range(c_out), range(ho), range(wo), range(c_in),
                                                      range(k), range(k)):
        iy, ix = y * stride - pad + ky, xx * stride - pad + kx
        if 0 <= iy < h and 0 <= ix < w:
            dw[co, ci, ky, kx] += (nu_post * x_pre[b, ci, iy, ix] * s_post[b, co, y, xx]
                                   - nu_pre * s_pre[b, ci, iy, ix] * x_post[b, co, y, xx])
    assert dw.abs().sum() > 0
    torch.testing.assert_close(conv.w - w0, dw, atol=1e-6, rtol=1e-5)


def test_conv_normalize_per_output_channel():
    net, a, _ = twin_network("conv2d", GEOMETRIES[1], {"low": 0.1, "high": 1.0}, norm=2.5)
    a.normalize()
    torch.testing.assert_close(a.w.sum((1, 2, 3)), torch.full((a.w.shape[0],), 2.5))


def run_learning_pair(net, a, b, steps=100, chunk=10, seed=4, p=0.3):
    """Run ``steps`` with learning in chunks (norm is applied after each chunk)."""
    x = spikes((steps, 2, *a.source.shape), p=p, seed=seed)
    rec = Recorder({"sa": ["s"], "sb": ["s"]})
    n_spikes = 0
    for t0 in range(0, steps, chunk):
        net.run({"in": x[t0:t0 + chunk]}, recorders=[rec])
        assert torch.equal(rec.get("sa", "s"), rec.get("sb", "s"))
        n_spikes += int(rec.get("sa", "s").sum())
        torch.testing.assert_close(a.dense_weights(), b.w, atol=1e-6, rtol=0)
    assert n_spikes > 20, "test needs target spikes"
    return n_spikes


LEARNING_CASES = {
    "plain": dict(learning={"kind": "post_pre", "nu_pre": 1e-2, "nu_post": 2e-2}),
    "clamped": dict(learning={"kind": "post_pre", "nu_pre": 2e-2, "nu_post": 5e-2}, wmin=0.05, wmax=0.6),
    "norm": dict(learning={"kind": "post_pre", "nu_pre": 1e-2, "nu_post": 2e-2}, wmin=0.0, wmax=1.0, norm=4.0),
    "soft_bounds": dict(learning={"kind": "weight_dependent_post_pre", "nu_pre": 5e-2, "nu_post": 5e-2},
                        wmin=0.0, wmax=1.0),
}


def learning_pair(kind, conn_params, extra, source_shape, target_shape):
    net = Network()
    net.add_population("in", "input", shape=list(source_shape))
    net.add_population("sa", "lif", shape=list(target_shape), **LIF)
    net.add_population("sb", "lif", shape=list(target_shape), **LIF)
    a = net.add_connection("a", "in", "sa", kind, weight={"low": 0.0, "high": 0.8},
                           generator=torch.Generator().manual_seed(5), **conn_params, **extra)
    b = net.add_connection("b", "in", "sb", "dense", weight=0.0, **extra)
    # the dense twin learns only where the structured kind has synapses
    b.mask = torch.zeros(a.source.n, a.target.n)
    b.mask[a.dense_weights() != 0] = 1.0
    b.w.copy_(a.dense_weights())
    b.clamp_()
    return net, a, b


@pytest.mark.parametrize("case", list(LEARNING_CASES))
@pytest.mark.parametrize("density", [0.2, 1.0])
def test_sparse_learning_equals_dense(case, density):
    net, a, b = learning_pair("sparse", {"density": density}, LEARNING_CASES[case], (30,), (12,))
    assert a.w.shape == (round(density * 30 * 12),)
    run_learning_pair(net, a, b, p=0.4 if density < 1 else 0.2)
    net.normalize()
    torch.testing.assert_close(a.dense_weights(), b.w, atol=1e-6, rtol=0)
    if "norm" in LEARNING_CASES[case]:
        torch.testing.assert_close(a.dense_weights().sum(0), torch.full((12,), 4.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", ["plain", "clamped", "norm"])
def test_local_learning_equals_dense(case):
    """Unshared kernels learn like a dense connection masked to the local connectivity."""
    geometry = (2, 6, 6, 2, 3, 2, 1)
    ho, wo = out_hw(6, 6, 3, 2, 1)
    params = dict(kernel_size=3, stride=2, padding=1)
    net, a, b = learning_pair("local", params, LEARNING_CASES[case], geometry[:3], (2, ho, wo))
    run_learning_pair(net, a, b, p=0.3)


# ------------------------------------------------------------------ sparse specifics

@pytest.mark.parametrize("density", [0.1, 1.0])
def test_sparse_currents_equal_dense(density):
    net = Network()
    net.add_population("in", "input", shape=[4, 10])
    net.add_population("out", "lif", n=25)
    sp = net.add_connection("s", "in", "out", "sparse", density=density, weight={"dist": "normal"},
                            generator=torch.Generator().manual_seed(0))
    dense = sp.dense_weights()
    assert int((dense != 0).sum()) == sp.w.numel() == round(density * 40 * 25)
    assert sp.indices.shape == (2, sp.w.numel()) and sp.indices.dtype == torch.long
    s = spikes((3, 4, 10), p=0.3).float()
    torch.testing.assert_close(sp.compute(s), s.reshape(3, -1) @ dense, atol=1e-5, rtol=1e-5)
    sums = sp.incoming_sums()
    torch.testing.assert_close(sums, dense.sum(0)[sp.indices[1]])


def test_sparse_state_dict_roundtrip():
    def build(seed):
        net = Network()
        net.add_population("in", "input", n=20)
        net.add_population("out", "lif", n=10)
        net.add_connection("s", "in", "out", "sparse", density=0.3, generator=torch.Generator().manual_seed(seed))
        return net

    src, dst = build(0), build(1)
    state = src.state_dict()
    assert "connections.s.indices" in state
    assert not torch.equal(state["connections.s.indices"], dst.state_dict()["connections.s.indices"])
    dst.load_state_dict(state)
    torch.testing.assert_close(dst.connections["s"].dense_weights(), src.connections["s"].dense_weights())
    for k, v in dst.state_dict().items():
        assert torch.equal(v, state[k]), k
    # shuffled synapse order loads to the same matrix
    perm = torch.randperm(state["connections.s.w"].numel())
    shuffled = dict(state, **{"connections.s.w": state["connections.s.w"][perm],
                              "connections.s.indices": state["connections.s.indices"][:, perm]})
    dst.load_state_dict(shuffled)
    torch.testing.assert_close(dst.connections["s"].dense_weights(), src.connections["s"].dense_weights())


def test_sparse_density_validation():
    net = Network()
    net.add_population("in", "input", n=4)
    net.add_population("out", "lif", n=4)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ParamError) as err:
            net.add_connection(f"s{bad}", "in", "out", "sparse", density=bad)
        assert err.value.field == "density"
