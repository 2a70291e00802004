"""Per-synapse delays of a dense connection in the layouts the fused kernel reads.

``delay_csr``: synapses grouped by (pre neuron i, delay d), group ``g = i L + d`` holding the
post neurons ``col[ptr[g]:ptr[g + 1]]`` (``lib.prop_delays`` and arrival-timed rules);
``delay_bytes``: the delays as uint8 ``[n_pre, n_post]`` (``lib.prop_delays_rows``, L <= 256).
Both are cached on the connection until its delays tensor changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def delay_bytes(conn: Any) -> np.ndarray:
    """The per-synapse delays as uint8 ``[n_pre, n_post]`` (prop_delays_rows).  Cached until
    the delays tensor changes."""
    d = conn.delays
    key = (d.data_ptr(), d._version)
    cache = getattr(conn, "_delay_bytes", None)
    if cache is None or cache[0] != key:
        lo, hi = int(d.min()), int(d.max())
        if lo < 0 or hi > conn.max_delay:
            raise ValueError(f"per-synapse delays must lie in [0, {conn.max_delay}] steps, found [{lo}, {hi}]")
        cache = conn._delay_bytes = (key, np.ascontiguousarray(d.cpu().numpy().astype(np.uint8)))
    return cache[1]


def delay_csr(conn: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Synapses of a dense connection grouped by (pre neuron, delay): for group
    ``g = i * L + d`` the post neurons are ``col[ptr[g]:ptr[g + 1]]``.  Cached until the
    delays tensor changes."""
    d = conn.delays
    key = (d.data_ptr(), d._version)
    cache = getattr(conn, "_delay_csr", None)
    if cache is not None and cache[0] == key:
        return cache[1]
    L = conn.max_delay + 1
    n_pre, n_post = d.shape
    group = (torch.arange(n_pre)[:, None] * L + d.cpu()).reshape(-1)
    order = torch.argsort(group, stable=True)
    col = (order % n_post).to(torch.int32)
    ptr = torch.zeros(n_pre * L + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(group, minlength=n_pre * L), 0)
    conn._delay_csr = (key, (ptr, col))
    return ptr, col
