"""What every generated kernel (the fused CPU kernel, the CUDA kernel) needs of a network."""

from __future__ import annotations

from typing import Any, Optional

import torch


def common_reason(net: Any, kinds: tuple, backend: str) -> Optional[str]:
    """Why a kernel of ``backend`` that runs connection ``kinds`` cannot run ``net``, as far
    as all kernels agree: spiking populations, supported kinds, float32 weights."""
    for name, pop in net.populations.items():
        if not getattr(pop, "fused", True):
            return f"population {name!r} ({type(pop).__name__}) has real-valued output"
    for name, conn in net.connections.items():
        if conn.kind not in kinds:
            return f"connection {name!r} of kind {conn.kind} is not supported ({backend} kinds: {', '.join(kinds)})"
        if conn.w.dtype != torch.float32:
            return f"connection {name!r} weights are {conn.w.dtype}, not float32"
    return None
