"""Gymnasium environments from config: ``make_env(EnvConfig)``.

* any registered id (``env.id``, keyword arguments ``env.kwargs``); Atari ids (``ALE/...``,
  ``...NoFrameskip-v4``) through ale-py, whose ROMs ship with the wheel (no download);
* ``env.preprocess: atari`` turns RGB frames into what a spiking input layer takes:
  grayscale, the rows ``crop`` and columns ``crop_cols`` of the screen (default: the 160 x 160
  playing field) area-resampled to ``frame_size`` x ``frame_size`` (80 x 80 = 6400 inputs by
  default), values in [0, 1], and with ``frame_diff`` the absolute difference to the previous
  frame (what moved: ball and paddle), shaped ``[1, H, W]``.

An unknown id is a :class:`ConfigError` naming ``env.id`` with the closest registered ids.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Optional

import numpy as np

from ..config.validate import ConfigError
from ..core.registry import check


@dataclasses.dataclass
class EnvConfig:
    id: str = "CartPole-v1"
    kwargs: dict = dataclasses.field(default_factory=dict)
    seed: Optional[int] = None  # episodes are seeded seed, seed + 1, ...; null: the run's seed
    max_episode_steps: Optional[int] = None
    preprocess: str = "none"  # none | atari
    frame_size: int = 80
    frame_diff: bool = True
    crop: list = dataclasses.field(default_factory=lambda: [34, 194])  # rows of the playing field (Atari)
    crop_cols: list = dataclasses.field(default_factory=lambda: [0, 160])  # columns kept (Atari)

    def __post_init__(self) -> None:
        check(self.preprocess in ("none", "atari"), "preprocess", f"{self.preprocess!r} is not one of: none, atari")
        check(self.frame_size >= 8, "frame_size", f"must be >= 8, got {self.frame_size}")
        check(self.max_episode_steps is None or self.max_episode_steps >= 1, "max_episode_steps",
              f"must be >= 1 or null, got {self.max_episode_steps}")
        check(len(self.crop) == 2 and 0 <= self.crop[0] < self.crop[1], "crop", f"expected [first_row, end_row], got {self.crop}")
        check(len(self.crop_cols) == 2 and 0 <= self.crop_cols[0] < self.crop_cols[1], "crop_cols",
              f"expected [first_column, end_column], got {self.crop_cols}")


def _register_ale() -> bool:
    try:
        import ale_py  # noqa: F401
        import gymnasium as gym

        gym.register_envs(ale_py)
        return True
    except ImportError:
        return False


def make_env(cfg: EnvConfig, render_mode: Optional[str] = None):
    """Create the environment (with the ``preprocess`` wrapper), or raise a one-line
    :class:`ConfigError` naming ``env.id`` / ``env.kwargs``."""
    import gymnasium as gym

    has_ale = _register_ale()
    if cfg.id not in gym.registry:
        if (cfg.id.startswith("ALE/") or "NoFrameskip" in cfg.id) and not has_ale:
            raise ConfigError("env.id", f"{cfg.id!r} needs the Atari extra: pip install 'snnrun[atari]' (ale-py)")
        close = difflib.get_close_matches(cfg.id, list(gym.registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError("env.id", f"{cfg.id!r} is not a registered gymnasium environment{hint}")
    kwargs: dict[str, Any] = dict(cfg.kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    try:
        env = gym.make(cfg.id, **kwargs)
    except TypeError as exc:
        raise ConfigError("env.kwargs", f"{cfg.id}: {str(exc).splitlines()[0]}") from None
    if cfg.preprocess == "atari":
        check_crop(cfg, env.observation_space.shape)
        env = AtariFrames(env, cfg.frame_size, cfg.frame_diff, tuple(cfg.crop), tuple(cfg.crop_cols))
    return env


def check_crop(cfg: EnvConfig, screen: tuple) -> None:
    """The cropped area lies on the screen and has at least ``frame_size`` rows and columns
    (area resampling only shrinks: a smaller area would leave output pixels always 0)."""
    for key, (first, end), size in (("crop", cfg.crop, screen[0]), ("crop_cols", cfg.crop_cols, screen[1])):
        if end > size:
            raise ConfigError(f"env.{key}", f"[{first}, {end}] goes past the screen's {size} "
                                            f"{'rows' if key == 'crop' else 'columns'}")
        if end - first < cfg.frame_size:
            raise ConfigError(f"env.{key}", f"[{first}, {end}] keeps {end - first}, fewer than env.frame_size "
                                            f"({cfg.frame_size}); keep at least as many or lower frame_size")


def _gym_wrapper_base():
    import gymnasium as gym

    return gym.ObservationWrapper


class AtariFrames(_gym_wrapper_base()):
    """RGB frame -> grayscale playing field, downsampled, [0, 1], optionally differenced:
    observation ``[1, size, size]`` float32."""

    def __init__(self, env, size: int = 80, diff: bool = True, crop: tuple[int, int] = (34, 194),
                 crop_cols: tuple[int, int] = (0, 160)):
        import gymnasium as gym

        super().__init__(env)
        self.size, self.diff, self.crop, self.crop_cols = int(size), bool(diff), crop, crop_cols
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1, self.size, self.size), np.float32)
        self._prev: Optional[np.ndarray] = None

    def reset(self, **kwargs):
        self._prev = None
        return super().reset(**kwargs)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        frame = preprocess_frame(obs, self.size, self.crop, self.crop_cols)
        if not self.diff:
            return frame[None]
        out = np.abs(frame - self._prev) if self._prev is not None else np.zeros_like(frame)
        self._prev = frame
        return out[None]


def preprocess_frame(rgb: np.ndarray, size: int = 80, crop: tuple[int, int] = (34, 194),
                     crop_cols: tuple[int, int] = (0, 160)) -> np.ndarray:
    """[H, W, 3] uint8 (or [H, W] gray) -> [size, size] float32 in [0, 1]: luminance, rows
    ``crop`` and columns ``crop_cols`` kept, block-averaged (area) to ``size`` x ``size``."""
    x = np.asarray(rgb, dtype=np.float32)
    if x.ndim == 3:
        x = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = x[crop[0]:crop[1], crop_cols[0]:crop_cols[1]] / 255.0
    h, w = x.shape
    # area resampling by index binning (exact block mean when size divides h and w)
    rows = (np.arange(h) * size) // h
    cols = (np.arange(w) * size) // w
    out = np.zeros((size, size), np.float32)
    np.add.at(out, (rows[:, None], cols[None, :]), x)
    counts = np.bincount(rows, minlength=size)[:, None] * np.bincount(cols, minlength=size)[None, :]
    return (out / np.maximum(counts, 1)).astype(np.float32)
