"""The ANN side of ANN -> SNN transfer (:mod:`snnrun.rl.transfer`): the ReLU policy network,
imitation training (behaviour cloning + DAgger), rollouts under perturbations, and the
activation statistics the conversion scales from.

The expert (:mod:`snnrun.rl.experts`) labels every state where an action is taken (it may read
the emulator, the network sees only the observation).  Training minimises the cross-entropy
between the network's logits and the expert's labels on the aggregated visited states.  Scales:
``lambda_l`` = the ``percentile`` of layer l's positive activations (data-based
normalisation), each layer's weights then scaled by ``lambda_{l-1} / lambda_l``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .experts import make_expert

Expert = Callable[[np.ndarray, Sequence[Any]], np.ndarray]

LogFn = Callable[[dict, Optional[int]], None]

# offsets of the environment seeds of each phase (evaluation uses seed + i, i < eval_episodes)
SEED_TRAIN = 100_000
SEED_NORM = 200_000
SEED_SEARCH = 300_000


# =============================================================================== ANN
class MLPPolicy(nn.Module):
    """``obs -> obs / obs_scale -> Linear, ReLU -> Linear, ReLU -> Linear`` (logits)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], n_actions: int, obs_scale: Optional[torch.Tensor] = None):
        super().__init__()
        sizes = [int(obs_dim), *map(int, hidden), int(n_actions)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        scale = torch.ones(obs_dim) if obs_scale is None else torch.as_tensor(obs_scale, dtype=torch.float32)
        self.register_buffer("obs_scale", scale.clone())

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        return obs / self.obs_scale

    def activations(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer outputs: ReLU activations of the hidden layers, then the logits."""
        x = self.normalise(obs)
        out = []
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
            out.append(x)
        return out

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.activations(obs)[-1]

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of observations ``[B, obs_dim]``."""
        logits = self(torch.as_tensor(np.asarray(obs), dtype=torch.float32))
        return logits.argmax(1).numpy()


# =============================================================================== rollouts
@dataclasses.dataclass(frozen=True)
class Perturbation:
    """What the policy sees instead of the true observation: ``noise`` (Gaussian, std
    ``level * obs_scale`` per feature) or ``dropout`` (each feature set to 0 with probability
    ``level``), fresh every environment step; ``none`` leaves it alone."""

    kind: str = "none"
    level: float = 0.0


def _perturb_rng(env_seed: int, pert: Perturbation) -> np.random.Generator:
    code = {"none": 0, "noise": 1, "dropout": 2}[pert.kind]
    return np.random.default_rng([int(env_seed) & 0xFFFFFFFF, code, round(pert.level * 1e6)])


class Rollout(NamedTuple):
    """What :func:`rollout` returns: episode returns and lengths ``[B]``; with
    ``record_states`` the true observations at which actions were taken ``[N, obs_dim]``
    (float32, flattened) and, with an ``expert``, its actions there ``[N]``."""

    returns: np.ndarray
    lengths: np.ndarray
    states: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


def rollout(policy: Optional[Callable[[np.ndarray], np.ndarray]], make_env: Callable[[], Any], env_seeds: Sequence[int],
            perturbations: Optional[Sequence[Perturbation]] = None, obs_scale: Optional[np.ndarray] = None,
            explore_eps: float = 0.0, explore_rng: Optional[np.random.Generator] = None,
            record_states: bool = False, expert: Optional[Expert] = None) -> Rollout:
    """Run one episode per seed, all in lock step: ``policy`` gets the (perturbed, flattened)
    observations of the unfinished episodes as one batch ``[b, obs_dim]`` each environment
    step (every episode's perturbation stream advances every step all the same).  With
    ``policy=None`` the ``expert`` acts (on the true state and the environments)."""
    B = len(env_seeds)
    perts = list(perturbations) if perturbations is not None else [Perturbation()] * B
    if len(perts) != B:
        raise ValueError(f"{len(perts)} perturbations for {B} episodes")
    if policy is None and expert is None:
        raise ValueError("rollout: give a policy or an expert")
    envs = [make_env() for _ in range(B)]
    try:
        obs = np.stack([np.asarray(env.reset(seed=int(s))[0], dtype=np.float64).reshape(-1)
                        for env, s in zip(envs, env_seeds)])
        scale = np.ones(obs.shape[1]) if obs_scale is None else np.asarray(obs_scale, dtype=np.float64)
        rngs = [_perturb_rng(s, p) for s, p in zip(env_seeds, perts)]
        active = np.ones(B, dtype=bool)
        returns, lengths = np.zeros(B), np.zeros(B, dtype=np.int64)
        states: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        while active.any():
            idx = np.flatnonzero(active)
            label = expert(obs[idx], [envs[i] for i in idx]) if expert is not None else None
            if policy is None:
                actions = np.zeros(B, dtype=np.int64)
                actions[idx] = label
            else:
                seen = obs.copy()
                for i, (p, rng) in enumerate(zip(perts, rngs)):
                    if p.kind == "noise":
                        seen[i] += p.level * scale * rng.standard_normal(obs.shape[1])
                    elif p.kind == "dropout":
                        seen[i][rng.random(obs.shape[1]) < p.level] = 0.0
                actions = np.zeros(B, dtype=np.int64)  # finished episodes: not simulated, ignored
                actions[idx] = np.asarray(policy(seen[idx].astype(np.float32))).astype(np.int64)
            if explore_eps > 0:
                explore_rng = explore_rng if explore_rng is not None else np.random.default_rng(0)
                rnd = explore_rng.random(B) < explore_eps
                actions = np.where(rnd, explore_rng.integers(0, envs[0].action_space.n, B), actions)
            if record_states:
                states.append(obs[idx].astype(np.float32))
                if label is not None:
                    labels.append(label)
            for i in idx:
                o, r, term, trunc, _ = envs[i].step(int(actions[i]))
                obs[i] = np.asarray(o, dtype=np.float64).reshape(-1)
                returns[i] += r
                lengths[i] += 1
                if term or trunc:
                    active[i] = False
    finally:
        for env in envs:
            env.close()
    return Rollout(returns, lengths, np.concatenate(states) if record_states else None,
                   np.concatenate(labels) if labels else None)


def random_policy(n_actions: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Uniformly random actions (the baseline every return is compared with)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 3])
    return lambda obs: rng.integers(0, n_actions, len(obs))


def env_sizes(make_env: Callable[[], Any]) -> tuple[int, int]:
    """(flattened observation size, number of actions) of the environment."""
    env = make_env()
    try:
        return int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    finally:
        env.close()


def train_ann(cfg: Any, make_env: Callable[[], Any], seed: int, log: Optional[LogFn] = None) -> MLPPolicy:
    """Behaviour cloning of the expert, then ``dagger_iters`` DAgger iterations.  Logs
    ``train_loss``, ``train_accuracy``, ``dataset_size`` and ``rollout_return`` (mean return of
    the episodes collected in that iteration, with exploration) per iteration."""
    obs_dim, n_actions = env_sizes(make_env)
    expert = make_expert(cfg.expert)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1])
    next_seed = [seed + SEED_TRAIN]

    def seeds(n: int) -> list[int]:
        out = list(range(next_seed[0], next_seed[0] + n))
        next_seed[0] += n
        return out

    ro = rollout(None, make_env, seeds(cfg.bc_episodes), explore_eps=cfg.explore_eps, explore_rng=rng,
                 record_states=True, expert=expert)
    if cfg.obs_norm == "std":
        obs_scale = torch.as_tensor((ro.states.std(0, dtype=np.float64) + 1e-6) / cfg.obs_gain, dtype=torch.float32)
    else:
        obs_scale = torch.full((obs_dim,), 1.0 / cfg.obs_gain)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPPolicy(obs_dim, cfg.hidden, n_actions, obs_scale)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data_x, data_y = [ro.states], [ro.labels]
    for it in range(cfg.dagger_iters + 1):
        if it > 0:  # DAgger: states visited by the current network, labelled by the expert
            ro = rollout(model.act, make_env, seeds(cfg.dagger_episodes), explore_eps=cfg.explore_eps,
                         explore_rng=rng, record_states=True, expert=expert)
            data_x.append(ro.states)
            data_y.append(ro.labels)
        xs = torch.as_tensor(np.concatenate(data_x))
        ys = torch.as_tensor(np.concatenate(data_y), dtype=torch.int64)
        model.train()
        total, n = 0.0, 0
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(xs), generator=gen)
            for k in range(0, len(xs), cfg.batch_size):
                idx = perm[k:k + cfg.batch_size]
                loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                n += len(idx)
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xs[k:k + 4096]).argmax(1) for k in range(0, len(xs), 4096)])
            acc = float((pred == ys).float().mean())
        if log is not None:
            log({"train_loss": total / max(n, 1), "train_accuracy": acc, "dataset_size": float(len(xs)),
                 "rollout_return": float(np.mean(ro.returns))}, it)
        del xs, ys
    return model


def centre_outputs(ann: MLPPolicy, states: torch.Tensor, quantile: float) -> float:
    """Add ``c`` to every output bias (argmax unchanged) so that the winning output is >= 0 on
    all but a ``quantile`` fraction of ``states``; returns ``c``."""
    with torch.no_grad():
        winner = ann(states).max(1).values
        c = -float(torch.quantile(winner, quantile))
        ann.layers[-1].bias.add_(c)
    return c


# =============================================================================== scales
def data_based_scales(ann: MLPPolicy, states: torch.Tensor, percentile: float = 99.9) -> list[float]:
    """Per-layer normalisation factors: the ``percentile`` of each layer's positive
    activations on ``states`` (1.0 for a layer that is never active)."""
    with torch.no_grad():
        acts = ann.activations(states)
    scales = []
    for a in acts:
        pos = a[a > 0].double()
        scales.append(float(np.percentile(pos.numpy(), percentile)) if pos.numel() else 1.0)
    return scales
