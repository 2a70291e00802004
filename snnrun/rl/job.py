"""Reinforcement-learning jobs (``train.kind: rl`` or ``transfer``): config -> env, network,
runner -> MLflow.  Called by :func:`snnrun.run.job.run_job`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import torch

from ..build import build_encoder, build_network
from ..config.validate import ConfigError, from_dict
from ..integrations import tracking
from ..run.backend import make_backend
from ..run.checkpoint import CheckpointError, resume_dir, save_checkpoint
from ..run.seeding import resolve_device, seed_everything
from ..run.signals import stop_on_signals
from ..run.tags import config_yaml as _yaml, run_tags
from .envs import EnvConfig, make_env
from .runner import RLConfig, RLProgress, RLRunner


def run_rl_job(typed: Any, raw: dict, ckpt: Optional[dict], output_dir: Optional[str | Path],
               hydra_dir: Optional[str | Path], extra_tags: Optional[dict], default_run_name: Optional[str]) -> float:
    """Run an RL (or ANN -> SNN transfer) experiment; return its headline mean return."""
    env_cfg = from_dict(EnvConfig, raw.get("env") or {}, "env")
    if env_cfg.seed is None:
        env_cfg.seed = typed.seed
    seed_everything(typed.seed)
    device = resolve_device(typed.device)
    if ckpt is not None and typed.train.kind == "transfer":
        raise CheckpointError("resume: a transfer run cannot be resumed (it has no training loop to continue); "
                              "start a new run")
    out_dir = resume_dir(typed, ckpt) or Path(output_dir or Path("outputs") / typed.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracker = tracking.Tracker(typed.tracking.uri, typed.tracking.experiment, typed.tracking.run_name or default_run_name,
                               typed.tracking.artifact_location, typed.tracking.enabled)
    if typed.train.kind == "transfer":
        return _run_transfer(typed, raw, env_cfg, out_dir, hydra_dir, tracker, run_tags(device, "torch", out_dir, extra_tags))

    rl_cfg = from_dict(RLConfig, raw.get("rl") or {}, "rl")
    rl_cfg.progress = rl_cfg.progress and typed.train.progress
    env = make_env(env_cfg)
    net = build_network(typed.network, dt_ms=typed.dt_ms, device=device, seed=typed.seed)
    encoder = build_encoder(typed.encoder, dt_ms=typed.dt_ms)
    _check_shapes(env, net, encoder, rl_cfg)
    sim = make_backend(net, [rl_cfg.output_population], typed.backend, device)
    if rl_cfg.learn and not any(c.rule is not None and c.learning_enabled and c.rule.compiled.uses_reward
                                for c in net.connections.values()):
        print("snnrun: warning: no learning rule reads `reward`: the agent's weights do not learn from the "
              "environment's reward", file=sys.stderr)
    if device.type == "cpu":
        torch.set_num_threads(1)  # small networks: intra-op threads only add overhead

    final: dict = {}  # the headline metrics once training and evaluation are done

    def save(p: RLProgress) -> None:
        save_checkpoint(out_dir / "checkpoint.pt", {"network": net.state_dict(), "progress": p, "config": raw,
                                                    "mlflow_run_id": tracker.run_id, "finished": final.get("metrics"),
                                                    "rng": {"torch": torch.get_rng_state(),
                                                            "numpy": runner.rng.bit_generator.state}})

    runner = RLRunner(rl_cfg, env, net, encoder, sim, env_cfg.seed, tracker.log_metrics, save)
    tracker.keep_on_exit.append((out_dir / "checkpoint.pt", "checkpoint"))
    run_id = None
    if ckpt is not None:  # every RNG back where it was: the resumed run equals an uninterrupted one
        try:
            net.load_state_dict(ckpt["network"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {typed.resume!r} does not fit this network: {exc}") from None
        runner.progress = ckpt["progress"]
        run_id = ckpt.get("mlflow_run_id")
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "numpy" in ckpt["rng"]:
            runner.rng.bit_generator.state = ckpt["rng"]["numpy"]
    with tracking.tracked(tracker, tracking.flatten(raw), run_tags(device, sim.backend, out_dir, extra_tags), run_id):
        if hydra_dir is not None:
            tracker.log_artifact(hydra_dir, ".hydra")
        tracker.log_text(_yaml(raw), "config.yaml")
        with stop_on_signals(runner):
            runner.train()
            runner.evaluate()
        last = runner.progress.returns[-100:]
        final["metrics"] = {"mean_return_last100": float(sum(last) / max(1, len(last)))}
        save(runner.progress)
        tracker.log_artifact(out_dir / "checkpoint.pt", "checkpoint")
        if typed.train.plots:
            _log_rl_plots(tracker, runner, net, rl_cfg)
            _log_video(tracker, runner, env_cfg, out_dir)
    env.close()
    return float(sum(runner.progress.returns[-100:]) / max(1, len(runner.progress.returns[-100:])))


def _check_shapes(env: Any, net: Any, encoder: Any, cfg: RLConfig) -> None:
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


def _log_rl_plots(tracker: Any, runner: RLRunner, net: Any, cfg: RLConfig) -> None:
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


def _log_video(tracker: Any, runner: RLRunner, env_cfg: EnvConfig, out_dir: Path) -> None:
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
        print(f"snnrun: warning: no episode video ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return
    if path is not None:
        tracker.log_artifact(path, "video")


def _run_transfer(typed: Any, raw: dict, env_cfg: EnvConfig, out_dir: Path, hydra_dir: Any, tracker: Any, tags: dict) -> float:
    import matplotlib.pyplot as plt

    from .transfer import TransferConfig, run_transfer

    cfg = from_dict(TransferConfig, raw.get("transfer") or {}, "transfer")
    make_env(env_cfg).close()  # a bad env id fails here, before the run starts
    torch.set_num_threads(1)
    with tracking.tracked(tracker, tracking.flatten(raw), tags):
        if hydra_dir is not None:
            tracker.log_artifact(hydra_dir, ".hydra")
        tracker.log_text(_yaml(raw), "config.yaml")
        result = run_transfer(cfg, lambda: make_env(env_cfg), env_cfg.seed, tracker.log_metrics)
        save_checkpoint(out_dir / "checkpoint.pt", {"network": result["snn"].state_dict(), "ann": result["ann"].state_dict(),
                                                    "scales": result["scales"], "config": raw,
                                                    "mlflow_run_id": tracker.run_id, "finished": dict(result["metrics"])})
        tracker.log_artifact(out_dir / "checkpoint.pt", "checkpoint")
        tracker.log_figure(result["figure"], "plots/robustness.png")
        plt.close(result["figure"])
    return float(result["metrics"]["snn_mean_return"])
