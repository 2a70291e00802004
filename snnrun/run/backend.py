"""Choosing the simulation backend for a run, and refusing rules the task cannot drive."""

from __future__ import annotations

from typing import Any

import torch

from ..config.validate import ConfigError
from ..core.simulate import make_simulator


def make_backend(net: Any, counted: list, backend: str, device: torch.device) -> Any:
    """The simulator for ``backend`` (a config error where it cannot run).  Its ``note``
    names the backend that runs and, when ``auto`` does not pick the fused kernel, why (the
    run's banner shows it)."""
    if device.type != "cpu" and backend == "numba":
        raise ConfigError("backend", "numba is a CPU backend; use backend=cuda (or auto) on CUDA")
    if device.type != "cuda" and backend == "cuda":
        raise ConfigError("backend", f"cuda needs a CUDA device (device=cuda), this run is on {device.type}; "
                                     f"use backend=auto (the fused CPU kernel) or numba")
    try:
        sim = make_simulator(net, counted, backend)
    except ValueError as exc:
        raise ConfigError("backend", str(exc).removeprefix("backend: ")) from None
    return sim


def check_rewards(net: Any, task: str) -> None:
    """A rule that reads the reward cannot learn in a task that gives none: refuse it."""
    for name, conn in net.connections.items():
        if conn.rule is not None and conn.learning_enabled and conn.rule.compiled.uses_reward:
            raise ConfigError(f"network.connections.{name}.learning",
                              f"{conn.rule.kind} reads the reward, but the {task} task gives none; reward-modulated "
                              f"rules learn in RL tasks (train: rl)")
