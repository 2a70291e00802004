"""Experts that label states for imitation learning (``transfer.expert``), one registration each.

An expert maps the batch of observations ``[B, ...]`` and the environments they came from
(in the same order) to the expert's actions ``[B]``.  It may read the observation (``linear``)
or the emulator's state (``breakout_ram``), which the policy being trained never sees.

* ``linear``: action 1 iff ``gains . obs > 0`` (CartPole: push right; the default gains keep
  CartPole-v1 at 500 on every episode tried).
* ``breakout_ram``: Atari Breakout from the console RAM (ale-py): ball x ``ram[99]``, ball y
  ``ram[101]`` (0 while no ball is in play), paddle x ``ram[72]``.  FIRE (1) while no ball is
  in play; otherwise with ``d = ball_x - (paddle_x + offset)``: RIGHT (2) if ``d > deadzone``,
  LEFT (3) if ``d < -deadzone``, else NOOP (0).  It needs only what one frame shows (no
  ball velocity), so a network that sees one frame can imitate it.  Measured on ALE/Breakout-v5
  (frameskip 4, sticky actions 0.25), 4 episodes each: offset 14 -> 60 points per episode,
  offset 10 -> 54, offset 6 -> 35, offset 0 -> 22.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ..config.validate import build_kind
from ..core.registry import Registry, check

EXPERTS: Registry[Any] = Registry("expert")


@dataclasses.dataclass
class LinearParams:
    gains: list = dataclasses.field(default_factory=lambda: [0.1, 0.2, 1.0, 0.5])

    def __post_init__(self) -> None:
        self.gains = [float(g) for g in self.gains]
        check(len(self.gains) >= 1 and any(g != 0 for g in self.gains), "gains",
              f"expected a non-zero gain vector, got {self.gains!r}")


@EXPERTS.register("linear", LinearParams)
class LinearExpert:
    """Action 1 iff ``gains . obs > 0`` (gains padded with zeros / cut to the observation size)."""

    def __init__(self, params: LinearParams):
        self.gains = params.gains

    def __call__(self, obs: np.ndarray, envs: Sequence[Any]) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        g = np.zeros(obs.shape[1])
        g[: len(self.gains)] = self.gains[: obs.shape[1]]
        return (obs @ g > 0).astype(np.int64)


@dataclasses.dataclass
class BreakoutRamParams:
    offset: float = 14.0  # ball x minus paddle x (RAM units) that the paddle aims for
    deadzone: float = 4.0  # |d| at or below this: NOOP

    def __post_init__(self) -> None:
        check(self.deadzone >= 0, "deadzone", f"must be >= 0, got {self.deadzone}")


# RAM addresses of Breakout's state (2600 RAM, 128 bytes)
BALL_X, BALL_Y, PADDLE_X = 99, 101, 72
NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3


@EXPERTS.register("breakout_ram", BreakoutRamParams)
class BreakoutRamExpert:
    """Tracks the ball with the paddle, reading positions from the console RAM."""

    def __init__(self, params: BreakoutRamParams):
        self.offset, self.deadzone = params.offset, params.deadzone

    @staticmethod
    def ram(env: Any) -> np.ndarray:
        ale = getattr(env.unwrapped, "ale", None)
        name = getattr(getattr(env, "spec", None), "id", None) or type(env.unwrapped).__name__
        if ale is None or "breakout" not in str(name).lower():
            raise ValueError(f"transfer.expert: breakout_ram reads Atari Breakout's RAM, got {name}")
        return ale.getRAM()

    def __call__(self, obs: np.ndarray, envs: Sequence[Any]) -> np.ndarray:
        out = np.empty(len(envs), dtype=np.int64)
        for i, env in enumerate(envs):
            ram = self.ram(env)
            if ram[BALL_Y] == 0:
                out[i] = FIRE
                continue
            d = float(ram[BALL_X]) - (float(ram[PADDLE_X]) + self.offset)
            out[i] = RIGHT if d > self.deadzone else LEFT if d < -self.deadzone else NOOP
        return out


def make_expert(cfg: Any, path: str = "transfer.expert") -> Any:
    """``{kind: ..., **params}`` -> the expert; a bad kind or parameter is a ConfigError naming ``path``."""
    entry, params = build_kind(EXPERTS, cfg, path)
    return entry.factory(params)
