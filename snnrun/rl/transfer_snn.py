"""The spiking side of ANN -> SNN transfer (:mod:`snnrun.rl.transfer`): the converted network,
the policy that runs it, the decision rule and the per-layer scale search.

Conversion (rate coding, Rueckauer et al. 2017): the ANN ``obs -> h1 -> ... -> hK -> out``
becomes integrate-and-fire populations ``h1 .. hK, out`` (threshold 1, rest/reset 0, no
refractory period) joined by ``dense`` connections ``fc2 .. fc{K+1}``.  With per-layer scale
factors ``lambda_l`` (``lambda_0 = 1``)::

    W'_l = W_l * lambda_{l-1} / lambda_l        b'_l = b_l / lambda_l

(``W'`` in the engine's ``[n_pre, n_post]`` layout), so a neuron's rate in spikes per step
approximates ``relu(a_l) / lambda_l``.  Each decision runs ``time_steps`` steps from rest.

The first layer, ``fc1``: the normalised observation ``z`` is an analog input held constant
for the whole decision, so what ``fc1`` delivers to ``h1`` is the constant current
``W'_1 z + b'_1``.  It is computed once per decision (one matrix product, as for the ANN)
and injected into ``h1``, instead of multiplying the same ``z`` by ``W'_1`` at every step
(``time_steps`` times the work: 48 products of 6400 x 1000 per Atari frame).  The timing is
the engine's: a connection delivers its input one step late and its bias from step 0, so
``h1`` gets ``b'_1`` at step 0 and ``W'_1 z + b'_1`` at steps 1 .. T-1.

Decision: argmax of the output spike counts; among tied actions the larger output membrane
potential (the residual charge; with reset by subtraction ``count + v`` is the integrated
input); then the lowest index.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..core.network import Network
from ..core.neurons.lif import IF, IFParams
from ..core.record import SpikeCounter
from .transfer_ann import SEED_SEARCH, LogFn, MLPPolicy, rollout


def make_if_population(n: int, reset: str, dt: float) -> IF:
    """Integrate-and-fire, threshold 1, rest and reset 0, no refractory period; ``reset``:
    ``subtract`` keeps the charge above threshold (spike count over T steps of a constant
    current I is ``floor(T I)``), ``zero`` drops it."""
    params = IFParams(n=int(n), v_rest_mv=0.0, v_reset_mv=0.0, v_thresh_mv=1.0, refrac_ms=0.0,
                      reset_mode="subtract" if reset == "subtract" else "zero")
    return IF(params, dt=dt)


def layer_names(n_layers: int) -> list[str]:
    """Populations of an ANN with ``n_layers`` linear layers: ``h1 .. h{n-1}, out``."""
    return [f"h{k + 1}" for k in range(n_layers - 1)] + ["out"]


def build_snn(sizes: Sequence[int], reset: str = "subtract", dt_ms: float = 1.0) -> Network:
    """The populations ``h1 .. out`` (``sizes`` = [obs_dim, h1, ..., n_actions]) and the
    connections ``fc2 ..`` between them, placeholder weights (see :func:`set_snn_weights`)."""
    net = Network(dt_ms=dt_ms)
    names = layer_names(len(sizes) - 1)
    for name, n in zip(names, sizes[1:]):
        net.add_population(name, make_if_population(n, reset, dt_ms))
    for k in range(1, len(names)):
        net.add_connection(f"fc{k + 1}", names[k - 1], names[k], "dense", weight=0.0, bias=0.0)
    net.eval()
    return net


def converted_parameters(ann: MLPPolicy, scales: Sequence[float]) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """``(W'_l [n_pre, n_post], b'_l)`` per layer: ``W_l^T lambda_{l-1} / lambda_l``, ``b_l / lambda_l``."""
    out = []
    prev = 1.0
    for layer, lam in zip(ann.layers, scales):
        w = layer.weight.detach().T * (prev / lam)
        b = None if layer.bias is None else layer.bias.detach() / lam
        out.append((w.contiguous(), b))
        prev = lam
    return out


class SpikingPolicy:
    """The converted network as a policy: ``act(obs_batch) -> actions``.  ``net`` holds
    ``h1 .. out``; ``w_in``, ``b_in`` are ``fc1`` (see the module docstring)."""

    def __init__(self, ann: MLPPolicy, scales: Sequence[float], time_steps: int, reset: str = "subtract",
                 dt_ms: float = 1.0):
        self.ann = ann
        self.time_steps = int(time_steps)
        sizes = [ann.layers[0].in_features] + [layer.out_features for layer in ann.layers]
        self.names = layer_names(len(ann.layers))
        self.net = build_snn(sizes, reset, dt_ms)
        self.counter = SpikeCounter(self.names)
        self.w_in = torch.zeros(sizes[0], sizes[1])
        self.b_in = torch.zeros(sizes[1])
        self.scales: list[float] = []
        self.set_scales(scales)

    def set_scales(self, scales: Sequence[float]) -> None:
        self.scales = [float(s) for s in scales]
        params = converted_parameters(self.ann, self.scales)
        w, b = params[0]
        self.w_in.copy_(w)
        self.b_in.copy_(b if b is not None else torch.zeros_like(self.b_in))
        for k, (w, b) in enumerate(params[1:], start=2):
            self.net.set_weights(f"fc{k}", w)
            c = self.net.connections[f"fc{k}"]
            c.b.copy_(b if b is not None else torch.zeros_like(c.b))

    def state_dict(self) -> dict[str, Any]:
        return {"network": self.net.state_dict(), "fc1.w": self.w_in.clone(), "fc1.b": self.b_in.clone(),
                "scales": list(self.scales)}

    @torch.no_grad()
    def run(self, obs: np.ndarray | torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Simulate ``time_steps`` steps from rest for each observation of the batch: spike
        counts per population ``[B, n]`` and the output membrane potential ``[B, n_actions]``."""
        z = self.ann.normalise(torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(len(obs), -1))
        drive = torch.addmm(self.b_in, z, self.w_in)  # b'_1 + z W'_1, once per decision
        current = torch.empty(self.time_steps, len(z), drive.shape[1])
        current[0] = self.b_in  # the connection's one-step delay: bias only at step 0
        current[1:] = drive
        self.net.run({self.names[0]: current}, recorders=[self.counter], learning=False, reset=True)
        counts = {k: v.clone() for k, v in self.counter.counts.items()}
        return counts, self.net.populations["out"].v.clone()

    def act(self, obs: np.ndarray) -> np.ndarray:
        counts, v = self.run(obs)
        return decide(counts["out"], v)


def decide(counts: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    """Argmax of spike counts; ties -> larger membrane potential; then the lowest index."""
    c = counts.to(torch.float64)
    tied = c == c.max(1, keepdim=True).values
    key = torch.where(tied, v.to(torch.float64), torch.full_like(c, -math.inf))
    return key.argmax(1).numpy()


def action_agreement(snn: SpikingPolicy, ann: MLPPolicy, states: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of ``states`` on which the SNN and the ANN pick the same action."""
    same = 0
    with torch.no_grad():
        for k in range(0, len(states), chunk):
            x = states[k:k + chunk]
            same += int((snn.act(x.numpy()) == ann(x).argmax(1).numpy()).sum())
    return same / max(len(states), 1)


def search_scales(snn: SpikingPolicy, ann: MLPPolicy, base: Sequence[float], cfg: Any,
                  make_env: Callable[[], Any], seed: int, states: torch.Tensor,
                  log: Optional[LogFn] = None) -> tuple[list[float], dict]:
    """Coordinate search over per-layer multipliers ``m_l`` from ``cfg.search_grid``
    (scales ``base_l * m_l``), maximising the SNN's mean return over ``search_episodes``
    episodes (seeds disjoint from the evaluation seeds), ties broken by the SNN/ANN action
    agreement on ``states``, then by keeping the current value.  At most
    ``1 + search_passes * n_layers * len(search_grid)`` evaluations.  Leaves ``snn`` at the
    chosen scales and returns them with the search's best score."""
    seeds = [seed + SEED_SEARCH + i for i in range(cfg.search_episodes)]
    cache: dict[tuple, tuple[float, float]] = {}

    def score(mult: tuple) -> tuple[float, float]:
        if mult not in cache:
            snn.set_scales([b * m for b, m in zip(base, mult)])
            ret = rollout(snn.act, make_env, seeds).returns
            cache[mult] = (float(np.mean(ret)), action_agreement(snn, ann, states))
            if log is not None:
                log({"search_return": cache[mult][0], "search_agreement": cache[mult][1]}, len(cache) - 1)
        return cache[mult]

    current = tuple(1.0 for _ in base)
    best = score(current)
    for _ in range(cfg.search_passes):
        changed = False
        for layer in range(len(base)):
            for m in cfg.search_grid:
                cand = tuple(m if k == layer else c for k, c in enumerate(current))
                s = score(cand)
                if s > best:
                    best, current, changed = s, cand, True
        if not changed:
            break
    chosen = [b * m for b, m in zip(base, current)]
    snn.set_scales(chosen)
    return chosen, {"search_best_return": best[0], "search_best_agreement": best[1], "search_evaluations": float(len(cache)),
                    **{f"scale_multiplier{k + 1}": m for k, m in enumerate(current)}}
