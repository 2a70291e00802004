"""The fused backend's generic building blocks, all with the one signature of ``fnptr``:
spike lists, propagation by connection kind, delay lines, the ahead-of-time pass of static
input layers, Bernoulli input, weight updates -- and ``run``, the loop over the steps of a
presentation that calls a network's pieces through their addresses.  Compiled once per
installation (cached on disk); a new network compiles none of it.

This file is not imported: :func:`snnrun.core.fused.loader.library` compiles its text,
preceded by the counter-based RNG functions of :mod:`snnrun.core.models.rng` (``mix``,
``step_key``, ``site_key``, ``draw``, jitted from the very same Python source), as a module
named by the hash of both texts, so numba's disk cache never serves code older than either.

Weight updates are in ``lib_updates.py``, the ahead-of-time passes in ``lib_prepass.py``
(compiled with this file).  Each function's
docstring lists its slots ``a``: arrays (``view(P, S, a[k], kind)``) and
integers (``I[a[k]]``).  Shapes: spikes ``s [B, n]``, spike lists ``idx [B, n]`` / ``cnt [B]``,
dense weights ``w [n_pre, n_post]``, currents ``out [B, n_post]``; samples ``b0 <= b < b1``.
Delay lines advance with the step: the slot written at step t is ``(pos0 + t) % L``.
"""

import numpy as np
from numba import njit, prange

from snnrun.core.fused.fnptr import call, view

# called only through addresses: no Python or C wrappers to build
OPTS = dict(cache=True, nogil=True, error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(inline="always")
def _calls(c0, c1, t, learning, seed, b0, b1, F, P, S, I, A):
    """Calls c0..c1-1.  The first 16 each get a call instruction of their own, so the
    processor predicts every indirect call's target (one shared site would mispredict)."""
    c = c0
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    if c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1
    while c < c1:
        call(F[c], t, learning, seed, b0, b1, P, S, I, A[c])
        c += 1


@njit(cache=True, nogil=True, error_model="numpy")
def run(T, learning, seed, b0, b1, F, P, S, I, A, n_setup, n_step, n_learn):
    """A presentation: calls ``[0, n_setup)`` once, then every step ``[n_setup, n_setup +
    n_step)`` and, while learning, the next ``n_learn``; after the last step, while
    learning, the rest once (``F``: addresses, ``A[c]``: call c's slots)."""
    n = F.shape[0]
    for c in range(n_setup):
        call(F[c], 0, learning, seed, b0, b1, P, S, I, A[c])
    learned = n_setup + n_step + n_learn
    for t in range(T):
        _calls(n_setup, n_setup + n_step, t, learning, seed, b0, b1, F, P, S, I, A)
        if learning:
            _calls(n_setup + n_step, learned, t, learning, seed, b0, b1, F, P, S, I, A)
    if learning:
        for c in range(learned, n):
            call(F[c], T, learning, seed, b0, b1, P, S, I, A[c])


@njit(**OPTS)
def spike_list(t, learning, seed, b0, b1, P, S, I, a):
    """[s b_2, idx i32_2, cnt i32_1]: ``idx[b, :cnt[b]]`` the neurons spiking in ``s[b]``."""
    s, idx, cnt = view(P, S, a[0], "b_2"), view(P, S, a[1], "i32_2"), view(P, S, a[2], "i32_1")
    for b in range(b0, b1):
        c = 0
        for j in range(s.shape[1]):
            if s[b, j]:
                idx[b, c] = j
                c += 1
        cnt[b] = c


@njit(**OPTS)
def input_step(t, learning, seed, b0, b1, P, S, I, a):
    """[xin u8_3, s b_2, idx i32_2, cnt i32_1]: an input population with nothing but spikes
    (no traces, no counts): ``s[b] = xin[t, b] != 0`` and its list, eight pixels at a time."""
    x, s = view(P, S, a[0], "u8_3"), view(P, S, a[1], "b_2")
    idx, cnt = view(P, S, a[2], "i32_2"), view(P, S, a[3], "i32_1")
    n = s.shape[1]
    n8 = n // 8
    for b in range(b0, b1):
        row = x[t, b]
        words = row[:n8 * 8].view(np.uint64)
        sb = s[b]
        c = 0
        for m in range(n8):
            if words[m] == 0:
                for i in range(8 * m, 8 * m + 8):
                    sb[i] = False
            else:
                for i in range(8 * m, 8 * m + 8):
                    sb[i] = row[i] != 0
                    if sb[i]:
                        idx[b, c] = i
                        c += 1
        for i in range(8 * n8, n):
            sb[i] = row[i] != 0
            if sb[i]:
                idx[b, c] = i
                c += 1
        cnt[b] = c


@njit(**OPTS)
def prop_rows(t, learning, seed, b0, b1, P, S, I, a):
    """[idx, cnt, w f32_2, out f32_2]: dense, the weight row of every spiking neuron."""
    idx, cnt, w, out = view(P, S, a[0], "i32_2"), view(P, S, a[1], "i32_1"), view(P, S, a[2], "f32_2"), view(P, S, a[3], "f32_2")
    n = w.shape[1]
    for b in range(b0, b1):
        for q in range(cnt[b]):
            i = idx[b, q]
            for j in range(n):
                out[b, j] += w[i, j]


@njit(parallel=True, **OPTS)
def prop_rows_par(t, learning, seed, b0, b1, P, S, I, a):
    """[idx, cnt, w, out, acc f32_2]: dense and large, post neurons in one chunk per thread."""
    idx, cnt, w, out = view(P, S, a[0], "i32_2"), view(P, S, a[1], "i32_1"), view(P, S, a[2], "f32_2"), view(P, S, a[3], "f32_2")
    acc = view(P, S, a[4], "f32_2")
    n = w.shape[1]
    nthreads, chunk = acc.shape
    for b in range(b0, b1):
        for ch in prange(nthreads):
            j0 = ch * chunk
            j1 = min(j0 + chunk, n)
            for j in range(j1 - j0):
                acc[ch, j] = 0.0
            for q in range(cnt[b]):
                i = idx[b, q]
                for j in range(j1 - j0):
                    acc[ch, j] += w[i, j0 + j]
            for j in range(j1 - j0):
                out[b, j0 + j] += acc[ch, j]


@njit(**OPTS)
def prop_diag(t, learning, seed, b0, b1, P, S, I, a):
    """[idx, cnt, w f32_1, out]: one-to-one, neuron i drives neuron i with ``w[i]``."""
    idx, cnt, w, out = view(P, S, a[0], "i32_2"), view(P, S, a[1], "i32_1"), view(P, S, a[2], "f32_1"), view(P, S, a[3], "f32_2")
    for b in range(b0, b1):
        for q in range(cnt[b]):
            i = idx[b, q]
            out[b, i] += w[i]


@njit(**OPTS)
def add_bias(t, learning, seed, b0, b1, P, S, I, a):
    """[bias f32_1, out]."""
    bias, out = view(P, S, a[0], "f32_1"), view(P, S, a[1], "f32_2")
    for b in range(b0, b1):
        for j in range(out.shape[1]):
            out[b, j] += bias[j]


@njit(**OPTS)
def ring_lists(t, learning, seed, b0, b1, P, S, I, a):
    """[ring f32_3, ridx i32_3, rcnt i32_2]: spike lists of every slot of a delay line."""
    ring, ridx, rcnt = view(P, S, a[0], "f32_3"), view(P, S, a[1], "i32_3"), view(P, S, a[2], "i32_2")
    for slot in range(ring.shape[0]):
        for b in range(b0, b1):
            c = 0
            for i in range(ring.shape[2]):
                if ring[slot, b, i] != 0:
                    ridx[slot, b, c] = i
                    c += 1
            rcnt[slot, b] = c


@njit(**OPTS)
def ring_push(t, learning, seed, b0, b1, P, S, I, a):
    """[ring, ridx, rcnt, idx, cnt; int pos0]: this step's spikes into slot (pos0 + t) % L."""
    ring, ridx, rcnt = view(P, S, a[0], "f32_3"), view(P, S, a[1], "i32_3"), view(P, S, a[2], "i32_2")
    idx, cnt = view(P, S, a[3], "i32_2"), view(P, S, a[4], "i32_1")
    p = (I[a[5]] + t) % ring.shape[0]
    for b in range(b0, b1):
        for i in range(ring.shape[2]):
            ring[p, b, i] = 0.0
        for q in range(cnt[b]):
            ring[p, b, idx[b, q]] = 1.0
            ridx[p, b, q] = idx[b, q]
        rcnt[p, b] = cnt[b]


@njit(**OPTS)
def prop_ring(t, learning, seed, b0, b1, P, S, I, a):
    """[ridx, rcnt, w f32_2 or f32_1, out; ints pos0, diag]: uniform delay, the slot due
    (the oldest: (pos0 + t + 1) % L), dense or one-to-one."""
    ridx, rcnt, out = view(P, S, a[0], "i32_3"), view(P, S, a[1], "i32_2"), view(P, S, a[3], "f32_2")
    p = (I[a[4]] + t + 1) % ridx.shape[0]
    if I[a[5]]:
        w1 = view(P, S, a[2], "f32_1")
        for b in range(b0, b1):
            for q in range(rcnt[p, b]):
                i = ridx[p, b, q]
                out[b, i] += w1[i]
    else:
        w = view(P, S, a[2], "f32_2")
        for b in range(b0, b1):
            for q in range(rcnt[p, b]):
                i = ridx[p, b, q]
                for j in range(w.shape[1]):
                    out[b, j] += w[i, j]


@njit(**OPTS)
def prop_delays(t, learning, seed, b0, b1, P, S, I, a):
    """[ridx, rcnt, dptr i64_1, dcol i32_1, w, out; int pos0]: per-synapse delays; synapses
    grouped by (pre neuron i, delay d) -> post neurons ``dcol[dptr[i L + d]:dptr[i L + d + 1]]``;
    the slot written d steps ago feeds delay d."""
    ridx, rcnt = view(P, S, a[0], "i32_3"), view(P, S, a[1], "i32_2")
    dptr, dcol, w, out = view(P, S, a[2], "i64_1"), view(P, S, a[3], "i32_1"), view(P, S, a[4], "f32_2"), view(P, S, a[5], "f32_2")
    L = ridx.shape[0]
    p0 = (I[a[6]] + t) % L
    for b in range(b0, b1):
        for d in range(L):
            slot = (p0 - d) % L
            for q in range(rcnt[slot, b]):
                i = ridx[slot, b, q]
                base = i * L + d
                for jj in range(dptr[base], dptr[base + 1]):
                    j = dcol[jj]
                    out[b, j] += w[i, j]


@njit(inline="always")
def _delay_row(o, wr, dr, dd):
    """o += the weight row where the synapse's delay is dd (-0.0, the identity, elsewhere)."""
    for j in range(o.shape[0]):
        o[j] += wr[j] if dr[j] == dd else np.float32(-0.0)


@njit(inline="always")
def _delay_rows4(o, w, dl, i1, d1, i2, d2, i3, d3, i4, d4):
    """Four rows in one pass over ``o``, added in their order (one load and store of o[j])."""
    w1, w2, w3, w4 = w[i1], w[i2], w[i3], w[i4]
    r1, r2, r3, r4 = dl[i1], dl[i2], dl[i3], dl[i4]
    z = np.float32(-0.0)
    for j in range(o.shape[0]):
        o[j] = (((o[j] + (w1[j] if r1[j] == d1 else z)) + (w2[j] if r2[j] == d2 else z))
                + (w3[j] if r3[j] == d3 else z)) + (w4[j] if r4[j] == d4 else z)


@njit(**OPTS)
def prop_delays_rows(t, learning, seed, b0, b1, P, S, I, a):
    """[ridx, rcnt, dl u8_2, w, out; int pos0]: per-synapse delays ``dl[i, j]`` (< the line's length L):
    for every age d of the delay line, each spike of that age adds its weight row where the
    synapse's delay is d.  The additions into ``out[b, j]`` come in the order of
    ``prop_delays`` (age, then spike), and a synapse of another delay adds ``-0.0`` (the
    identity of float addition): the currents are bit-identical, with a row loop that
    vectorises instead of a gather per synapse.  Rows go four at a time (kept in order), so
    ``out[b]`` is read and written once per four rows."""
    ridx, rcnt = view(P, S, a[0], "i32_3"), view(P, S, a[1], "i32_2")
    dl, w, out = view(P, S, a[2], "u8_2"), view(P, S, a[3], "f32_2"), view(P, S, a[4], "f32_2")
    L = ridx.shape[0]
    p0 = (I[a[5]] + t) % L
    for b in range(b0, b1):
        o = out[b]
        held = 0  # rows waiting for a group of four: (i1, d1), (i2, d2), (i3, d3)
        i1 = i2 = i3 = 0
        d1 = d2 = d3 = np.uint8(0)
        for d in range(L):
            slot = p0 - d
            if slot < 0:
                slot += L
            dd = np.uint8(d)
            for q in range(rcnt[slot, b]):
                i = ridx[slot, b, q]
                if held == 0:
                    i1, d1, held = i, dd, 1
                elif held == 1:
                    i2, d2, held = i, dd, 2
                elif held == 2:
                    i3, d3, held = i, dd, 3
                else:
                    _delay_rows4(o, w, dl, i1, d1, i2, d2, i3, d3, i, dd)
                    held = 0
        if held >= 1:
            _delay_row(o, w[i1], dl[i1], d1)
        if held >= 2:
            _delay_row(o, w[i2], dl[i2], d2)
        if held >= 3:
            _delay_row(o, w[i3], dl[i3], d3)


@njit(**OPTS)
def prop_patch(t, learning, seed, b0, b1, P, S, I, a):
    """[idx, cnt, ptr i64_1, ep i32_1, el i32_1, w f32_1, out; ints c_out, P, shared]:
    conv2d (shared: entry p of channel co at ``co P + p``) or local (``(l P + p) c_out + co``):
    each spike adds its entries to the c_out neurons of every position whose patch holds it."""
    idx, cnt = view(P, S, a[0], "i32_2"), view(P, S, a[1], "i32_1")
    ptr, ep, el = view(P, S, a[2], "i64_1"), view(P, S, a[3], "i32_1"), view(P, S, a[4], "i32_1")
    w, out = view(P, S, a[5], "f32_1"), view(P, S, a[6], "f32_2")
    c_out, np_, shared = I[a[7]], I[a[8]], I[a[9]]
    L = out.shape[1] // c_out
    for b in range(b0, b1):
        for q in range(cnt[b]):
            i = idx[b, q]
            for e in range(ptr[i], ptr[i + 1]):
                p = ep[e]
                l = el[e]
                for co in range(c_out):
                    f = co * np_ + p if shared else (l * np_ + p) * c_out + co
                    out[b, co * L + l] += w[f]


@njit(**OPTS)
def bernoulli_fill(t, learning, seed, b0, b1, P, S, I, a):
    """[thr i64_2, gen u8_3; int stream]: ``gen[t, b, j] = draw < thr[b, j]`` (models.rng)."""
    thr, gen = view(P, S, a[0], "i64_2"), view(P, S, a[1], "u8_3")
    stream = I[a[2]]
    T = gen.shape[0]
    keys = np.empty(T, np.int64)
    for tt in range(T):
        keys[tt] = step_key(seed, stream, tt)  # noqa: F821 (prepended)
    gen[:, b0:b1, :] = 0  # one sweep; then only the spikes are written (most pixels are 0)
    for b in range(b0, b1):
        for j in range(thr.shape[1]):
            p = thr[b, j]
            if p <= 0:
                continue
            site = site_key(b, j)  # noqa: F821 (prepended)
            for tt in range(T):
                if draw(keys[tt], site) < p:  # noqa: F821 (prepended)
                    gen[tt, b, j] = 1
