"""One random-number contract for every backend: counter-based draws.

Every random choice inside a presentation is a pure function of integers::

    u = draw(step_key(seed, stream, t), site_key(b, j))      # uniform on [0, 2^32)

``seed`` is drawn once per presentation (one simulator call) from torch's global RNG
(:func:`presentation_seed`), ``stream`` names the purpose (population k's one-spike
choice, population k's input spikes), ``t`` is the step within the presentation, ``b`` the
sample and ``j`` the neuron.  The mixing function is Thomas Mueller's 32-bit integer hash
(two multiply-xorshift rounds), computed in int64 so that no product overflows.  The
functions below take Python ints, int64 tensors, or (compiled by numba, see
``snnrun.core.fused.lib``) int64 scalars: the eager torch step, ``torch.compile`` and the
fused kernel therefore make the same choices.

* one spike per step (``one_spike``): the crosser with the largest ``u`` wins (the lowest
  index on a tie);
* Bernoulli input with probability ``p``: a spike when ``u < floor(p * 2^32)`` (exact in
  float64 for float32 ``p``).
"""

from __future__ import annotations

import torch

M32 = 0xFFFFFFFF
MULT = 0x45D9F3B
GOLDEN = 0x9E3779B9


def mix(x):
    """The 32-bit hash of ``x`` in [0, 2^32) (ints or int64 tensors)."""
    x = (((x >> 16) ^ x) * MULT) & M32
    x = (((x >> 16) ^ x) * MULT) & M32
    return (x >> 16) ^ x


def step_key(seed, stream, t):
    return mix((mix((seed ^ ((stream * GOLDEN) & M32)) & M32) + t) & M32)


def site_key(b, j):
    return mix((mix(b) + j) & M32)


def draw(step, site):
    return mix(step ^ site)


def one_spike_stream(k: int) -> int:
    """Stream of population k's one-spike choices."""
    return 2 * k + 1


def input_stream(k: int) -> int:
    """Stream of population k's Bernoulli input spikes."""
    return 2 * k + 2


def presentation_seed(generator: "torch.Generator | None" = None) -> int:
    """The seed of one presentation, drawn from ``generator`` (default: torch's global CPU RNG)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def site_keys(batch: int, n: int, device: torch.device) -> torch.Tensor:
    """``site_key(b, j)`` for every sample and neuron: ``[B, n]`` int64."""
    b = torch.arange(batch, device=device, dtype=torch.int64)[:, None]
    j = torch.arange(n, device=device, dtype=torch.int64)[None, :]
    return site_key(b, j)


def bernoulli(prob: torch.Tensor, n_steps: int, seed: int, stream: int) -> torch.Tensor:
    """``[T, B, *shape]`` spikes of probability ``prob [B, *shape]`` per step."""
    B = prob.shape[0]
    flat = prob.reshape(B, -1)
    thr = torch.floor(flat.to(torch.float64) * 4294967296.0).to(torch.int64)
    sites = site_keys(B, flat.shape[1], prob.device)
    t = torch.arange(n_steps, device=prob.device, dtype=torch.int64)[:, None, None]
    u = draw(step_key(seed, stream, t), sites)
    return (u < thr).view(n_steps, *prob.shape)
