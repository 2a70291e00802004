"""All-to-all (``dense``) and ``one_to_one`` connections.

``dense``: ``I[b, j] = sum_i s[b, i] W[i, j]`` with ``W`` shaped ``[n_pre, n_post]``
(source and target flattened).  ``mask: all_but_self`` (or ``recurrent: true`` on a
population onto itself) zeroes the diagonal -- BindsNET's recurrent / all-but-self
inhibition; ``mask: same_position`` (a population shaped ``[C, H, W]`` onto itself) keeps
only the synapses between different channels at the same position ``(y, x)`` -- competition
between feature maps, position by position (conv / locally connected layers); weights
under the mask stay zero through learning.  Per-synapse delays are
supported: ``delay_ms: {max_ms: D}``.

``one_to_one``: ``I[b, j] = s[b, j] w[j]`` with ``w`` shaped ``[n]`` (source and target of
the same size).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from ..registry import ParamError, check
from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit


@dataclasses.dataclass
class DenseParams(ConnectionParams):
    mask: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.mask in ("none", "all_but_self", "same_position"), "mask",
              f"{self.mask!r} is not one of: none, all_but_self, same_position")


@CONNECTIONS.register("dense", DenseParams)
class Dense(Connection):
    """All-to-all connection, weights ``[n_pre, n_post]``; optional all-but-self mask."""

    per_synapse_delays = True

    @classmethod
    def memory_bytes(cls, source, target, params: DenseParams) -> int:
        """float32 weights, plus a mask (and the identity it is made from), plus int64 delays."""
        per = 4 + (8 if params.mask != "none" else 0) + (8 if isinstance(params.delay_ms, dict) else 0)
        return per * source.n * target.n

    def __init__(self, source, target, params: DenseParams, dt: float = 1.0, rule=None, generator=None):
        super().__init__(source, target, params, dt, rule, generator)
        if params.mask == "all_but_self":
            if source.n != target.n:
                raise ParamError("mask", f"all_but_self needs populations of equal size, got {source.n} -> {target.n}")
            self.mask = 1.0 - torch.eye(source.n)
            self.clamp_()
        elif params.mask == "same_position":
            if len(source.shape) != 3 or tuple(source.shape) != tuple(target.shape):
                raise ParamError("mask", f"same_position needs source and target of one shape [C, H, W], "
                                         f"got {list(source.shape)} -> {list(target.shape)}")
            c, h, w = source.shape
            pos = torch.arange(h * w).repeat(c)                      # neuron (ch, y, x) -> y * w + x
            self.mask = ((pos[:, None] == pos[None, :]).float() - torch.eye(source.n))
            self.clamp_()

    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        return init.sample((self.source.n, self.target.n), generator)

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        return (s.reshape(s.shape[0], -1) @ self.w).view(s.shape[0], *self.target.shape)

    def compute_delayed(self) -> torch.Tensor:
        # ring: [L, B, n_pre]; synapse (i, j) sees the spikes written (delay[i, j]) steps ago
        L = self.max_delay + 1
        ring = self.ring.reshape(L, self.ring.shape[1], -1)
        slot = (self.pos - self.delays) % L                       # [n_pre, n_post]
        rows = torch.arange(self.source.n, device=self.w.device)[:, None]
        delayed = ring[slot, :, rows.expand_as(slot)]             # [n_pre, n_post, B]
        out = torch.einsum("ijb,ij->bj", delayed, self.w)
        return out.view(-1, *self.target.shape)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        B = pre.shape[0]
        return pre.reshape(B, -1).to(self.w.dtype).T @ post.reshape(B, -1).to(self.w.dtype)

    def incoming_sums(self) -> torch.Tensor:
        """``sum_i W[i, j]`` as ``[1, n_post]``.  CPU float32 weights add in one fixed order,
        ``((W[0, j] + W[1, j]) + W[2, j]) + ...`` (numpy reduces the leading axis row by
        row), the order of the fused kernel's in-kernel normalisation
        (``lib_updates.normalize_dense``): both CPU backends rescale alike, bit for bit, on
        every CPU (torch's own sum groups the additions by the CPU's vector width); other
        weights use torch's sum."""
        w = self.w
        if w.device.type == "cpu" and w.dtype == torch.float32 and w.is_contiguous() and not w.requires_grad:
            a = w.numpy()
            # one column: numpy would add pairwise along it; the running sum keeps the order
            s = np.add.reduce(a, axis=0, keepdims=True) if a.shape[1] > 1 else np.add.accumulate(a, axis=0)[-1:]
            return torch.from_numpy(s)
        return w.sum(0, keepdim=True)

    def dense_weights(self) -> torch.Tensor:
        return self.w


@dataclasses.dataclass
class OneToOneParams(ConnectionParams):
    pass


@CONNECTIONS.register("one_to_one", OneToOneParams)
class OneToOne(Connection):
    """Neuron j of the source drives neuron j of the target with weight ``w[j]``."""

    def __init__(self, source, target, params: OneToOneParams, dt: float = 1.0, rule=None, generator=None):
        if source.n != target.n:
            raise ParamError("target", f"one_to_one needs equal sizes, got source n={source.n} and target n={target.n}")
        super().__init__(source, target, params, dt, rule, generator)

    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        return init.sample((self.source.n,), generator)

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        return (s.reshape(s.shape[0], -1) * self.w).view(s.shape[0], *self.target.shape)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        B = pre.shape[0]
        return (pre.reshape(B, -1).to(self.w.dtype) * post.reshape(B, -1).to(self.w.dtype)).sum(0)

    def incoming_sums(self) -> torch.Tensor:
        return self.w

    def dense_weights(self) -> torch.Tensor:
        return torch.diag(self.w)
