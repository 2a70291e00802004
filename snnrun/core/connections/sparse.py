"""Sparse all-to-some connection (``sparse``): learnable weights on a fixed random mask.

``round(density * n_pre * n_post)`` synapses (at least one) are drawn uniformly without
replacement when the connection is built.  Synapse ``k`` connects source neuron
``indices[0, k]`` to target neuron ``indices[1, k]`` with weight ``w[k]``; synapses are
stored sorted by (target, source), so ``w`` is directly the value array of the CSR
matrix ``W^T`` (``[n_post, n_pre]``)::

    I[b, j] = sum_{k: cols[k] = j} s[b, rows[k]] w[k]
    outer(pre, post)[k] = sum_b pre[b, rows[k]] post[b, cols[k]]
    incoming_sums()[k] = sum_{k': cols[k'] = cols[k]} w[k']

``w`` is a plain dense tensor of values ``[nnz]``, so clamping, ``apply_update``,
normalisation and ``state_dict`` of the base class work unchanged; ``state_dict`` also
holds ``indices``.  Per-synapse delays (``delay_ms: {max_ms: D}``) are supported.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Optional

import torch

from ..registry import check
from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit

# torch warns (once per process, TORCH_WARN_ONCE) that sparse CSR support is in beta; use
# up that one warning here, silenced, instead of in the middle of a run.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0),
                            (1, 1), check_invariants=False)


@dataclasses.dataclass
class SparseParams(ConnectionParams):
    """``density``: fraction of the ``n_pre * n_post`` possible synapses that exist (0 < density <= 1)."""

    density: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.density, (int, float)) and not isinstance(self.density, bool) and 0 < self.density <= 1,
              "density", f"must be in (0, 1], got {self.density!r}")


@CONNECTIONS.register("sparse", SparseParams)
class Sparse(Connection):
    """Learnable weights ``w: [nnz]`` on synapses ``indices: [2, nnz]`` (row = pre, col = post)."""

    per_synapse_delays = True

    @classmethod
    def memory_bytes(cls, source, target, params: SparseParams) -> int:
        """Choosing the synapses draws a permutation of all ``n_pre * n_post`` int64 indices."""
        return 8 * source.n * target.n

    def init_weights(self, init: WeightInit, generator: Optional[torch.Generator]) -> torch.Tensor:
        n_pre, n_post = self.source.n, self.target.n
        nnz = max(1, round(self.params.density * n_pre * n_post))
        flat = torch.randperm(n_pre * n_post, generator=generator)[:nnz].sort().values  # index into [n_post, n_pre]
        self._set_indices(torch.stack([flat % n_pre, flat // n_pre]))
        return init.sample((nnz,), generator)

    def _set_indices(self, indices: torch.Tensor) -> None:
        """Store ``indices`` ([2, nnz], sorted by (col, row)) and the CSR row pointers of ``W^T``."""
        self.indices = indices
        self.rows, self.cols = indices[0], indices[1]
        counts = torch.bincount(self.cols, minlength=self.target.n)
        self.crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    @property
    def nnz(self) -> int:
        return self.indices.shape[1]

    def compute(self, s: torch.Tensor) -> torch.Tensor:
        """``I = s W`` as ``(W^T_csr @ s^T)^T``.

        CSR matmul is the faster choice on CPU (torch 2.15, 1 thread, density 0.1, per call,
        batch B = 1 / 16): 784x100 ~0.07 / 0.13 ms vs ~0.25 / 0.5 ms for the best
        ``index_add_`` layout; 1000x1000 ~0.35 / 0.6 ms vs ~1.4 / 8.5 ms; COO
        ``torch.sparse.mm`` was slower than both.  (At these sizes a dense matmul is faster
        still: ``sparse`` pays off in memory and at low density.)  Wrapping ``w`` as CSR
        values every step costs no copy and keeps learning in place on ``w``.

        Shapes: ``[B, *source.shape] -> [B, *target.shape]``.
        """
        B = s.shape[0]
        wt = torch.sparse_csr_tensor(self.crow, self.rows, self.w, (self.target.n, self.source.n),
                                     check_invariants=False)
        return (wt @ s.reshape(B, -1).T).T.reshape(B, *self.target.shape)

    def compute_delayed(self) -> torch.Tensor:
        """Synapse ``k`` reads the source spikes written ``delays[k]`` steps ago.

        Shapes: ring ``[D+1, B, *source.shape]`` -> ``[B, *target.shape]``.
        """
        L = self.max_delay + 1
        ring = self.ring.reshape(L, self.ring.shape[1], -1)
        slot = (self.pos - self.delays) % L                                      # [nnz]
        vals = ring[slot, :, self.rows] * self.w[:, None]                        # [nnz, B]
        out = vals.new_zeros(self.target.n, vals.shape[1]).index_add_(0, self.cols, vals)
        return out.T.reshape(-1, *self.target.shape)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """``dW[k] = sum_b pre[b, rows[k]] post[b, cols[k]]``. Shapes: ``-> [nnz]``."""
        B = pre.shape[0]
        pre = pre.reshape(B, -1).to(self.w.dtype)[:, self.rows]
        post = post.reshape(B, -1).to(self.w.dtype)[:, self.cols]
        return torch.einsum("bk,bk->k", pre, post)

    def incoming_sums(self) -> torch.Tensor:
        """Incoming weight sum of each synapse's target neuron. Shapes: ``[nnz]``."""
        sums = self.w.new_zeros(self.target.n).index_add_(0, self.cols, self.w)
        return sums[self.cols]

    def dense_weights(self) -> torch.Tensor:
        """Weights scattered into a zero ``[n_pre, n_post]`` matrix."""
        dense = self.w.new_zeros(self.source.n, self.target.n)
        dense[self.rows, self.cols] = self.w
        return dense

    # ------------------------------------------------------------ state
    def to(self, device: torch.device | str) -> "Sparse":
        super().to(device)
        self._set_indices(self.indices.to(self.device))
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = super().state_dict()
        state["indices"] = self.indices.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights together with their ``indices`` (the number of synapses may differ)."""
        if "indices" not in state:
            raise KeyError("missing 'indices'")
        idx = state["indices"].to(self.device, torch.long)
        if idx.dim() != 2 or idx.shape[0] != 2 or "w" not in state or state["w"].shape != (idx.shape[1],):
            raise ValueError(f"indices: expected [2, nnz] matching w [nnz], got {tuple(idx.shape)}")
        if idx.numel() and (idx.min() < 0 or idx[0].max() >= self.source.n or idx[1].max() >= self.target.n):
            raise ValueError(f"indices: out of range for {self.source.n} -> {self.target.n} neurons")
        key = idx[1] * self.source.n + idx[0]
        order = torch.argsort(key)
        if idx.shape[1] > 1 and not bool((key[order][1:] > key[order][:-1]).all()):
            raise ValueError("indices: duplicate synapses")
        state = dict(state)
        state["w"] = state["w"].to(self.device)[order]
        if "delays" in state and self.delays is not None:
            state["delays"] = state["delays"].to(self.device)[order]
            self.delays = torch.zeros(idx.shape[1], dtype=self.delays.dtype, device=self.device)
        self._set_indices(idx[:, order].contiguous())
        self.w = torch.zeros(idx.shape[1], dtype=self.w.dtype, device=self.device)
        super().load_state_dict({k: v for k, v in state.items() if k != "indices"})
