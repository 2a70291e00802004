"""ANN -> SNN policy transfer (``train.kind: transfer``): train a standard network, convert it
to a spiking one, search its per-layer scales, compare the two on the task and under noise
(:mod:`snnrun.rl.transfer`).  Not resumable: it has no long training loop to continue, so a
signal stops it at once (the run ends KILLED)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config.validate import ConfigError, from_dict
from ..run.task import Task, register_task
from .envs import make_env
from .experts import make_expert
from .task import env_config


@register_task("transfer")
class TransferTask(Task):
    """ANN -> SNN transfer on a discrete-action environment."""

    headline = "snn_mean_return"
    resumable = False
    config_network = False
    sections = ("env", "transfer")

    def __init__(self, run: Any):
        from .transfer import TransferConfig

        super().__init__(run)
        self.env_cfg = env_config(run)
        self.cfg = from_dict(TransferConfig, run.raw.get("transfer") or {}, "transfer")
        expert = make_expert(self.cfg.expert)  # a bad expert or env id fails here, before the run starts
        env = make_env(self.env_cfg)
        try:  # the expert can read this environment
            obs, _ = env.reset(seed=0)
            expert(np.asarray(obs, dtype=np.float64).reshape(1, -1), [env])
        except ValueError as exc:
            raise ConfigError("transfer.expert", str(exc).removeprefix("transfer.expert: ")) from None
        finally:
            env.close()
        torch.set_num_threads(self.cfg.threads)
        self.result: dict[str, Any] = {}

    def state(self) -> dict[str, Any]:
        r = self.result
        return {**r["snn_policy"].state_dict(), "ann": r["ann"].state_dict()} if r else {}

    def execute(self) -> dict[str, float]:
        from .transfer import run_transfer

        self.result = run_transfer(self.cfg, lambda: make_env(self.env_cfg), self.env_cfg.seed, self.run.log,
                                   title=f"{self.env_cfg.id}: ANN vs converted SNN under input perturbations")
        self.net = self.result["snn"]
        return dict(self.result["metrics"])

    def log_plots(self, tracker: Any) -> None:
        import matplotlib.pyplot as plt

        fig = self.result.get("figure")
        if fig is not None:
            tracker.log_figure(fig, "plots/robustness.png")
            plt.close(fig)
