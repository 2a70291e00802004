"""Reinforcement learning: a spiking network acting in a gymnasium environment.

Each environment step: the observation is encoded (``encoder``, e.g. ``receptive_field``
for CartPole's four numbers, ``bernoulli`` for preprocessed Atari frames) into
``encoder.time_ms`` of input spikes; the network runs them with its state carried over
within the episode (reset at episode start); the output population's spike counts are
decoded into an action (:mod:`snnrun.rl.decode`); the environment steps.

How reward reaches the reward-modulated rules (``mstdp`` / ``mstdpet``), ``rl.reward_mode``:

* ``step`` (BindsNET's pipeline): the reward of environment step t is the network's reward
  while it simulates the observation of step t + 1 (and, after the last step, one more
  presentation of the final observation), ``dw = nu * r * eligibility`` as it runs.
* ``episode``: the rules accumulate eligibility over the episode; at its end
  ``dw = nu * (R - b) * accumulated`` with ``R`` the episode's return and ``b`` a running
  mean of past returns (``baseline_momentum``).
* ``return``: each environment step's eligibility ``e_t`` is weighed by the normalised
  discounted return that followed it, ``dw = nu * sum_t (G_t - mean G) / std G * e_t``
  (REINFORCE with STDP eligibility as the policy's gradient estimate).  Computed online
  in O(weights) memory: ``sum_t G_t e_t = sum_k r_k E_k`` with ``E_k = gamma E_{k-1} + e_k``.
  A truncated episode (time limit) is continued by the mean reward ``/ (1 - gamma)``.
  ``return_baseline: episode`` takes mean and std of G over the episode itself;
  ``running`` over past steps (exponential averages with ``baseline_momentum`` per
  episode), which also works for one-step episodes (bandits).

With ``eligibility: action`` (default; ``episode`` / ``return`` modes) the eligibility of a
synapse onto an output neuron of action group ``b`` is multiplied by
``1[b = a] - pi(b)``, ``a`` the action taken and ``pi = softmax(group counts /
temperature)``: the derivative of ``log pi(a)`` with respect to group b's count, so with
the STDP eligibility standing in for d(count)/dw the update is REINFORCE's, whose mean is
zero under the policy (a return baseline then adds no bias).  Plain Hebbian eligibility
moves every group's weights alike (the policy cannot change), and a +-1 sign by the chosen
action is biased against the preferred action in late, low-return states.  ``all`` keeps
the rules' eligibility as is.

``failure_reward`` is added to the reward of a step that terminates the episode (the pole
fell), not one that is truncated.  ``reward_scale`` multiplies the environment's reward.

Logged per episode (step = episode): ``episode_return``, ``episode_length``,
``return_moving_avg`` (last ``window`` episodes); once: ``random_mean_return`` (a uniformly
random policy over ``random_episodes`` episodes on the same seeds, before training),
``mean_return_last100`` (the last 100 training episodes), ``greedy_mean_return`` (after
training: no learning, no exploration, ``eval_episodes`` episodes).
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import nullcontext
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..core.encoders import BernoulliTrain
from ..core.learning.reward import MSTDP
from ..core.network import SimulationError
from ..core.registry import check
from ..run.signals import check_stop
from .decode import ActionDecoder, DecoderConfig


@dataclasses.dataclass
class RLConfig:
    episodes: int = 500
    input_population: str = "X"
    output_population: str = "Out"
    decoder: DecoderConfig = dataclasses.field(default_factory=DecoderConfig)
    reward_mode: str = "return"  # step | episode | return
    reward_scale: float = 1.0
    failure_reward: float = 0.0
    gamma: float = 0.95
    eligibility: str = "action"  # action | all
    return_baseline: str = "episode"  # episode | running
    baseline_momentum: float = 0.9
    random_episodes: int = 100
    eval_episodes: int = 0
    window: int = 100
    learn: bool = True
    video_steps: int = 300
    video_fps: int = 30
    checkpoint_every: int = 100
    checkpoint_minutes: float = 5.0
    live_every: int = 25  # episodes between step-indexed MLflow images (returns, weights; snnrun.run.live)
    max_env_steps: Optional[int] = None
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        check(self.reward_mode in ("step", "episode", "return"), "reward_mode",
              f"{self.reward_mode!r} is not one of: step, episode, return")
        check(self.return_baseline in ("episode", "running"), "return_baseline",
              f"{self.return_baseline!r} is not one of: episode, running")
        check(self.eligibility in ("action", "all"), "eligibility", f"{self.eligibility!r} is not one of: action, all")
        check(0.0 <= self.gamma < 1.0, "gamma", f"must be in [0, 1), got {self.gamma}")
        check(0.0 <= self.baseline_momentum < 1.0, "baseline_momentum", f"must be in [0, 1), got {self.baseline_momentum}")
        for name in ("random_episodes", "eval_episodes", "video_steps"):
            check(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        check(self.window >= 1, "window", f"must be >= 1, got {self.window}")
        check(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        check(self.checkpoint_minutes > 0, "checkpoint_minutes", f"must be > 0, got {self.checkpoint_minutes}")
        check(self.live_every >= 1, "live_every", f"must be >= 1, got {self.live_every}")
        check(self.video_fps >= 1, "video_fps", f"must be >= 1, got {self.video_fps}")


@dataclasses.dataclass
class RLProgress:
    episode: int = 0
    env_steps: int = 0
    returns: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)
    baseline: Optional[float] = None
    baseline_sq: Optional[float] = None
    random_mean_return: Optional[float] = None


class RLRunner:
    """Runs episodes of ``env`` with ``net``; see the module docstring."""

    def __init__(self, cfg: RLConfig, env: Any, net: Any, encoder: Any, sim: Any, seed: int,
                 log: Callable[[dict, Optional[int]], None], save: Callable[[], Any]):
        self.cfg, self.env, self.net, self.encoder, self.sim = cfg, env, net, encoder, sim
        self.seed = int(seed)
        self.log, self.save = log, save
        self.rng = np.random.default_rng(seed)
        self.progress = RLProgress()
        self.on_episode: Optional[Callable[[int], None]] = None  # after each training episode (live plots)
        self.stop_signal: Optional[int] = None  # set by SIGINT / SIGTERM (run.signals.stop_on_signals)
        self._saved_at = time.monotonic()  # the last checkpoint (rl.checkpoint_minutes)
        self.inp, self.out = cfg.input_population, cfg.output_population
        out_pop = net.populations[self.out]
        self.decoder = ActionDecoder(cfg.decoder, int(env.action_space.n), out_pop.n, self.rng)
        self.rules = [c.rule for c in net.connections.values() if isinstance(c.rule, MSTDP)]
        for rule in self.rules:  # the runner decides how reward reaches the rules
            rule.episode = cfg.reward_mode != "step"
        n_act = int(env.action_space.n)
        # per rule: the output neurons' group index along the weights' last axis (None: not gated)
        self.gates: list[Optional[torch.Tensor]] = []
        for rule in self.rules:
            w = rule.conn.w
            gated = (cfg.eligibility == "action" and rule.conn.target is out_pop and w.shape[-1] == out_pop.n)
            self.gates.append(torch.arange(out_pop.n, device=w.device) // (out_pop.n // n_act) if gated else None)
        self.last_frames: list[np.ndarray] = []

    # ------------------------------------------------------------------ one episode
    def _present(self, obs: Any, learn: bool) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.net.device).unsqueeze(0)
        train = self.encoder.train(x)
        spikes = train if isinstance(train, BernoulliTrain) else self.encoder(x)
        return self.sim.run({self.inp: spikes}, learn)[self.out]

    def episode(self, index: int, learn: bool, explore: bool = True, env: Any = None, frames: int = 0,
                seed: Optional[int] = None) -> tuple[float, int]:
        """Play one episode (seeded ``seed`` or ``run seed + index``); return (return, length)."""
        env = env or self.env
        c = self.cfg
        obs, _ = env.reset(seed=self.seed + index if seed is None else seed)
        self.net.reset_state()
        self.net.set_reward(0.0)
        self.decoder.set_episode(index)
        mode = c.reward_mode if learn else None
        if mode in ("episode", "return"):
            E = [torch.zeros_like(r.conn.w) for r in self.rules]
            S1 = [torch.zeros_like(r.conn.w) for r in self.rules]
            S0 = [torch.zeros_like(r.conn.w) for r in self.rules]
            e = [torch.zeros_like(r.conn.w) for r in self.rules]
            rewards: list[float] = []
        self.last_frames = []
        total, length, done, terminated = 0.0, 0, False, False
        while not done:
            if frames and len(self.last_frames) < frames:
                self.last_frames.append(env.render())
            counts = self._present(obs, learn)
            action = self.decoder(counts, explore=explore)
            obs, r, terminated, truncated, _ = env.step(action)
            done = bool(terminated or truncated)
            total += float(r)
            length += 1
            r_eff = float(r) * c.reward_scale + (c.failure_reward if terminated else 0.0)
            if mode == "step":
                self.net.set_reward(r_eff)
                if done:  # the final reward acts on one more presentation (as in BindsNET)
                    self._present(obs, learn)
            elif mode in ("episode", "return"):
                rewards.append(r_eff)
                for k, rule in enumerate(self.rules):
                    rule.take_eligibility(e[k])
                    if self.gates[k] is not None:  # 1[chosen group] - pi(group): zero mean under the policy
                        probs = torch.as_tensor(self.decoder.probs, dtype=e[k].dtype, device=e[k].device)
                        e[k].mul_((self.gates[k] == action).to(e[k].dtype) - probs[self.gates[k]])
                    E[k].mul_(c.gamma).add_(e[k])
                    S1[k].add_(E[k], alpha=r_eff)
                    S0[k].add_(e[k])
        if mode == "episode":
            R = float(sum(rewards))
            b = self.progress.baseline if self.progress.baseline is not None else R
            for k, rule in enumerate(self.rules):
                rule.apply_eligibility(S0[k], R - b)
            m = c.baseline_momentum
            self.progress.baseline = R if self.progress.baseline is None else m * b + (1 - m) * R
        elif mode == "return":
            tail = (np.mean(rewards) / (1.0 - c.gamma)) if (not terminated and rewards) else 0.0
            G = np.zeros(len(rewards))
            acc = tail
            for t in range(len(rewards) - 1, -1, -1):
                acc = rewards[t] + c.gamma * acc
                G[t] = acc
            mu, sd = float(G.mean()), float(G.std())
            if c.return_baseline == "running":
                p, m = self.progress, c.baseline_momentum
                if p.baseline is None:  # first episode: its own statistics (a bandit's first return: no update)
                    p.baseline, p.baseline_sq = mu, float((G ** 2).mean())
                mu, var = p.baseline, max(p.baseline_sq - p.baseline ** 2, 0.0)
                sd = math.sqrt(var) if var > 1e-12 else 1.0
                p.baseline = m * p.baseline + (1 - m) * float(G.mean())
                p.baseline_sq = m * p.baseline_sq + (1 - m) * float((G ** 2).mean())
            if sd > 1e-8:
                for k, rule in enumerate(self.rules):
                    if tail:
                        S1[k].add_(E[k], alpha=c.gamma * tail)
                    rule.apply_eligibility(S1[k].sub_(S0[k], alpha=mu), 1.0 / sd)
        bad = self.net.nonfinite(quick=True)
        if bad is not None:
            raise SimulationError(f"NaN/inf in {bad} during episode {index}")
        return total, length

    # ------------------------------------------------------------------ phases
    def random_baseline(self) -> float:
        """Mean return of a uniformly random policy on the training episodes' seeds."""
        n = self.cfg.random_episodes
        if n == 0:
            return float("nan")
        space = self.env.action_space
        space.seed(self.seed)
        total = 0.0
        for i in range(n):
            self.env.reset(seed=self.seed + i)
            done = False
            while not done:
                _, r, term, trunc, _ = self.env.step(space.sample())
                total += float(r)
                done = bool(term or trunc)
        return total / n

    def train(self) -> None:
        c, p = self.cfg, self.progress
        if p.random_mean_return is None:
            p.random_mean_return = self.random_baseline()
            self.log({"random_mean_return": p.random_mean_return}, None)
        window = deque(p.returns[-c.window:], maxlen=c.window)
        with _bar(c.episodes, p.episode, c.progress) as bar:  # cleared however training ends
            t0, steps0 = time.perf_counter(), p.env_steps
            while p.episode < c.episodes:
                if c.max_env_steps is not None and p.env_steps >= c.max_env_steps:
                    break
                ret, length = self.episode(p.episode, learn=c.learn)
                p.returns.append(ret)
                p.lengths.append(length)
                p.env_steps += length
                p.episode += 1
                window.append(ret)
                avg = float(np.mean(window))
                rate = (p.env_steps - steps0) / max(time.perf_counter() - t0, 1e-9)
                self.log({"episode_return": ret, "episode_length": length, "return_moving_avg": avg,
                          "env_steps_per_s": rate}, p.episode)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(ret=f"{ret:.0f}", avg=f"{avg:.1f}", steps_s=f"{rate:.0f}")
                if self.on_episode is not None and p.episode % c.live_every == 0:
                    self.on_episode(p.episode)
                if (p.episode % c.checkpoint_every == 0 or self.stop_signal
                        or time.monotonic() - self._saved_at >= 60.0 * c.checkpoint_minutes):
                    self.save()
                    self._saved_at = time.monotonic()
                check_stop(self)
        last = p.returns[-100:]
        metrics = {"mean_return_last100": float(np.mean(last)) if last else float("nan"),
                   "episodes": p.episode, "env_steps": p.env_steps}
        if p.random_mean_return and not math.isnan(p.random_mean_return):
            metrics["return_over_random"] = metrics["mean_return_last100"] / p.random_mean_return
        self.log(metrics, None)

    def evaluate(self) -> Optional[float]:
        """Greedy episodes with learning off, on fresh seeds; logs ``greedy_mean_return``."""
        n = self.cfg.eval_episodes
        if n == 0:
            return None
        rets = [self.episode(10**6 + i, learn=False, explore=False)[0] for i in range(n)]
        mean = float(np.mean(rets))
        self.log({"greedy_mean_return": mean}, None)
        return mean

    def record_video(self, env: Any, path: Path) -> Optional[Path]:
        """One greedy episode rendered to an animated GIF (``video_steps`` frames at most)."""
        if self.cfg.video_steps == 0:
            return None
        self.episode(2 * 10**6, learn=False, explore=False, env=env, frames=self.cfg.video_steps)
        if not self.last_frames:
            return None
        return write_gif(self.last_frames, path, self.cfg.video_fps)


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    from PIL import Image

    images = []
    for f in frames:
        img = Image.fromarray(np.asarray(f, dtype=np.uint8))
        if img.width > 320:  # keep the artifact small
            img = img.resize((img.width // 2, img.height // 2))
        images.append(img.convert("P", palette=Image.ADAPTIVE))
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, int(1000 / fps)), loop=0)
    return path


def _bar(total: int, done: int, enabled: bool):
    if not enabled:
        return nullcontext()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="episodes", unit="ep", dynamic_ncols=True, leave=False)
