"""Action decoders: output spike counts -> a discrete action.

``most_active``: the output population is split into ``n_actions`` equal groups of
consecutive neurons; the action is the group with the most spikes (ties, including no
spikes at all, broken uniformly at random).  Exploration on top:

* ``epsilon``: with probability epsilon a uniformly random action instead;
* ``softmax``: sample the action with probability ``softmax(group_counts / temperature)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..core.registry import check


@dataclasses.dataclass
class DecoderConfig:
    kind: str = "most_active"  # most_active | softmax
    epsilon: float = 0.0  # exploration at the first episode ...
    epsilon_final: float = 0.0  # ... decayed linearly to this
    epsilon_episodes: int = 1  # ... over this many episodes
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check(self.kind in ("most_active", "softmax"), "kind", f"{self.kind!r} is not one of: most_active, softmax")
        for name in ("epsilon", "epsilon_final"):
            v = getattr(self, name)
            check(0.0 <= v <= 1.0, name, f"must be in [0, 1], got {v}")
        check(self.epsilon_episodes >= 1, "epsilon_episodes", f"must be >= 1, got {self.epsilon_episodes}")
        check(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")


class ActionDecoder:
    def __init__(self, cfg: DecoderConfig, n_actions: int, n_outputs: int, rng: np.random.Generator):
        if n_outputs % n_actions:
            raise ValueError(f"the output population's {n_outputs} neurons do not split into {n_actions} equal action groups")
        self.cfg, self.n_actions, self.group = cfg, int(n_actions), n_outputs // n_actions
        self.rng = rng
        self.epsilon = cfg.epsilon
        self.probs = np.full(self.n_actions, 1.0 / self.n_actions)

    def set_episode(self, episode: int) -> None:
        c = self.cfg
        frac = min(1.0, episode / c.epsilon_episodes)
        self.epsilon = c.epsilon + (c.epsilon_final - c.epsilon) * frac

    def group_counts(self, counts: torch.Tensor) -> np.ndarray:
        """Spikes per action group of one sample's output counts."""
        flat = counts.reshape(-1)
        return flat.view(self.n_actions, self.group).sum(1).float().cpu().numpy()

    def __call__(self, counts: torch.Tensor, explore: bool = True) -> int:
        g = self.group_counts(counts)
        p = np.exp((g - g.max()) / self.cfg.temperature)
        self.probs = p / p.sum()  # softmax(group counts / temperature): the runner's credit uses it
        if explore and self.epsilon > 0 and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        if self.cfg.kind == "softmax" and explore:
            return int(self.rng.choice(self.n_actions, p=self.probs))
        best = np.flatnonzero(g == g.max())
        return int(best[0] if len(best) == 1 else self.rng.choice(best))
