"""conv2d and local connections in the fused kernel: event-driven through their patch
structure.  Each input spike is scattered to the (position, kernel entry) pairs whose patch
holds it (``lib.prop_patch``); rules visit the same pairs (``rule_piece``'s patch layout)."""

from __future__ import annotations

from typing import Any

import torch

from .codegen import as_array, lit


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


def _csr_args(K: Any, C: str, conn: Any) -> dict:
    if f"{C}_ptr" not in {e.name for e in K.ext}:
        K.arg(f"{C}_wf", lambda conn=conn: as_array(conn.w.view(-1)))
        for k, part in enumerate(("pidx", "ptr", "ep", "el")):
            K.arg(f"{C}_{part}", lambda conn=conn, k=k: patch_csr(conn)[k].numpy())
    g = conn.geom
    return {"pidx_p": f"{C}_pidx", "ptr": f"{C}_ptr", "ep": f"{C}_ep", "el": f"{C}_el",
            "c_out": lit(g.c_out), "P": lit(g.patch_size), "shared": lit(conn.kind == "conv2d")}


def add_patch_connection(K: Any, C: str, S: str, out: str, conn: Any) -> None:
    if conn.max_delay > 0 or conn.b is not None:
        raise ValueError(f"{conn.kind} connection with delays or a bias")
    a = _csr_args(K, C, conn)
    K.lib("prop_patch", [f"{S}_idx", f"{S}_cnt", a["ptr"], a["ep"], a["el"], f"{C}_wf", out, a["c_out"], a["P"],
                         a["shared"]], K.prop)


def rule_args(K: Any, C: str, conn: Any) -> dict:
    return _csr_args(K, C, conn)
