"""Locally connected 2-d connection (``local``): unshared kernels (Saunders et al. 2018).

Like ``conv2d`` but every output position ``l = y * W_out + x`` has its own kernel.  With
``P(s)[b, p, l]`` the ``p = (ci, ky, kx)`` entry of the input patch under position ``l``
(``torch.nn.functional.unfold``) and weights ``w`` shaped ``[L, C_in*k*k, C_out]``::

    I[b, co, l] = sum_p P(s)[b, p, l] w[l, p, co]
    outer(pre, post)[l, p, co] = sum_b P(pre)[b, p, l] post[b, co, l]     (no sum over l)

The target must be shaped ``[C_out, H_out, W_out]`` (``H_out = (H + 2 padding - k) // stride
+ 1``).  ``norm`` rescales the incoming weights of every target neuron ``(co, l)``.  Weights
that would read zero padding are held at 0 (a mask), so they count in neither currents nor
norms -- the connection equals a dense one with its ``dense_weights()``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit
from .conv import _check_geometry, patch_geometry


@dataclasses.dataclass(kw_only=True)
class LocalParams(ConnectionParams):
    """``kernel_size`` (square, required), ``stride`` and ``padding`` (zeros) in pixels."""

    kernel_size: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_geometry(self.kernel_size, self.stride, self.padding)


@CONNECTIONS.register("local", LocalParams)
class Local(Connection):
    """Locally connected 2-d layer, weights ``[L, C_in*k*k, C_out]`` (see module docstring)."""

    def __init__(self, source, target, params: LocalParams, dt: float = 1.0, rule=None, generator=None):
        self.geom = patch_geometry(source.shape, target.shape, params.kernel_size, params.stride, params.padding)
        super().__init__(source, target, params, dt, rule, generator)
        if params.padding > 0:
            self.mask = (self.geom.patch_index(self.w.device) >= 0).T.unsqueeze(-1).to(self.w.dtype)  # [L, P, 1]
            self.clamp_()

    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        g = self.geom
        return init.sample((g.n_positions, g.patch_size, g.c_out), generator)

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        """``I[b, co, l] = sum_p P(s)[b, p, l] w[l, p, co]``.

        Shapes: ``[B, C_in, H, W] -> [B, C_out, H_out, W_out]``.
        """
        g = self.geom
        out = torch.einsum("bpl,lpo->bol", g.unfold(s), self.w)
        return out.reshape(s.shape[0], g.c_out, g.h_out, g.w_out)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """``dW[l, p, co] = sum_b P(pre)[b, p, l] post[b, co, l]``.

        Shapes: pre ``[B, C_in, H, W]``, post ``[B, C_out, H_out, W_out]`` -> ``[L, C_in*k*k, C_out]``.
        """
        B = pre.shape[0]
        patches = self.geom.unfold(pre.to(self.w.dtype))                    # [B, P, L]
        post = post.reshape(B, self.geom.c_out, -1).to(self.w.dtype)         # [B, C_out, L]
        return torch.einsum("bpl,bol->lpo", patches, post)

    def incoming_sums(self) -> torch.Tensor:
        """Incoming weight sum per target neuron ``(l, co)``. Shapes: ``[L, 1, C_out]``."""
        return self.w.sum(1, keepdim=True)

    def dense_weights(self) -> torch.Tensor:
        """``D[i, co*L + l] = w[l, p, co]`` where patch entry ``p`` at position ``l`` is source ``i``.

        Shapes: ``[n_pre, n_post]`` with ``n_post = C_out * H_out * W_out``.
        """
        g = self.geom
        L, dev = g.n_positions, self.w.device
        pre = g.patch_index(dev).T.unsqueeze(-1).expand(-1, -1, g.c_out)                    # [L, P, C_out]
        post = (torch.arange(g.c_out, device=dev) * L + torch.arange(L, device=dev)[:, None])  # [L, C_out]
        post = post.unsqueeze(1).expand_as(pre)
        keep = pre >= 0
        dense = torch.zeros(self.source.n, self.target.n, dtype=self.w.dtype, device=dev)
        return dense.index_put_((pre[keep], post[keep]), self.w[keep], accumulate=True)
