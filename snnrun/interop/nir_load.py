"""``from_nir``: a NIR graph (or ``.nir`` file) as a snnrun :class:`~snnrun.core.network.Network`
(the mapping is :mod:`snnrun.interop.nir_io`'s; building is :mod:`snnrun.build`'s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from ..build import network_from_graph
from ..core.network import Network
from .nir_io import NIRError, graph_dt_ms, read_graph


def from_nir(graph: Any, dt_ms: Optional[float] = None, device: str | torch.device = "cpu") -> Network:
    """The network of a ``nir.NIRGraph`` or a ``.nir`` file, simulated at ``dt_ms`` (default:
    the graph's own ``metadata["dt"]``)."""
    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    step = dt_ms if dt_ms is not None else graph_dt_ms(graph)
    if step is None:
        raise NIRError("network.dt_ms: the NIR graph states no dt; give the step (dt_ms) to simulate it at")
    return network_from_graph(graph, float(step), device)
