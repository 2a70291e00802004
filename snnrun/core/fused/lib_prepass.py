"""The fused backend's ahead-of-time passes (part of the library of ``lib.py``, compiled
with it; not imported): a static input layer that does not learn has its currents for a
whole presentation computed before the time loop, from the input's spike raster -- dense
(``prepass``, tile by tile of post neurons, in parallel) or with per-synapse delays
(``prepass_delays``) -- and each step adds its row (``prepass_add``).  The additions come in
the per-step order, so the currents are bit-identical.
"""

import numpy as np
from numba import njit, prange

from snnrun.core.fused.fnptr import view

OPTS = dict(cache=True, nogil=True, error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(parallel=True, **OPTS)
def prepass(t, learning, seed, b0, b1, P, S, I, a):
    """[xin u8_3, idx, cnt, w, cur f32_4]: a static dense layer from an input population for
    a whole presentation ahead of the time loop: ``cur[tile, b, t, :]`` the currents of step t
    (spikes of step t-1; step 0 gets the spikes carried over, idx/cnt), each weight row read
    once and added to every step its neuron fires in, tile by tile of post neurons.  Rows are
    added in ascending presynaptic order, as step by step: the currents are bit-identical."""
    x, idx, cnt = view(P, S, a[0], "u8_3"), view(P, S, a[1], "i32_2"), view(P, S, a[2], "i32_1")
    w, cur = view(P, S, a[3], "f32_2"), view(P, S, a[4], "f32_4")
    n_pre, n_post = w.shape
    T = x.shape[0]
    NT, tile = cur.shape[0], cur.shape[3]
    for b in range(b0, b1):
        ptr = np.zeros(n_pre + 1, np.int64)
        for tt in range(T - 1):
            for i in range(n_pre):
                if x[tt, b, i]:
                    ptr[i + 1] += 1
        for i in range(n_pre):
            ptr[i + 1] += ptr[i]
        when = np.empty(ptr[n_pre], np.int32)
        fill = ptr[:n_pre].copy()
        for tt in range(T - 1):
            for i in range(n_pre):
                if x[tt, b, i]:
                    when[fill[i]] = tt + 1
                    fill[i] += 1
        for k in prange(NT):
            j0 = k * tile
            width = min(tile, n_post - j0)
            acc = cur[k, b]
            acc[:, :] = 0.0
            for q in range(cnt[b]):
                row = w[idx[b, q], j0:j0 + width]
                for jj in range(width):
                    acc[0, jj] += row[jj]
            for i in range(n_pre):
                if ptr[i + 1] > ptr[i]:
                    row = w[i, j0:j0 + width]
                    for e in range(ptr[i], ptr[i + 1]):
                        r = acc[when[e]]
                        for jj in range(width):
                            r[jj] += row[jj]


@njit(**OPTS)
def prepass_delays(t, learning, seed, b0, b1, P, S, I, a):
    """[xin u8_3, idx, cnt, ridx, rcnt, dl u8_2, w, cur f32_4; int pos0]: a static input layer
    with per-synapse delays ahead of the loop: ``cur[tile, b, t, :]`` the currents arriving at
    step t from the spikes pushed into the delay line at step u (u < 0: the line's slots
    carried over; u = 0: the spikes carried over, idx/cnt; u > 0: the input's spikes of step
    u - 1, found eight pixels at a time), each arriving at u + dl[i, j].  Push steps run
    latest first, spikes ascending: per step and neuron the additions come in
    prop_delays_rows' order (age ascending, then spike), so the currents are bit-identical."""
    x, idx, cnt = view(P, S, a[0], "u8_3"), view(P, S, a[1], "i32_2"), view(P, S, a[2], "i32_1")
    ridx, rcnt = view(P, S, a[3], "i32_3"), view(P, S, a[4], "i32_2")
    dl, w, cur = view(P, S, a[5], "u8_2"), view(P, S, a[6], "f32_2"), view(P, S, a[7], "f32_4")
    L = ridx.shape[0]
    T = x.shape[0]
    n_pre, n_post = w.shape
    tile = cur.shape[3]
    spikes = np.empty(n_pre, np.int32)
    n8 = n_pre // 8
    for b in range(b0, b1):
        cur[:, b, :, :] = 0.0
        for u in range(T - 1, -L, -1):
            n = 0
            if u >= 1:
                row = x[u - 1, b]
                words = row[:n8 * 8].view(np.uint64)
                for m in range(n8):
                    if words[m] != 0:
                        for i in range(8 * m, 8 * m + 8):
                            if row[i]:
                                spikes[n] = i
                                n += 1
                for i in range(8 * n8, n_pre):
                    if row[i]:
                        spikes[n] = i
                        n += 1
            elif u == 0:
                for q in range(cnt[b]):
                    spikes[q] = idx[b, q]
                n = cnt[b]
            else:
                slot = (I[a[8]] + u) % L
                for q in range(rcnt[slot, b]):
                    spikes[q] = ridx[slot, b, q]
                n = rcnt[slot, b]
            for q in range(n):
                i = spikes[q]
                for k in range(cur.shape[0]):
                    j0 = k * tile
                    ck = cur[k, b]
                    for jj in range(min(tile, n_post - j0)):
                        tt = u + np.int64(dl[i, j0 + jj])
                        if 0 <= tt < T:
                            ck[tt, jj] += w[i, j0 + jj]


@njit(**OPTS)
def prepass_add(t, learning, seed, b0, b1, P, S, I, a):
    """[cur f32_4, out]: add step t's precomputed currents."""
    cur, out = view(P, S, a[0], "f32_4"), view(P, S, a[1], "f32_2")
    tile = cur.shape[3]
    n = out.shape[1]
    for b in range(b0, b1):
        for k in range(cur.shape[0]):
            j0 = k * tile
            for jj in range(min(tile, n - j0)):
                out[b, j0 + jj] += cur[k, b, t, jj]
