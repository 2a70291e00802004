"""2-d convolutional connection (``conv2d``): shared kernels over a ``[C, H, W]`` source.

With spikes ``s[b, ci, y, x]``, kernel ``K`` shaped ``[C_out, C_in, k, k]``, stride ``st``
and zero padding ``p``::

    I[b, co, y, x] = sum_{ci, ky, kx} K[co, ci, ky, kx] s[b, ci, y*st - p + ky, x*st - p + kx]

(``torch.nn.functional.conv2d``).  The target must be shaped ``[C_out, H_out, W_out]`` with
``H_out = (H + 2p - k) // st + 1`` (same for ``W``).

Learning correlates every output position with its input patch and sums over batch and
positions (the kernel is shared)::

    outer(pre, post)[co, ci, ky, kx] = sum_{b, y, x} post[b, co, y, x] pre[b, ci, y*st - p + ky, x*st - p + kx]

``norm`` rescales each output channel's kernel to sum to ``norm``.

This module also holds the patch geometry shared with ``local`` connections.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from ..registry import ParamError, check
from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit


def _check_geometry(kernel_size: int, stride: int, padding: int) -> None:
    for name, value, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)):
        check(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
              f"must be an integer >= {low}, got {value!r}")


@dataclasses.dataclass(kw_only=True)
class Conv2dParams(ConnectionParams):
    """``kernel_size`` (square, required), ``stride``, ``padding`` (zeros) in pixels;
    ``out_channels`` defaults to the target's first dimension."""

    kernel_size: int
    stride: int = 1
    padding: int = 0
    out_channels: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_geometry(self.kernel_size, self.stride, self.padding)
        check(self.out_channels is None or (isinstance(self.out_channels, int) and self.out_channels > 0),
              "out_channels", f"must be a positive integer, got {self.out_channels!r}")


@dataclasses.dataclass(frozen=True)
class PatchGeometry:
    """Source ``[c_in, h, w]`` seen through ``k x k`` patches with stride and padding;
    ``h_out x w_out`` patch positions, ``L = h_out * w_out``, ``c_out`` output channels."""

    c_in: int
    h: int
    w: int
    k: int
    stride: int
    padding: int
    c_out: int
    h_out: int
    w_out: int

    @property
    def n_positions(self) -> int:
        return self.h_out * self.w_out

    @property
    def patch_size(self) -> int:
        return self.c_in * self.k * self.k

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """Patches of ``x``. Shapes: ``[B, c_in, h, w] -> [B, c_in*k*k, L]``."""
        return F.unfold(x, self.k, padding=self.padding, stride=self.stride)

    def patch_index(self, device: torch.device) -> torch.Tensor:
        """Flat source index of every patch entry, ``-1`` where it falls in the padding.

        Shapes: ``[c_in*k*k, L]`` (long), rows ordered ``(ci, ky, kx)`` like the kernel.
        """
        n_pre = self.c_in * self.h * self.w
        ids = torch.arange(1, n_pre + 1, dtype=torch.float64, device=device).view(1, self.c_in, self.h, self.w)
        return self.unfold(ids)[0].round().long() - 1


def patch_geometry(source_shape: tuple[int, ...], target_shape: tuple[int, ...], kernel_size: int, stride: int,
                   padding: int, out_channels: Optional[int] = None) -> PatchGeometry:
    """Check source ``[C_in, H, W]`` and target ``[C_out, H_out, W_out]`` against the conv
    arithmetic ``H_out = (H + 2 padding - kernel_size) // stride + 1``; raise ``ParamError``."""
    if len(source_shape) != 3:
        raise ParamError("source", f"expected a population shaped [C_in, H, W], got {list(source_shape)}")
    c_in, h, w = source_shape
    if h + 2 * padding < kernel_size or w + 2 * padding < kernel_size:
        raise ParamError("kernel_size", f"{kernel_size} is larger than the padded source {h + 2 * padding}x{w + 2 * padding}")
    c_out = out_channels if out_channels is not None else (target_shape[0] if len(target_shape) == 3 else None)
    h_out = (h + 2 * padding - kernel_size) // stride + 1
    w_out = (w + 2 * padding - kernel_size) // stride + 1
    if c_out is None or tuple(target_shape) != (c_out, h_out, w_out):
        raise ParamError("target", f"expected shape [{c_out or 'C_out'}, {h_out}, {w_out}] from conv arithmetic "
                                   f"(source {list(source_shape)}, kernel_size={kernel_size}, stride={stride}, "
                                   f"padding={padding}), got {list(target_shape)}")
    return PatchGeometry(c_in, h, w, kernel_size, stride, padding, c_out, h_out, w_out)


@CONNECTIONS.register("conv2d", Conv2dParams)
class Conv2d(Connection):
    """2-d convolution with shared kernels ``w: [C_out, C_in, k, k]`` (see module docstring)."""

    def __init__(self, source, target, params: Conv2dParams, dt: float = 1.0, rule=None, generator=None):
        self.geom = patch_geometry(source.shape, target.shape, params.kernel_size, params.stride,
                                   params.padding, params.out_channels)
        super().__init__(source, target, params, dt, rule, generator)

    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        g = self.geom
        return init.sample((g.c_out, g.c_in, g.k, g.k), generator)

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        """``conv2d(s, w)``. Shapes: ``[B, C_in, H, W] -> [B, C_out, H_out, W_out]``."""
        return F.conv2d(s, self.w, stride=self.geom.stride, padding=self.geom.padding)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """``dW[co, p] = sum_{b, l} post[b, co, l] patches(pre)[b, p, l]``.

        Shapes: pre ``[B, C_in, H, W]``, post ``[B, C_out, H_out, W_out]`` -> ``[C_out, C_in, k, k]``.
        """
        B = pre.shape[0]
        patches = self.geom.unfold(pre.to(self.w.dtype))                     # [B, C_in*k*k, L]
        post = post.reshape(B, self.geom.c_out, -1).to(self.w.dtype)          # [B, C_out, L]
        return torch.einsum("bpl,bol->op", patches, post).view_as(self.w)

    def incoming_sums(self) -> torch.Tensor:
        """Kernel sum per output channel. Shapes: ``[C_out, 1, 1, 1]``."""
        return self.w.sum((1, 2, 3), keepdim=True)

    def dense_weights(self) -> torch.Tensor:
        """``D[i, co*L + l] = w[co, p]`` where patch entry ``p`` at position ``l`` is source ``i``.

        Shapes: ``[n_pre, n_post]`` with ``n_post = C_out * H_out * W_out``.
        """
        g = self.geom
        L = g.n_positions
        pre = g.patch_index(self.w.device).unsqueeze(0).expand(g.c_out, -1, -1)            # [C_out, P, L]
        post = (torch.arange(g.c_out, device=self.w.device)[:, None, None] * L
                + torch.arange(L, device=self.w.device)).expand_as(pre)                  # [C_out, P, L]
        vals = self.w.reshape(g.c_out, -1, 1).expand_as(pre)
        keep = pre >= 0
        dense = torch.zeros(self.source.n, self.target.n, dtype=self.w.dtype, device=self.w.device)
        return dense.index_put_((pre[keep], post[keep]), vals[keep], accumulate=True)
