"""ANN -> SNN policy transfer ("memory transfer") for CartPole-like discrete-action tasks.

Pipeline of :func:`run_transfer`:

1. **ANN.**  A ReLU multilayer perceptron ``obs_dim -> h1 -> h2 -> n_actions`` (three fully
   connected layers with biases; the input is the observation divided by a fixed per-feature
   scale ``obs_scale``, the standard deviation of each feature over the states the expert
   visits) is trained by imitation: behaviour cloning of a linear expert controller
   (push right iff ``gains . obs > 0``; the default gains keep CartPole-v1 at 500 on every
   episode tried) followed by DAgger iterations (roll out the current network, label the
   states it visits with the expert, aggregate, retrain).

2. **Output centring.**  ``argmax`` is unchanged when the same constant is added to every
   output; the last layer's biases are shifted by ``c`` so that the winning output is
   positive on ``1 - output_quantile`` of the states the ANN visits.  Integrate-and-fire
   neurons cannot signal negative values, and without the shift both output neurons are often
   silent (the decision would rest on the tie rule alone).  The shift is applied to the ANN
   itself, so ANN and SNN compute the same function.

3. **Conversion** (rate coding, Rueckauer et al. 2017).  Same topology in a
   :class:`snnrun.core.Network`: populations ``obs`` (analog input, see below) -> ``h1`` ->
   ``h2`` -> ``out`` (integrate-and-fire, threshold 1, rest/reset 0, no refractory period),
   joined by ``dense`` connections ``fc1``, ``fc2``, ``fc3``.  With per-layer scale factors
   ``lambda_l`` (``lambda_0 = 1``) the SNN weights and biases are::

       W'_l = W_l * lambda_{l-1} / lambda_l        b'_l = b_l / lambda_l

   (``W'`` transposed to the engine's ``[n_pre, n_post]`` layout), so a neuron's firing rate
   in spikes per step approximates ``relu(a_l) / lambda_l`` where ``a_l`` is the ANN
   activation.  Each decision (environment step) runs ``time_steps`` steps from a reset
   state; the normalised observation is injected as a constant analog value every step.

   Action = argmax of the output spike counts; among actions tied on count, the one with the
   larger output membrane potential (the residual charge ``v``; with reset by subtraction
   ``count + v`` is exactly the integrated input); if that ties too, the lowest action index.

4. **Scale factors.**  Data-based normalisation: ``lambda_l`` = the ``percentile`` (99.9)
   of the positive activations of layer ``l`` (the centred outputs for the last layer) on
   states visited by the ANN policy.  Then a coordinate search over per-layer multipliers
   ``m_l`` from ``search_grid`` (``lambda_l * m_l``), maximising the SNN's mean return over
   ``search_episodes`` episodes (seeds disjoint from the evaluation seeds), ties broken by the
   SNN/ANN action agreement on the normalisation states, then by keeping the current value.

5. **Evaluation.**  ANN and SNN over ``eval_episodes`` episodes seeded ``seed + i``; then
   both under Gaussian observation noise (std ``level * obs_scale`` per feature, fresh each
   environment step) and observation dropout (each feature independently set to 0 with
   probability ``p`` each environment step), ``robust_episodes`` episodes per level with the
   same environment seeds and the same perturbation random streams for ANN and SNN.

How the engine is used:

* conversion wants reset *by subtraction* (the charge above threshold is kept, so the spike
  count over ``T`` steps of a constant current ``I`` is ``floor(T I / theta)`` instead of
  ``floor(T / ceil(theta / I))``): the ``if`` kind with ``reset_mode: subtract``;
  ``reset: zero`` uses ``reset_mode: zero``;
* the engine's ``input`` population stores its values as boolean spikes; the first layer
  needs the analog (signed) observation.  :class:`AnalogInput` (a subclass of ``Input``)
  keeps ``s`` as floats, so ``fc1`` delivers ``W'_1 z`` to ``h1`` every step;
* every connection delays by one step (BindsNET's order), so layer ``l`` sees its first
  weighted input at step ``l``, while connection biases are added from step 0.  Left as is
  (a few steps out of ``time_steps``); the scale search absorbs what remains.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..core.network import Network
from ..core.neurons.lif import IF, IFParams
from ..core.neurons.simple import Input, InputParams
from ..core.record import SpikeCounter
from ..core.registry import check

from .transfer_ann import (SEED_NORM, SEED_SEARCH, SEED_TRAIN, LogFn, MLPPolicy, Perturbation,  # noqa: F401
                           centre_outputs, data_based_scales, expert_action, rollout, train_ann)


# =============================================================================== config
@dataclasses.dataclass
class TransferConfig:
    # ANN topology: obs_dim -> hidden[0] -> hidden[1] -> n_actions, ReLU, with biases
    hidden: list = dataclasses.field(default_factory=lambda: [32, 32])
    # expert controller for imitation: action 1 (push right) iff gains . obs > 0
    expert_gains: list = dataclasses.field(default_factory=lambda: [0.1, 0.2, 1.0, 0.5])
    bc_episodes: int = 8  # expert episodes for behaviour cloning
    dagger_iters: int = 4  # DAgger iterations after behaviour cloning
    dagger_episodes: int = 8  # episodes rolled out by the current network per iteration
    explore_eps: float = 0.1  # random-action probability while collecting training states
    epochs: int = 15  # passes over the aggregated data set per iteration
    batch_size: int = 256
    lr: float = 3e-3
    # SNN
    time_steps: int = 48  # simulation steps per environment step
    dt_ms: float = 1.0
    reset: str = "subtract"  # subtract | zero (the `if` kind's reset_mode)
    # scale factors
    norm_episodes: int = 8  # ANN episodes whose states set the data-based scales
    percentile: float = 99.9
    output_quantile: float = 0.01  # winner output < 0 on this fraction of states after centring
    search_grid: list = dataclasses.field(default_factory=lambda: [0.35, 0.5, 0.7, 1.0, 1.4])
    search_episodes: int = 8
    search_passes: int = 1
    agreement_states: int = 2000  # normalisation states on which the SNN/ANN agreement is measured
    # evaluation
    eval_episodes: int = 100
    noise_levels: list = dataclasses.field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    dropout_probs: list = dataclasses.field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    robust_episodes: int = 20

    def __post_init__(self) -> None:
        self.hidden = list(self.hidden)
        check(len(self.hidden) == 2 and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden),
              "hidden", f"expected two positive layer sizes, got {self.hidden!r}")
        self.expert_gains = [float(g) for g in self.expert_gains]
        check(len(self.expert_gains) >= 1 and any(g != 0 for g in self.expert_gains), "expert_gains",
              f"expected a non-zero gain vector, got {self.expert_gains!r}")
        for name in ("bc_episodes", "epochs", "batch_size", "time_steps", "norm_episodes", "search_episodes",
                     "agreement_states", "eval_episodes", "robust_episodes"):
            v = getattr(self, name)
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, f"must be an integer >= 1, got {v!r}")
        for name in ("dagger_iters", "dagger_episodes", "search_passes"):
            v = getattr(self, name)
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, f"must be an integer >= 0, got {v!r}")
        check(0.0 <= self.explore_eps < 1.0, "explore_eps", f"must be in [0, 1), got {self.explore_eps}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.dt_ms > 0, "dt_ms", f"must be > 0, got {self.dt_ms}")
        check(self.reset in ("subtract", "zero"), "reset", f"{self.reset!r} is not one of: subtract, zero")
        check(0.0 < self.percentile <= 100.0, "percentile", f"must be in (0, 100], got {self.percentile}")
        check(0.0 <= self.output_quantile < 1.0, "output_quantile", f"must be in [0, 1), got {self.output_quantile}")
        self.search_grid = [float(m) for m in self.search_grid]
        check(len(self.search_grid) >= 1 and all(m > 0 for m in self.search_grid), "search_grid",
              f"expected positive multipliers, got {self.search_grid!r}")
        self.noise_levels = [float(x) for x in self.noise_levels]
        check(all(x >= 0 and math.isfinite(x) for x in self.noise_levels), "noise_levels",
              f"noise stds must be finite and >= 0, got {self.noise_levels!r}")
        self.dropout_probs = [float(p) for p in self.dropout_probs]
        check(all(0.0 <= p <= 1.0 for p in self.dropout_probs), "dropout_probs",
              f"probabilities must be in [0, 1], got {self.dropout_probs!r}")


# =============================================================================== SNN
class AnalogInput(Input):
    """Input population whose output ``s`` is the given real value (not a boolean spike):
    the analog first-layer input of rate-based conversion."""

    kind = "analog_input"

    fused = False  # real-valued output: the fused kernel's spike lists cannot carry it

    def allocate(self, batch: int, device: Any = None) -> None:
        super().allocate(batch, device)
        self.s = self.zeros()

    def step(self, i_exc: torch.Tensor, i_inh: Optional[torch.Tensor] = None) -> torch.Tensor:
        self.s.copy_(i_exc)
        return self.s


def make_if_population(n: int, reset: str, dt: float) -> IF:
    params = IFParams(n=int(n), v_rest_mv=0.0, v_reset_mv=0.0, v_thresh_mv=1.0, refrac_ms=0.0,
                      reset_mode="subtract" if reset == "subtract" else "zero")
    return IF(params, dt=dt)


LAYER_NAMES = ("h1", "h2", "out")
CONN_NAMES = ("fc1", "fc2", "fc3")


def build_snn(sizes: Sequence[int], reset: str = "subtract", dt_ms: float = 1.0, bias: bool = True) -> Network:
    """The spiking network ``obs -> h1 -> h2 -> out`` (``sizes`` = [obs_dim, h1, h2,
    n_actions]) with placeholder weights; see :func:`set_snn_weights`."""
    net = Network(dt_ms=dt_ms)
    net.add_population("obs", AnalogInput(InputParams(n=int(sizes[0])), dt=dt_ms))
    src = "obs"
    for name, conn, n in zip(LAYER_NAMES, CONN_NAMES, sizes[1:]):
        net.add_population(name, make_if_population(n, reset, dt_ms))
        net.add_connection(conn, src, name, "dense", weight=0.0, bias=0.0 if bias else None)
        src = name
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


def set_snn_weights(net: Network, ann: MLPPolicy, scales: Sequence[float]) -> None:
    for conn, (w, b) in zip(CONN_NAMES, converted_parameters(ann, scales)):
        net.set_weights(conn, w)
        c = net.connections[conn]
        if b is not None:
            c.b.copy_(b)


class SpikingPolicy:
    """The converted network as a policy: ``act(obs_batch) -> actions``."""

    def __init__(self, ann: MLPPolicy, scales: Sequence[float], time_steps: int, reset: str = "subtract",
                 dt_ms: float = 1.0):
        self.ann = ann
        self.time_steps = int(time_steps)
        sizes = [ann.layers[0].in_features] + [layer.out_features for layer in ann.layers]
        self.net = build_snn(sizes, reset, dt_ms, bias=ann.layers[0].bias is not None)
        self.counter = SpikeCounter(["h1", "h2", "out"])
        self.scales: list[float] = []
        self.set_scales(scales)

    def set_scales(self, scales: Sequence[float]) -> None:
        self.scales = [float(s) for s in scales]
        set_snn_weights(self.net, self.ann, self.scales)

    @torch.no_grad()
    def run(self, obs: np.ndarray | torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Simulate ``time_steps`` steps from rest for each observation of the batch:
        spike counts ``{h1, h2, out}`` ``[B, n]`` and the output membrane potential ``[B, n_actions]``."""
        z = self.ann.normalise(torch.as_tensor(np.asarray(obs), dtype=torch.float32))
        x = z.unsqueeze(0).expand(self.time_steps, *z.shape)
        self.net.run({"obs": x}, recorders=[self.counter], learning=False, reset=True)
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


def action_agreement(snn: SpikingPolicy, ann: MLPPolicy, states: torch.Tensor) -> float:
    with torch.no_grad():
        a_ann = ann(states).argmax(1).numpy()
    return float(np.mean(snn.act(states.numpy()) == a_ann))


def search_scales(snn: SpikingPolicy, ann: MLPPolicy, base: Sequence[float], cfg: TransferConfig,
                  make_env: Callable[[], Any], seed: int, states: torch.Tensor,
                  log: Optional[LogFn] = None) -> tuple[list[float], dict]:
    """Coordinate search over per-layer multipliers of ``base`` (see module docstring).
    Leaves ``snn`` at the chosen scales and returns them with the search's best score."""
    seeds = [seed + SEED_SEARCH + i for i in range(cfg.search_episodes)]
    cache: dict[tuple, tuple[float, float]] = {}
    n_eval = [0]

    def score(mult: tuple) -> tuple[float, float]:
        if mult not in cache:
            snn.set_scales([b * m for b, m in zip(base, mult)])
            ret, _ = rollout(snn.act, make_env, seeds)
            cache[mult] = (float(np.mean(ret)), action_agreement(snn, ann, states))
            if log is not None:
                log({"search_return": cache[mult][0], "search_agreement": cache[mult][1]}, n_eval[0])
            n_eval[0] += 1
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


# =============================================================================== evaluation
def _level_key(x: float) -> str:
    return f"{x:g}"


def robustness(ann_act: Callable, snn_act: Callable, cfg: TransferConfig, make_env: Callable[[], Any], seed: int,
               obs_scale: np.ndarray) -> dict[str, float]:
    """Mean returns of ANN and SNN under every noise level and dropout probability (all
    conditions of one network simulated as one batch)."""
    conds = [Perturbation("noise", x) for x in cfg.noise_levels] + [Perturbation("dropout", p) for p in cfg.dropout_probs]
    seeds = [seed + i for _ in conds for i in range(cfg.robust_episodes)]
    perts = [c for c in conds for _ in range(cfg.robust_episodes)]
    out: dict[str, float] = {}
    for name, act in (("ann", ann_act), ("snn", snn_act)):
        ret, _ = rollout(act, make_env, seeds, perts, obs_scale=obs_scale)
        ret = ret.reshape(len(conds), cfg.robust_episodes)
        for c, r in zip(conds, ret):
            out[f"{name}_return_{c.kind}_{_level_key(c.level)}"] = float(r.mean())
    return out


def plot_robustness(metrics: dict[str, float], noise_levels: Sequence[float], dropout_probs: Sequence[float]):
    """Mean return vs noise std and vs dropout probability, ANN vs SNN (two panels)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind, levels, xlabel in ((axes[0], "noise", noise_levels, "input noise std (x feature scale)"),
                                     (axes[1], "dropout", dropout_probs, "input dropout probability")):
        for name, style in (("ann", "o-"), ("snn", "s--")):
            ys = [metrics[f"{name}_return_{kind}_{_level_key(x)}"] for x in levels]
            ax.plot(list(levels), ys, style, label=name.upper())
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 520)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean return")
    axes[0].legend()
    fig.suptitle("CartPole: ANN vs converted SNN under input perturbations")
    return fig


# =============================================================================== entry point
def run_transfer(cfg: TransferConfig, make_env: Callable[[], Any], seed: int, log: LogFn) -> dict:
    """Train the ANN, convert it, search the scales, evaluate (see module docstring).

    Returns ``{"metrics", "figure", "ann", "snn" (the Network), "scales", "snn_policy",
    "obs_scale"}``; ``log(metrics, step)`` gets the training curve (step = iteration), the
    scale search (step = evaluation) and the final metrics (step None)."""
    t0 = time.perf_counter()
    ann = train_ann(cfg, make_env, seed, log)
    obs_scale = ann.obs_scale.numpy().astype(np.float64)
    t_train = time.perf_counter() - t0

    # states visited by the ANN policy -> output centring and data-based scales
    _, S = rollout(ann.act, make_env, [seed + SEED_NORM + i for i in range(cfg.norm_episodes)], record_states=True)
    states = torch.as_tensor(S, dtype=torch.float32)
    shift = centre_outputs(ann, states, cfg.output_quantile)
    base = data_based_scales(ann, states, cfg.percentile)
    pick = torch.as_tensor(np.random.default_rng([seed & 0xFFFFFFFF, 2]).permutation(len(states))[:cfg.agreement_states])
    agree_states = states[pick]

    t1 = time.perf_counter()
    snn = SpikingPolicy(ann, base, cfg.time_steps, cfg.reset, cfg.dt_ms)
    base_agreement = action_agreement(snn, ann, agree_states)
    scales, search = search_scales(snn, ann, base, cfg, make_env, seed, agree_states, log)
    t_search = time.perf_counter() - t1

    t2 = time.perf_counter()
    eval_seeds = [seed + i for i in range(cfg.eval_episodes)]
    ann_ret, _ = rollout(ann.act, make_env, eval_seeds)
    snn_ret, _ = rollout(snn.act, make_env, eval_seeds)
    rob = robustness(ann.act, snn.act, cfg, make_env, seed, obs_scale)
    t_eval = time.perf_counter() - t2

    ann_mean, snn_mean = float(ann_ret.mean()), float(snn_ret.mean())
    metrics: dict[str, float] = {
        "ann_mean_return": ann_mean, "ann_std_return": float(ann_ret.std()), "ann_min_return": float(ann_ret.min()),
        "snn_mean_return": snn_mean, "snn_std_return": float(snn_ret.std()), "snn_min_return": float(snn_ret.min()),
        "snn_to_ann_ratio": snn_mean / ann_mean if ann_mean > 0 else float("nan"),
        "snn_ann_agreement": action_agreement(snn, ann, agree_states),
        "snn_ann_agreement_unsearched": base_agreement,
        "output_shift": shift,
        **{f"scale_layer{k + 1}": s for k, s in enumerate(scales)},
        **{f"base_scale_layer{k + 1}": s for k, s in enumerate(base)},
        **{f"obs_scale_{k}": float(s) for k, s in enumerate(obs_scale)},
        **search,
        **rob,
        "time_train_s": t_train, "time_search_s": t_search, "time_eval_s": t_eval,
        "time_total_s": time.perf_counter() - t0,
    }
    log(metrics, None)
    fig = plot_robustness(metrics, cfg.noise_levels, cfg.dropout_probs)
    return {"metrics": metrics, "figure": fig, "ann": ann, "snn": snn.net, "scales": scales, "snn_policy": snn,
            "obs_scale": obs_scale}
