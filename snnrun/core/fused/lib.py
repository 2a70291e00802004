"""The fused backend's generic building blocks: spike lists, propagation, delay lines, the
ahead-of-time input pass, Bernoulli input.  Numba functions compiled once per installation
for the array types they meet (cached on disk) and called from a network's kernel through
function pointers, so a new network compiles none of them again.

This file is not imported: :func:`snnrun.core.fused.loader.library` compiles its text,
preceded by the counter-based RNG functions of :mod:`snnrun.core.models.rng` (``mix``,
``step_key``, ``site_key``, ``draw``, jitted from the very same Python source), as a module
named by the hash of both texts, so numba's disk cache never serves code older than either.

Shapes: spikes ``s [B, n]`` (bool), spike lists ``idx [B, n]`` / ``cnt [B]`` (int32),
dense weights ``w [n_pre, n_post]``, currents ``out [B, n_post]`` (float32).
"""

import numpy as np
from numba import njit, prange

OPTS = dict(cache=True, nogil=True)


@njit(**OPTS)
def spike_list(s, idx, cnt):
    """``idx[b, :cnt[b]]``: the neurons spiking in ``s[b]``, ascending."""
    for b in range(s.shape[0]):
        c = 0
        for j in range(s.shape[1]):
            if s[b, j]:
                idx[b, c] = j
                c += 1
        cnt[b] = c


@njit(**OPTS)
def prop_rows(idx, cnt, w, out):
    """Dense: add the weight row of every spiking presynaptic neuron."""
    n = w.shape[1]
    for b in range(cnt.shape[0]):
        for q in range(cnt[b]):
            i = idx[b, q]
            for j in range(n):
                out[b, j] += w[i, j]


@njit(cache=True, nogil=True, parallel=True)
def prop_rows_par(idx, cnt, w, out, acc):
    """Dense, large: post neurons split into one chunk per thread (``acc [threads, chunk]``)."""
    n = w.shape[1]
    nthreads, chunk = acc.shape
    for b in range(cnt.shape[0]):
        for ch in prange(nthreads):
            j0 = ch * chunk
            j1 = min(j0 + chunk, n)
            a = acc[ch, :max(j1 - j0, 0)]
            a[:] = 0.0
            for q in range(cnt[b]):
                row = w[idx[b, q], j0:j1]
                for j in range(j1 - j0):
                    a[j] += row[j]
            for j in range(j1 - j0):
                out[b, j0 + j] += a[j]


@njit(**OPTS)
def prop_diag(idx, cnt, w, out):
    """One-to-one: neuron i drives neuron i with weight ``w[i]``."""
    for b in range(cnt.shape[0]):
        for q in range(cnt[b]):
            i = idx[b, q]
            out[b, i] += w[i]


@njit(**OPTS)
def add_bias(bias, out):
    for b in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[b, j] += bias[j]


@njit(**OPTS)
def ring_lists(ring, ridx, rcnt):
    """Spike lists of every slot of a delay line ``ring [L, B, n]``."""
    for slot in range(ring.shape[0]):
        for b in range(ring.shape[1]):
            c = 0
            for i in range(ring.shape[2]):
                if ring[slot, b, i]:
                    ridx[slot, b, c] = i
                    c += 1
            rcnt[slot, b] = c


@njit(**OPTS)
def ring_push(ring, ridx, rcnt, pos, idx, cnt):
    """Write this step's spikes into slot ``pos[0]`` of the delay line."""
    p = pos[0]
    for b in range(cnt.shape[0]):
        ring[p, b, :] = False
        for q in range(cnt[b]):
            ring[p, b, idx[b, q]] = True
            ridx[p, b, q] = idx[b, q]
        rcnt[p, b] = cnt[b]


@njit(**OPTS)
def prop_ring_rows(ridx, rcnt, pos, w, out):
    """Uniform delay, dense: advance ``pos`` and propagate the slot now due."""
    L = ridx.shape[0]
    p = (pos[0] + 1) % L
    pos[0] = p
    for b in range(rcnt.shape[1]):
        for q in range(rcnt[p, b]):
            i = ridx[p, b, q]
            for j in range(w.shape[1]):
                out[b, j] += w[i, j]


@njit(**OPTS)
def prop_ring_diag(ridx, rcnt, pos, w, out):
    """Uniform delay, one-to-one: advance ``pos`` and propagate the slot now due."""
    L = ridx.shape[0]
    p = (pos[0] + 1) % L
    pos[0] = p
    for b in range(rcnt.shape[1]):
        for q in range(rcnt[p, b]):
            i = ridx[p, b, q]
            out[b, i] += w[i]


@njit(**OPTS)
def prop_delays(ridx, rcnt, pos, dptr, dcol, w, out):
    """Per-synapse delays: synapses grouped by (pre neuron i, delay d) -> post neurons
    ``dcol[dptr[i L + d]:dptr[i L + d + 1]]``; the slot written d steps ago feeds delay d."""
    L = ridx.shape[0]
    p0 = pos[0]
    for b in range(rcnt.shape[1]):
        for d in range(L):
            slot = (p0 - d) % L
            for q in range(rcnt[slot, b]):
                i = ridx[slot, b, q]
                base = i * L + d
                for jj in range(dptr[base], dptr[base + 1]):
                    j = dcol[jj]
                    out[b, j] += w[i, j]
    pos[0] = (p0 + 1) % L


@njit(**OPTS)
def prop_patch(idx, cnt, ptr, ep, el, w, out, c_out, P, shared):
    """conv2d (``shared``: kernel entry p of channel co at ``co P + p``) or local (``(l P + p)
    c_out + co``): each spike adds its entries to the c_out neurons of every position whose
    patch holds it (``L = n_post / c_out`` positions)."""
    L = out.shape[1] // c_out
    for b in range(cnt.shape[0]):
        for q in range(cnt[b]):
            i = idx[b, q]
            for e in range(ptr[i], ptr[i + 1]):
                p = ep[e]
                l = el[e]
                for co in range(c_out):
                    f = co * P + p if shared else (l * P + p) * c_out + co
                    out[b, co * L + l] += w[f]


@njit(**OPTS)
def bernoulli_fill(thr, gen, seed, stream, b0):
    """``gen[t, b, j] = draw < thr[b, j]`` (models.rng): Bernoulli input spikes."""
    T = gen.shape[0]
    for b in range(thr.shape[0]):
        for j in range(thr.shape[1]):
            p = thr[b, j]
            if p <= 0:
                for t in range(T):
                    gen[t, b, j] = False
                continue
            for t in range(T):
                gen[t, b, j] = draw(step_key(seed, stream, t), site_key(b0 + b, j)) < p  # noqa: F821 (prepended)


@njit(cache=True, nogil=True, parallel=True)
def prepass(x, idx, cnt, w, cur, tile):
    """A static dense layer from an input population, for a whole presentation ahead of the
    time loop: ``cur[tile, b, t, :]`` = the currents of step t (spikes of step t-1; step 0
    gets the spikes carried over, ``idx/cnt``), each weight row read once and added to every
    step its neuron fires in, tile by tile of post neurons.  Rows are added in ascending
    presynaptic order, as step by step, so the currents are bit-identical."""
    n_pre, n_post = w.shape
    T = x.shape[0]
    NT = cur.shape[0]
    for b in range(x.shape[1]):
        ptr = np.zeros(n_pre + 1, np.int64)
        for t in range(T - 1):
            for i in range(n_pre):
                if x[t, b, i]:
                    ptr[i + 1] += 1
        for i in range(n_pre):
            ptr[i + 1] += ptr[i]
        when = np.empty(ptr[n_pre], np.int32)
        fill = ptr[:n_pre].copy()
        for t in range(T - 1):
            for i in range(n_pre):
                if x[t, b, i]:
                    when[fill[i]] = t + 1
                    fill[i] += 1
        for k in prange(NT):
            j0 = k * tile
            width = min(tile, n_post - j0)
            acc = cur[k, b]
            for q in range(cnt[b]):
                row = w[idx[b, q], j0:j0 + width]
                for jj in range(width):
                    acc[0, jj] += row[jj]
            for i in range(n_pre):
                if ptr[i + 1] > ptr[i]:
                    row = w[i, j0:j0 + width]
                    for e in range(ptr[i], ptr[i + 1]):
                        a = acc[when[e]]
                        for jj in range(width):
                            a[jj] += row[jj]


@njit(**OPTS)
def prepass_add(cur, t, out):
    """Add step t's precomputed currents."""
    tile = cur.shape[3]
    n = out.shape[1]
    for b in range(out.shape[0]):
        for k in range(cur.shape[0]):
            j0 = k * tile
            for jj in range(min(tile, n - j0)):
                out[b, j0 + jj] += cur[k, b, t, jj]


@njit(**OPTS)
def count_spikes(idx, cnt, count):
    for b in range(cnt.shape[0]):
        for q in range(cnt[b]):
            count[b, idx[b, q]] += 1
