"""conv2d and local connections in the fused kernel: event-driven through their patch
structure.  Each input spike is scattered to the (position, kernel entry) pairs whose patch
holds it (``lib.prop_patch``); rules visit the same pairs (``rule_piece``'s patch layout)."""

from __future__ import annotations

from typing import Any

import torch


def is_patch(conn: Any) -> bool:
    return hasattr(conn, "geom")


def patch_csr(conn: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The patch structure of a conv2d / local connection: ``pidx[p, l]`` (source neuron of
    kernel entry ``p`` at position ``l``, -1 in the padding) and, grouped by source neuron
    ``i``, the pairs ``(ep[e], el[e])`` for ``e`` in ``ptr[i]:ptr[i + 1]``."""
    cache = getattr(conn, "_patch_csr", None)
    if cache is not None:
        return cache
    pidx = conn.geom.patch_index(torch.device("cpu"))             # [P, L]
    L = pidx.shape[1]
    flat = pidx.reshape(-1)
    keep = torch.nonzero(flat >= 0).squeeze(1)                     # entries p * L + l
    source = flat[keep]
    order = torch.argsort(source, stable=True)
    entries = keep[order]
    ptr = torch.zeros(conn.source.n + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(source, minlength=conn.source.n), 0)
    conn._patch_csr = (pidx.to(torch.int32).contiguous(), ptr, (entries // L).to(torch.int32),
                       (entries % L).to(torch.int32))
    return conn._patch_csr
