"""Reinforcement learning (``train.kind: rl``): a spiking agent plays a gymnasium
environment, learning from its reward (MSTDP / MSTDP-ET); the episode loop is
:class:`snnrun.rl.runner.RLRunner`, this module builds it for the run lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..build import build_encoder, build_network
from ..config.validate import ConfigError, from_dict
from ..run import console
from ..run.backend import make_backend
from ..run import live
from ..run.live import LivePlots
from ..run.task import Task, register_task
from .envs import EnvConfig, make_env
from .runner import RLConfig, RLRunner


def env_config(run: Any) -> EnvConfig:
    """``env:`` validated; its seed defaults to the run's."""
    env_cfg = from_dict(EnvConfig, run.raw.get("env") or {}, "env")
    if env_cfg.seed is None:
        env_cfg.seed = run.cfg.seed
    return env_cfg


@register_task("rl")
class RLTask(Task):
    """Episodes of ``env`` with learning from reward, then greedy evaluation episodes."""

    headline = "mean_return_last100"
    sections = ("env", "rl")

    def __init__(self, run: Any):
        super().__init__(run)
        cfg = run.cfg
        self.env_cfg = env_config(run)
        self.rl_cfg = rl_cfg = from_dict(RLConfig, run.raw.get("rl") or {}, "rl")
        rl_cfg.progress = rl_cfg.progress and cfg.train.progress
        self.env = make_env(self.env_cfg)
        self.net = build_network(cfg.network, dt_ms=cfg.dt_ms, device=run.device, seed=cfg.seed)
        encoder = build_encoder(cfg.encoder, dt_ms=cfg.dt_ms)
        check_shapes(self.env, self.net, encoder, rl_cfg)
        sim = make_backend(self.net, [rl_cfg.output_population], cfg.backend, run.device)
        self.backend, self.backend_note = sim.backend, sim.note
        if rl_cfg.learn and not any(c.rule is not None and c.learning_enabled and c.rule.compiled.uses_reward
                                    for c in self.net.connections.values()):
            console.warn("no learning rule reads `reward`: the agent's weights do not learn from the "
                         "environment's reward")
        if run.device.type == "cpu":
            torch.set_num_threads(1)  # small networks: intra-op threads only add overhead
        self.runner = RLRunner(rl_cfg, self.env, self.net, encoder, sim, self.env_cfg.seed, run.log, run.save)
        self.stop_target = self.runner
        self.live = LivePlots(run.tracker, cfg.train.live_plots, cfg.train.live_budget, "episode groups")
        self.runner.on_episode = lambda step: self.live.maybe(step, self._live_images)

    def _live_images(self) -> dict[str, Any]:
        """The returns so far and the weights into the output population."""
        import numpy as np

        images = {"returns": returns_image(self.runner.progress.returns, self.rl_cfg.window)}
        out = self.net.populations[self.rl_cfg.output_population]
        for name, conn in self.net.connections.items():
            if conn.target is out and conn.w.dim() == 2:
                w = conn.w.detach().cpu().numpy().T
                m = float(np.abs(w).max()) or 1.0
                images[f"weights_{name}"] = np.repeat(np.repeat(live.colour(w, "bwr", -m, m), 4, 0), 4, 1)
        return images

    def state(self) -> dict[str, Any]:
        return {"network": self.net.state_dict(), "progress": self.runner.progress}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["network"])
        self.runner.progress = ckpt["progress"]

    def rng_state(self) -> dict[str, Any]:  # the decoder's exploration draws
        return {"decoder": self.runner.rng.bit_generator.state}

    def set_rng_state(self, rng: dict[str, Any]) -> None:
        if "decoder" in rng:
            self.runner.rng.bit_generator.state = rng["decoder"]

    def execute(self) -> dict[str, float]:
        self.runner.train()
        self.live.report()
        greedy = self.runner.evaluate()
        p = self.runner.progress
        last = p.returns[-100:]
        metrics = {"mean_return_last100": float(sum(last) / max(1, len(last)))}
        if greedy is not None:
            metrics["greedy_mean_return"] = float(greedy)
        if p.random_mean_return is not None:
            metrics["random_mean_return"] = float(p.random_mean_return)
        return {**metrics, "episodes": p.episode, "env_steps": p.env_steps}

    def log_plots(self, tracker: Any) -> None:
        log_rl_plots(tracker, self.runner, self.net, self.rl_cfg)
        log_video(tracker, self.runner, self.env_cfg, self.run.out_dir)

    def close(self) -> None:
        self.env.close()


def returns_image(returns: list, window: int) -> Any:
    """The episode returns and their moving average, drawn (matplotlib, Agg) to an RGB array."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    r = np.asarray(returns, dtype=float)
    ax.plot(np.arange(1, len(r) + 1), r, lw=0.6, alpha=0.5)
    w = min(window, len(r))
    if w:
        ax.plot(np.arange(w, len(r) + 1), np.convolve(r, np.ones(w) / w, mode="valid"), lw=2)
    ax.set_xlabel("episode")
    ax.set_ylabel("return")
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def check_shapes(env: Any, net: Any, encoder: Any, cfg: RLConfig) -> None:
    import gymnasium as gym

    for role in ("input_population", "output_population"):
        name = getattr(cfg, role)
        if name not in net.populations:
            raise ConfigError(f"rl.{role}", f"{name!r} is not a population; populations are: {', '.join(net.populations)}")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ConfigError("env.id", f"{env.spec.id if env.spec else env}: snnrun's RL runner needs a discrete action space, "
                                    f"got {type(env.action_space).__name__}")
    out = net.populations[cfg.output_population]
    if out.n % int(env.action_space.n):
        raise ConfigError(f"network.populations.{cfg.output_population}.n",
                          f"{out.n} neurons do not split into {env.action_space.n} equal action groups")
    obs_shape = tuple(env.observation_space.shape or ())
    want = encoder.out_shape(obs_shape)
    inp = net.populations[cfg.input_population]
    n_want = int(torch.Size(want).numel())
    if inp.n != n_want:
        raise ConfigError(f"network.populations.{cfg.input_population}",
                          f"has {inp.n} neurons but the {encoder.kind} encoding of the {list(obs_shape)} observation "
                          f"gives {n_want} ({list(want)})")


def log_rl_plots(tracker: Any, runner: RLRunner, net: Any, cfg: RLConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    p = runner.progress
    if p.returns:
        fig, ax = plt.subplots(figsize=(7, 4))
        r = np.asarray(p.returns, dtype=float)
        ax.plot(np.arange(1, len(r) + 1), r, lw=0.6, alpha=0.5, label="episode return")
        w = min(cfg.window, len(r))
        ax.plot(np.arange(w, len(r) + 1), np.convolve(r, np.ones(w) / w, mode="valid"), lw=2, label=f"moving average ({w})")
        if p.random_mean_return is not None and np.isfinite(p.random_mean_return):
            ax.axhline(p.random_mean_return, color="k", ls="--", lw=1, label="random policy")
        ax.set_xlabel("episode")
        ax.set_ylabel("return")
        ax.legend(loc="upper left")
        fig.tight_layout()
        tracker.log_figure(fig, "plots/returns.png")
        plt.close(fig)
    out = net.populations[cfg.output_population]
    for name, conn in net.connections.items():
        if conn.target is out and conn.w.dim() == 2:
            fig, ax = plt.subplots(figsize=(7, 4))
            im = ax.imshow(conn.w.detach().cpu().T.numpy(), aspect="auto", cmap="coolwarm", interpolation="nearest")
            ax.set_xlabel("input neuron")
            ax.set_ylabel("output neuron (grouped by action)")
            fig.colorbar(im, ax=ax)
            fig.tight_layout()
            tracker.log_figure(fig, f"plots/weights_{name}.png")
            plt.close(fig)


def log_video(tracker: Any, runner: RLRunner, env_cfg: EnvConfig, out_dir: Path) -> None:
    if runner.cfg.video_steps == 0:
        return
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off screen (no display, no warning)
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        env = make_env(env_cfg, render_mode="rgb_array")
        path = runner.record_video(env, out_dir / "episode.gif")
        env.close()
    except Exception as exc:  # rendering needs optional packages (pygame); never lose the run for it
        console.warn(f"no episode video ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return
    if path is not None:
        tracker.log_artifact(path, "video")
