"""ANN -> SNN policy transfer ("memory transfer") for discrete-action environments
(CartPole from its state, Atari Breakout from its frames).

Pipeline of :func:`run_transfer`:

1. **ANN.**  A ReLU multilayer perceptron ``obs_dim -> hidden... -> n_actions`` (fully
   connected layers with biases; the input is the flattened observation divided by a fixed
   per-feature scale -- the standard deviation of each feature over the states the expert visits
   with ``obs_norm: std``, 1 with ``none`` (pixels) -- and multiplied by ``obs_gain``; a gain
   of 10 on [0, 1] pixels is what lets Adam move the weights of the few pixels a ball covers
   within a few epochs) is trained by imitation of an expert
   (:mod:`snnrun.rl.experts`: a linear controller on CartPole's state, a RAM-reading paddle
   controller on Breakout): behaviour cloning, then DAgger iterations (roll out the current
   network, label the states it visits with the expert, aggregate, retrain).

2. **Output centring.**  ``argmax`` is unchanged when the same constant is added to every
   output; the last layer's biases are shifted by ``c`` so that the winning output is
   positive on ``1 - output_quantile`` of the states the ANN visits (integrate-and-fire
   neurons cannot signal negative values).  Applied to the ANN itself, so ANN and SNN compute
   the same function.

3. **Conversion** (:mod:`snnrun.rl.transfer_snn`): integrate-and-fire populations of the same
   sizes, weights ``W_l lambda_{l-1} / lambda_l``, biases ``b_l / lambda_l``, rate coded over
   ``time_steps`` steps per environment step; action = argmax of output spike counts.
   BindsNET's article uses LIF neurons with rest -65 mV, threshold -52 mV and no refractory
   period: an integrate-and-fire neuron with a 13 mV gap, which the per-layer factors absorb
   (threshold 1 here; the article's leak is left out: it only lowers every rate).

4. **Scale factors.**  Data-based normalisation: ``lambda_l`` = the ``percentile`` (99.9)
   of the positive activations of layer ``l`` (the centred outputs for the last layer) on
   states visited by the ANN policy.  Then a coordinate search over per-layer multipliers
   (``search_grid``), maximising the SNN's mean return (:func:`search_scales`).

5. **Evaluation.**  ANN, SNN and a uniformly random policy over ``eval_episodes`` episodes
   seeded ``seed + i`` (means and standard errors); then ANN and SNN under Gaussian
   observation noise (std ``level`` times the feature's standard deviation with ``obs_norm:
   std``, ``level`` itself with ``none``; fresh each environment step) and
   observation dropout (each feature -- each pixel -- independently set to 0 with probability
   ``p`` each environment step), ``robust_episodes`` episodes per level with the same
   environment seeds and the same perturbation random streams for ANN and SNN.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..core.registry import check
from .transfer_ann import (SEED_NORM, LogFn, Perturbation, centre_outputs, data_based_scales,  # noqa: F401
                           env_sizes, random_policy, rollout, train_ann, MLPPolicy)
from .transfer_snn import (SpikingPolicy, action_agreement, converted_parameters, decide,  # noqa: F401
                           make_if_population, search_scales)


# =============================================================================== config
def _positive_int(v: Any, minimum: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


@dataclasses.dataclass
class TransferConfig:
    # ANN topology: obs_dim -> hidden... -> n_actions, ReLU, with biases
    hidden: list = dataclasses.field(default_factory=lambda: [32, 32])
    # the expert to imitate: {kind: ..., **params} from snnrun.rl.experts
    expert: dict = dataclasses.field(default_factory=lambda: {"kind": "linear", "gains": [0.1, 0.2, 1.0, 0.5]})
    obs_norm: str = "std"  # std: divide each feature by its std over the expert's states | none
    obs_gain: float = 1.0  # the normalised input is multiplied by this (pixels in [0, 1]: 10)
    bc_episodes: int = 8  # expert episodes for behaviour cloning
    dagger_iters: int = 4  # DAgger iterations after behaviour cloning
    dagger_episodes: int = 8  # episodes rolled out by the current network per iteration
    explore_eps: float = 0.1  # random-action probability while collecting training states
    epochs: int = 15  # passes over the aggregated data set per iteration
    batch_size: int = 256
    lr: float = 3e-3
    threads: int = 1  # torch intra-op threads (1 for small networks; more for 6400 inputs)
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
        check(len(self.hidden) >= 1 and all(_positive_int(h) for h in self.hidden),
              "hidden", f"expected one or more positive layer sizes, got {self.hidden!r}")
        check(isinstance(self.expert, dict) and isinstance(self.expert.get("kind"), str), "expert",
              f"expected a mapping with a 'kind', got {self.expert!r}")
        check(self.obs_norm in ("std", "none"), "obs_norm", f"{self.obs_norm!r} is not one of: std, none")
        for name in ("bc_episodes", "epochs", "batch_size", "time_steps", "norm_episodes", "search_episodes",
                     "agreement_states", "eval_episodes", "robust_episodes", "threads"):
            v = getattr(self, name)
            check(_positive_int(v), name, f"must be an integer >= 1, got {v!r}")
        for name in ("dagger_iters", "dagger_episodes", "search_passes"):
            v = getattr(self, name)
            check(_positive_int(v, 0), name, f"must be an integer >= 0, got {v!r}")
        check(0.0 <= self.explore_eps < 1.0, "explore_eps", f"must be in [0, 1), got {self.explore_eps}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.obs_gain > 0 and math.isfinite(self.obs_gain), "obs_gain", f"must be > 0, got {self.obs_gain}")
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


# =============================================================================== evaluation
def _level_key(x: float) -> str:
    return f"{x:g}"


def standard_error(returns: np.ndarray) -> float:
    """Standard error of the mean: sample std / sqrt n (NaN for a single episode)."""
    r = np.asarray(returns, dtype=np.float64)
    return float(r.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else float("nan")


def summarise(prefix: str, returns: np.ndarray) -> dict[str, float]:
    """Mean, standard error, std and min of episode returns."""
    r = np.asarray(returns, dtype=np.float64)
    return {f"{prefix}_mean_return": float(r.mean()), f"{prefix}_se_return": standard_error(r),
            f"{prefix}_std_return": float(r.std()), f"{prefix}_min_return": float(r.min())}


def robustness(ann_act: Callable, snn_act: Callable, cfg: TransferConfig, make_env: Callable[[], Any], seed: int,
               obs_scale: np.ndarray) -> dict[str, float]:
    """Mean returns (and their standard errors) of ANN and SNN under every noise level and
    dropout probability (all conditions of one network simulated as one batch)."""
    conds = [Perturbation("noise", x) for x in cfg.noise_levels] + [Perturbation("dropout", p) for p in cfg.dropout_probs]
    seeds = [seed + i for _ in conds for i in range(cfg.robust_episodes)]
    perts = [c for c in conds for _ in range(cfg.robust_episodes)]
    out: dict[str, float] = {}
    for name, act in (("ann", ann_act), ("snn", snn_act)):
        ret = rollout(act, make_env, seeds, perts, obs_scale=obs_scale).returns
        for c, r in zip(conds, ret.reshape(len(conds), cfg.robust_episodes)):
            key = f"{name}_return_{c.kind}_{_level_key(c.level)}"
            out[key] = float(r.mean())
            out[key.replace("_return_", "_se_", 1)] = standard_error(r)
    return out


def plot_robustness(metrics: dict[str, float], noise_levels: Sequence[float], dropout_probs: Sequence[float],
                    title: str = "ANN vs converted SNN under input perturbations"):
    """Mean return (+- one standard error) vs noise std and vs dropout probability, ANN vs
    SNN (two panels), the random policy's return as a dotted line."""
    from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind, levels, xlabel in ((axes[0], "noise", noise_levels, "input noise std (x feature scale)"),
                                     (axes[1], "dropout", dropout_probs, "input dropout probability")):
        for name, style in (("ann", "o-"), ("snn", "s--")):
            ys = [metrics[f"{name}_return_{kind}_{_level_key(x)}"] for x in levels]
            se = [metrics.get(f"{name}_se_{kind}_{_level_key(x)}", 0.0) for x in levels]
            ax.errorbar(list(levels), ys, yerr=np.nan_to_num(se), fmt=style, capsize=3, label=name.upper())
        if "random_mean_return" in metrics:
            ax.axhline(metrics["random_mean_return"], color="grey", linestyle=":", label="random")
        ax.set_xlabel(xlabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean return")
    axes[0].legend()
    fig.suptitle(title)
    return fig


# =============================================================================== entry point
def run_transfer(cfg: TransferConfig, make_env: Callable[[], Any], seed: int, log: LogFn, title: str = "") -> dict:
    """Train the ANN, convert it, search the scales, evaluate (see module docstring).

    Returns ``{"metrics", "figure", "ann", "snn" (the Network h1 .. out), "snn_policy",
    "scales", "obs_scale"}``; ``log(metrics, step)`` gets the training curve (step =
    iteration), the scale search (step = evaluation) and the final metrics (step None)."""
    t0 = time.perf_counter()
    ann = train_ann(cfg, make_env, seed, log)
    obs_scale = ann.obs_scale.numpy().astype(np.float64) * cfg.obs_gain  # the noise unit: std or 1
    t_train = time.perf_counter() - t0

    # states visited by the ANN policy -> output centring and data-based scales
    states = torch.as_tensor(rollout(ann.act, make_env, [seed + SEED_NORM + i for i in range(cfg.norm_episodes)],
                                     record_states=True).states)
    shift = centre_outputs(ann, states, cfg.output_quantile)
    base = data_based_scales(ann, states, cfg.percentile)
    pick = torch.as_tensor(np.random.default_rng([seed & 0xFFFFFFFF, 2]).permutation(len(states))[:cfg.agreement_states])
    agree_states = states[pick]
    del states

    t1 = time.perf_counter()
    snn = SpikingPolicy(ann, base, cfg.time_steps, cfg.reset, cfg.dt_ms)
    base_agreement = action_agreement(snn, ann, agree_states)
    scales, search = search_scales(snn, ann, base, cfg, make_env, seed, agree_states, log)
    t_search = time.perf_counter() - t1

    t2 = time.perf_counter()
    eval_seeds = [seed + i for i in range(cfg.eval_episodes)]
    ann_ret = rollout(ann.act, make_env, eval_seeds).returns
    snn_ret = rollout(snn.act, make_env, eval_seeds).returns
    rand_ret = rollout(random_policy(env_sizes(make_env)[1], seed), make_env, eval_seeds).returns
    rob = robustness(ann.act, snn.act, cfg, make_env, seed, obs_scale)
    t_eval = time.perf_counter() - t2

    ann_mean, snn_mean = float(ann_ret.mean()), float(snn_ret.mean())
    metrics: dict[str, float] = {
        **summarise("ann", ann_ret), **summarise("snn", snn_ret), **summarise("random", rand_ret),
        "snn_to_ann_ratio": snn_mean / ann_mean if ann_mean > 0 else float("nan"),
        "snn_ann_agreement": action_agreement(snn, ann, agree_states),
        "snn_ann_agreement_unsearched": base_agreement,
        "output_shift": shift,
        **{f"scale_layer{k + 1}": s for k, s in enumerate(scales)},
        **{f"base_scale_layer{k + 1}": s for k, s in enumerate(base)},
        **({f"obs_scale_{k}": float(s) for k, s in enumerate(obs_scale)} if cfg.obs_norm == "std" else {}),
        **search,
        **rob,
        "time_train_s": t_train, "time_search_s": t_search, "time_eval_s": t_eval,
        "time_total_s": time.perf_counter() - t0,
    }
    log(metrics, None)
    fig = plot_robustness(metrics, cfg.noise_levels, cfg.dropout_probs, title or "ANN vs converted SNN under input perturbations")
    return {"metrics": metrics, "figure": fig, "ann": ann, "snn": snn.net, "scales": scales, "snn_policy": snn,
            "obs_scale": obs_scale}
