"""Plots while the network learns: step-indexed images in the MLflow run (its UI shows them
with a step slider), within a time budget.

At every ``train.update_interval`` samples (classification) or ``rl.live_every`` episodes
(RL) the task hands :meth:`LivePlots.maybe` a function that draws its images (receptive
fields, label assignments, weights, returns); they are drawn and logged only while the time
spent on them stays within ``train.live_budget`` (default 2 %) of the run's time so far, so
a fast run logs fewer intervals instead of slowing down.  When intervals were skipped the run
says so in one line at its end.  Images are drawn with numpy (no matplotlib) where they can be.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..integrations.layout import grid_shape
from . import console


class LivePlots:
    """See the module docstring.  ``tracker``: the run's; ``budget``: fraction of run time."""

    def __init__(self, tracker: Any, enabled: bool, budget: float, what: str = "update intervals"):
        self.tracker, self.enabled, self.budget, self.what = tracker, enabled, float(budget), what
        self.t0 = time.perf_counter()
        self.spent = 0.0
        self.logged = self.skipped = 0

    def maybe(self, step: int, draw: Callable[[], Mapping[str, np.ndarray]]) -> bool:
        """Log ``draw()``'s images at ``step`` if the budget allows; return whether it did."""
        if not self.enabled or self.tracker.run_id is None:
            return False
        if step <= self.tracker.last_step("live_plots_step"):  # resumed: these steps have their images
            return False
        if self.spent > self.budget * (time.perf_counter() - self.t0):
            self.skipped += 1
            return False
        t = time.perf_counter()
        for key, image in draw().items():
            self.tracker.log_image(image, key, step)
        self.tracker.log_metrics({"live_plots_step": step}, step)
        self.spent += time.perf_counter() - t
        self.logged += 1
        return True

    def report(self) -> None:
        """Log what the live plots cost (``live_plots_s``, ``live_plots_logged``); say so if
        intervals were skipped."""
        if self.enabled and self.tracker.run_id is not None:
            self.tracker.log_metrics({"live_plots_s": self.spent, "live_plots_logged": self.logged,
                                      "live_plots_fraction": self.spent / max(time.perf_counter() - self.t0, 1e-9)})
        if self.skipped:
            console.say(f"snnrun: live plots: {self.logged} of {self.logged + self.skipped} {self.what} logged "
                        f"(kept within {100 * self.budget:.0f} % of the run time: train.live_budget)")


# matplotlib's category colours (tab10), and two colour ramps written out: importing
# matplotlib for them would cost a live plot more than drawing it
TAB10 = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], dtype=np.uint8)


def _ramp(name: str) -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    if name == "hot_r":  # white -> yellow -> red -> black (matplotlib's hot, reversed)
        h = 1.0 - x
        rgb = np.stack([np.clip(h / 0.365, 0, 1), np.clip((h - 0.365) / 0.381, 0, 1), np.clip((h - 0.746) / 0.254, 0, 1)], 1)
    elif name == "bwr":  # blue -> white -> red
        rgb = np.stack([np.clip(2 * x, 0, 1), 1 - np.abs(2 * x - 1), np.clip(2 - 2 * x, 0, 1)], 1)
    else:
        raise ValueError(f"no colour ramp {name!r}")
    return (rgb * 255).round().astype(np.uint8)


_LUTS: dict[str, np.ndarray] = {}


def colour(x: np.ndarray, cmap: str = "hot_r", lo: Optional[float] = None, hi: Optional[float] = None) -> np.ndarray:
    """Values -> RGB uint8 through a colour ramp (``hot_r`` or ``bwr``; ``lo``..``hi``,
    default the data's range)."""
    lut = _LUTS.setdefault(cmap, _ramp(cmap))
    lo = float(np.nanmin(x)) if lo is None else lo
    hi = float(np.nanmax(x)) if hi is None else hi
    idx = np.clip((x - lo) / (hi - lo if hi > lo else 1.0) * 255.0, 0, 255).astype(np.uint8)
    return lut[idx]


def receptive_fields(w: np.ndarray, image_shape: tuple[int, int], channels: int = 1) -> np.ndarray:
    """``w [C*H*W, n]`` -> one RGB image of every neuron's receptive field, tiled with a
    1-pixel gap (channels side by side in a cell), coloured from 0 to the largest weight."""
    h, wd = image_shape
    n = w.shape[1]
    rows, cols = grid_shape(n)
    cell_w = channels * wd
    out = np.zeros((rows * (h + 1) - 1, cols * (cell_w + 1) - 1), dtype=np.float32)
    fields = w.T.reshape(n, channels, h, wd).transpose(0, 2, 1, 3).reshape(n, h, cell_w)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (cell_w + 1):c * (cell_w + 1) + cell_w] = fields[k]
    return colour(out, "hot_r", 0.0, max(float(w.max()), 1e-12))


def palette(n: int) -> np.ndarray:
    """``[n, 3]`` uint8 colours: tab10 for up to 10 classes, else ``n`` hues evenly spaced
    around the colour wheel (full saturation, value 0.85)."""
    if n <= 10:
        return TAB10[:n]
    h = np.arange(n) / n * 6.0
    x = 1.0 - np.abs(h % 2.0 - 1.0)
    sector = h.astype(int) % 6
    one, zero = np.ones(n), np.zeros(n)
    r = np.choose(sector, [one, x, zero, zero, x, one])
    g = np.choose(sector, [x, one, one, x, zero, zero])
    b = np.choose(sector, [zero, zero, x, one, one, x])
    return np.round(np.stack([r, g, b], 1) * 0.85 * 255).astype(TAB10.dtype)


def assignments(labels: np.ndarray, n_classes: int = 10, cell: int = 12) -> np.ndarray:
    """Each neuron's assigned class as a coloured cell (:func:`palette`), on the receptive-field grid."""
    rows, cols = grid_shape(len(labels))
    grid = np.full(rows * cols, -1, dtype=np.int64)
    grid[:len(labels)] = labels
    lut = np.vstack([palette(n_classes), [[255, 255, 255]]])
    img = lut[np.where(grid < 0, n_classes, grid)].reshape(rows, cols, 3)
    return np.repeat(np.repeat(img, cell, axis=0), cell, axis=1)
