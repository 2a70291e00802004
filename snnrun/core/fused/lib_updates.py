"""The fused backend's weight updates (part of the library of ``lib.py``, compiled with it;
not imported): a rule's piece accumulates each step's increments, these add them to the
touched rows and columns (or listed entries), clamp them to ``[wmin, wmax]``, mask them, or
move them into the eligibility in episode mode, and clamp every weight at a presentation's
first step, as the reference clamps all weights at every learning step.
"""

import numpy as np
from numba import njit

from snnrun.core.fused.fnptr import view

OPTS = dict(cache=True, nogil=True, error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(inline="always")
def _bounds(lohi, flags):
    lo = lohi[0] if flags & 1 else -np.inf
    hi = lohi[1] if flags & 2 else np.inf
    return np.float32(lo), np.float32(hi)


@njit(inline="always")
def _clamp(v, lo, hi):
    """``v`` clamped to ``[lo, hi]`` (lower bound first); rule pieces' in-place rows use it too."""
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    return v


@njit(inline="always")
def _add_row(wr, dr, lo, hi):
    """wr += dr clamped to [lo, hi]; dr = 0 (two arrays only: the loop vectorises)."""
    for j in range(wr.shape[0]):
        wr[j] = _clamp(wr[j] + dr[j], lo, hi)
        dr[j] = 0.0


@njit(inline="always")
def _move_row(er, dr):
    """er += dr; dr = 0 (episode mode: into the eligibility)."""
    for j in range(er.shape[0]):
        er[j] += dr[j]
        dr[j] = 0.0


@njit(inline="always")
def _mask_row(wr, mr):
    for j in range(wr.shape[0]):
        wr[j] = wr[j] * mr[j]


@njit(inline="always")
def _add_one(w, d, elig, mask, f, lo, hi, flags):
    """The same for one weight ``f`` of flat views."""
    if flags & 8:
        elig[f] += d[f]
    else:
        v = w[f] + d[f]
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        w[f] = v * mask[f] if flags & 4 else v
    d[f] = 0.0


@njit(inline="always")
def _clamp_all(wf, mf, lo, hi, flags):
    """At a presentation's first step every weight is clamped (normalisation may have moved
    them), as the reference clamps all weights at every learning step."""
    if not flags & 3 or flags & 8:
        return
    for f in range(wf.shape[0]):
        v = wf[f]
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        wf[f] = v
    if flags & 4:
        for f in range(wf.shape[0]):
            wf[f] = wf[f] * mf[f]


@njit(**OPTS)
def apply_dense(t, learning, seed, b0, b1, P, S, I, a):
    """[w f32_2, d f32_2, rows b_1, cols b_1, row list i64_1, column list i64_1, mask f32_2,
    elig f32_2, lohi f32_1; int flags]: add the accumulated increments of the touched rows
    and columns (listed; a row list of length -1 means every row; flags: 1 lower bound,
    2 upper bound, 4 mask, 8 into the eligibility instead), clamp, mask, clear them."""
    w, d = view(P, S, a[0], "f32_2"), view(P, S, a[1], "f32_2")
    rows, cols = view(P, S, a[2], "b_1"), view(P, S, a[3], "b_1")
    rl, cl = view(P, S, a[4], "i64_1"), view(P, S, a[5], "i64_1")
    mask, elig, lohi = view(P, S, a[6], "f32_2"), view(P, S, a[7], "f32_2"), view(P, S, a[8], "f32_1")
    flags = I[a[9]]
    lo, hi = _bounds(lohi, flags)
    n_pre, n_post = w.shape
    nr, nc = rl[rl.shape[0] - 1], cl[cl.shape[0] - 1]
    every = nr < 0
    for q in range(n_pre if every else nr):
        i = q if every else rl[q]
        if flags & 8:
            _move_row(elig[i], d[i])
        else:
            _add_row(w[i], d[i], lo, hi)
            if flags & 4:
                _mask_row(w[i], mask[i])
    for q in range(0 if every else nc):
        j = cl[q]  # the rest of the column (rows not touched), one loop per case
        if flags & 8:
            for i in range(n_pre):
                if not rows[i]:
                    elig[i, j] += d[i, j]
                    d[i, j] = 0.0
        elif flags & 4:
            for i in range(n_pre):
                if not rows[i]:
                    v = w[i, j] + d[i, j]
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    w[i, j] = v * mask[i, j]
                    d[i, j] = 0.0
        else:
            for i in range(n_pre):
                if not rows[i]:
                    v = w[i, j] + d[i, j]
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    w[i, j] = v
                    d[i, j] = 0.0
    if every:
        rows[:] = False
    for q in range(0 if every else nr):
        rows[rl[q]] = False
    for q in range(nc):
        cols[cl[q]] = False
    rl[rl.shape[0] - 1] = 0
    cl[cl.shape[0] - 1] = 0
    if t == 0:  # after the increments, as the reference's clamp of every weight
        _clamp_all(w.ravel(), mask.ravel(), lo, hi, flags)


@njit(**OPTS)
def apply_diag(t, learning, seed, b0, b1, P, S, I, a):
    """As apply_dense for one-to-one weights ``w [n]`` (rows and columns both index w)."""
    w, d = view(P, S, a[0], "f32_1"), view(P, S, a[1], "f32_1")
    rows, cols = view(P, S, a[2], "b_1"), view(P, S, a[3], "b_1")
    rl, cl = view(P, S, a[4], "i64_1"), view(P, S, a[5], "i64_1")
    mask, elig, lohi = view(P, S, a[6], "f32_1"), view(P, S, a[7], "f32_1"), view(P, S, a[8], "f32_1")
    flags = I[a[9]]
    lo, hi = _bounds(lohi, flags)
    nr, nc = rl[rl.shape[0] - 1], cl[cl.shape[0] - 1]
    if nr < 0:
        for i in range(w.shape[0]):
            _add_one(w, d, elig, mask, i, lo, hi, flags)
        rows[:] = False
    else:
        for q in range(nr):
            _add_one(w, d, elig, mask, rl[q], lo, hi, flags)
        for q in range(nc):
            if not rows[cl[q]]:
                _add_one(w, d, elig, mask, cl[q], lo, hi, flags)
        for q in range(nr):
            rows[rl[q]] = False
    for q in range(nc):
        cols[cl[q]] = False
    rl[rl.shape[0] - 1] = 0
    cl[cl.shape[0] - 1] = 0
    if t == 0:  # after the increments, as the reference's clamp of every weight
        _clamp_all(w, mask, lo, hi, flags)


@njit(**OPTS)
def apply_list(t, learning, seed, b0, b1, P, S, I, a):
    """[w f32_1, d f32_1, touched b_1, list i64_1, mask f32_1, elig f32_1, lohi f32_1; int
    flags]: as apply_dense for the touched entries listed (conv2d / local kernels; the
    list's length is kept in its last entry)."""
    w, d = view(P, S, a[0], "f32_1"), view(P, S, a[1], "f32_1")
    touched, lst = view(P, S, a[2], "b_1"), view(P, S, a[3], "i64_1")
    mask, elig, lohi = view(P, S, a[4], "f32_1"), view(P, S, a[5], "f32_1"), view(P, S, a[6], "f32_1")
    flags = I[a[7]]
    lo, hi = _bounds(lohi, flags)
    n = lst[lst.shape[0] - 1]
    for q in range(n):
        f = lst[q]
        _add_one(w, d, elig, mask, f, lo, hi, flags)
        touched[f] = False
    lst[lst.shape[0] - 1] = 0
    if t == 0:  # after the increments, as the reference's clamp of every weight
        _clamp_all(w, mask, lo, hi, flags)


@njit(**OPTS)
def normalize_dense(t, learning, seed, b0, b1, P, S, I, a):
    """[w f32_2, f f32_1, norm f32_1 (norm, on)]: weight normalisation after a learning
    presentation, as ``Connection.normalize``: ``s_j = ((w[0, j] + w[1, j]) + ...)`` in float32
    (the order of ``Dense.incoming_sums``), then ``connections.rescale``'s ``w[i, j] *= (1 /
    s_j) * norm`` compiled from its source: the same weights as the Python path, bit for bit.
    Nothing when ``on`` is 0 (the connection's norm was removed)."""
    w, f, nv = view(P, S, a[0], "f32_2"), view(P, S, a[1], "f32_1"), view(P, S, a[2], "f32_1")
    if nv[1] == 0:
        return
    n, m = w.shape
    for j in range(m):
        f[j] = w[0, j]
    for i in range(1, n):
        for j in range(m):
            f[j] += w[i, j]
    rescale(w, f, nv[0])  # noqa: F821 (prepended: snnrun/core/connections/rescale.py)
