"""Figures for spiking-network experiments (matplotlib, no display needed).

Every function takes tensors (any device; they are copied to the host) or numpy arrays and
returns a :class:`matplotlib.figure.Figure`; none calls ``plt.show``.  Figures are made with
``pyplot`` so that ``plt.close(fig)`` frees them: close each figure after saving or logging it.

Importing this module selects matplotlib's non-interactive ``Agg`` backend, unless pyplot was
already imported (an interactive session keeps its backend).
"""

from __future__ import annotations

import math
import sys
from typing import Mapping, Optional, Sequence

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402

from .layout import grid_shape  # noqa: E402

__all__ = [
    "weights_grid", "receptive_field_grid", "assignments_plot", "confusion_plot", "spike_raster",
    "theta_histogram", "accuracy_curve",
]

_UNASSIGNED_COLOUR = "#b0b0b0"


def weights_grid(w, image_shape: Sequence[int] = (28, 28), channels: int = 1, *, cmap: str = "hot_r",
                 vmin: Optional[float] = None, vmax: Optional[float] = None, title: Optional[str] = None) -> Figure:
    """The receptive field of every post neuron, tiled in ``ceil(n_post / cols)`` rows of
    ``cols = ceil(sqrt(n_post))``.

    Like BindsNET's ``plot_weights`` of ``reshape_weights(w)``: one big image with one colour
    scale (``hot_r`` by default) and a colorbar.  Neuron ``k`` is at row ``k // side``, column
    ``k % side``; unused cells stay blank.

    Args:
        w: weights from the input to the post neurons.  The pre index runs over ``[C, H, W]``
            in C order (as images ``[N, C, H, W]`` flattened); with ``channels > 1`` the
            channels of a neuron are shown side by side in its cell.
        image_shape: ``(H, W)`` of the input image.
        channels: ``C``.
        cmap, vmin, vmax: colour scale (default: the weights' min and max).
        title: the axes title (default: ``"<n_post> receptive fields"``).

    Returns:
        A figure with 2 axes: the image and the colorbar.

    Shapes:
        w: ``[n_pre, n_post]`` with ``n_pre = C * H * W``.
    """
    w = _numpy(w, "w")
    _check_weights(w, image_shape, channels)
    rows, cols = grid_shape(w.shape[1])
    title = title if title is not None else f"{w.shape[1]} receptive fields"
    return _tile_figure(w, image_shape, channels, (rows, cols), cmap, vmin, vmax, title)


def receptive_field_grid(w, image_shape: Sequence[int], grid_shape: Sequence[int], channels: int = 1, *,
                         cmap: str = "hot_r", vmin: Optional[float] = None, vmax: Optional[float] = None,
                         title: Optional[str] = None) -> Figure:
    """Receptive fields of neurons laid out on a 2-D grid (e.g. a self-organising map).

    Neuron ``k`` is the one at row ``k // cols``, column ``k % cols`` of the ``(rows, cols)``
    grid, and its receptive field is drawn in that cell.  Otherwise as :func:`weights_grid`.

    Returns:
        A figure with 2 axes: the image and the colorbar.

    Shapes:
        w: ``[n_pre, n_post]`` with ``n_pre = C * H * W`` and ``n_post = rows * cols``.
    """
    w = _numpy(w, "w")
    _check_weights(w, image_shape, channels)
    rows, cols = _grid(grid_shape)
    if rows * cols != w.shape[1]:
        raise ValueError(f"grid_shape {rows}x{cols} holds {rows * cols} neurons but w has n_post={w.shape[1]}")
    title = title if title is not None else f"receptive fields on a {rows}x{cols} grid"
    return _tile_figure(w, image_shape, channels, (rows, cols), cmap, vmin, vmax, title)


def assignments_plot(assignments, n_classes: int, grid: Optional[Sequence[int]] = None,
                     class_names: Optional[Sequence[str]] = None, title: str = "label assignments") -> Figure:
    """Each neuron coloured by its assigned class, on a square (or given) grid.

    Neuron ``k`` is at row ``k // cols``, column ``k % cols``; ``-1`` (unassigned) is grey and
    cells without a neuron are blank.  A discrete colorbar names the classes.

    Args:
        assignments: class of each neuron, ``-1`` for unassigned.
        n_classes: the number of classes.
        grid: ``(rows, cols)`` with ``rows * cols >= n_neurons``; default a
            ``ceil(sqrt(n_neurons))`` square.
        class_names: one name per class for the colorbar (default ``0 .. n_classes-1``).

    Returns:
        A figure with 2 axes: the grid and the colorbar.

    Shapes:
        assignments: ``[n_neurons]``.
    """
    a = _numpy(assignments, "assignments").reshape(-1).astype(np.int64)
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if a.size and (a.min() < -1 or a.max() >= n_classes):
        raise ValueError(f"assignments has values in [{a.min()}, {a.max()}], outside [-1, {n_classes})")
    names = _class_names(class_names, n_classes)
    if grid is None:
        side = max(1, math.ceil(math.sqrt(a.size)))
        rows, cols = side, side
    else:
        rows, cols = _grid(grid)
        if rows * cols < a.size:
            raise ValueError(f"grid {rows}x{cols} holds {rows * cols} cells but there are {a.size} neurons")
    cells = np.full(rows * cols, np.nan)
    cells[: a.size] = a
    colours = [_UNASSIGNED_COLOUR] + _class_colours(n_classes)
    cmap = ListedColormap(colours).with_extremes(bad="white")
    norm = BoundaryNorm(np.arange(-1.5, n_classes), cmap.N)

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(cells.reshape(rows, cols), cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    n_unassigned = int((a == -1).sum())
    ax.set_title(f"{title} ({a.size} neurons, {n_unassigned} unassigned)")
    bar = _colorbar(fig, ax, im, ticks=np.arange(-1, n_classes))
    bar.ax.set_yticklabels(["unassigned"] + names)
    fig.tight_layout()
    return fig


def confusion_plot(cm, class_names: Optional[Sequence[str]] = None, title: str = "confusion matrix") -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), with the counts written in.

    Counts are written in each cell when there are at most 30 classes.

    Returns:
        A figure with 2 axes: the matrix and the colorbar.

    Shapes:
        cm: ``[C, C]``.
    """
    m = _numpy(cm, "cm")
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"cm must be a square [C, C] matrix, got shape {tuple(m.shape)}")
    n = m.shape[0]
    names = _class_names(class_names, n)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * n + 2.0), max(3.5, 0.55 * n + 1.5)))
    im = ax.imshow(m, cmap="Blues", interpolation="nearest")
    _colorbar(fig, ax, im)
    ax.set_xticks(np.arange(n), labels=names, rotation=45 if max(map(len, names), default=0) > 2 else 0)
    ax.set_yticks(np.arange(n), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = m.sum()
    correct = np.trace(m)
    ax.set_title(f"{title} (accuracy {100.0 * correct / total:.1f}%)" if total > 0 else title)
    if n <= 30:
        threshold = m.max() / 2.0 if m.size else 0
        integral = np.allclose(m, np.round(m))
        for i in range(n):
            for j in range(n):
                text = f"{int(round(m[i, j]))}" if integral else f"{m[i, j]:.2g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > threshold else "black")
    fig.tight_layout()
    return fig


def spike_raster(spikes: Mapping[str, object], dt_ms: float, title: Optional[str] = None) -> Figure:
    """A spike raster per population, one subplot each, time in ms on the shared x axis.

    Args:
        spikes: ``{population name: spikes}``; each ``[T, n]`` (trailing dimensions beyond
            the first are flattened, so pick one batch element first).
        dt_ms: the time step, to put the x axis in ms.

    Returns:
        A figure with one axes per population.

    Shapes:
        each value: ``[T, n]`` (bool or 0/1).
    """
    if not spikes:
        raise ValueError("spike_raster needs at least one population, got an empty dict")
    if not dt_ms > 0:
        raise ValueError(f"dt_ms must be > 0, got {dt_ms}")
    arrays = {}
    for name, s in spikes.items():
        a = _numpy(s, f"spikes[{name!r}]")
        if a.ndim < 2:
            raise ValueError(f"spikes[{name!r}] must be [T, n], got shape {tuple(a.shape)}")
        arrays[name] = a.reshape(a.shape[0], -1) != 0
    heights = [1.0 + min(a.shape[1], 400) / 100.0 for a in arrays.values()]
    fig, axes = plt.subplots(len(arrays), 1, sharex=True, squeeze=False,
                             figsize=(8.0, min(2.0 + sum(heights) * 1.2, 14.0)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, a) in zip(axes[:, 0], arrays.items()):
        t, i = np.nonzero(a)
        ax.scatter(t * dt_ms, i, s=2.0, marker="|" if a.shape[1] <= 200 else ".", color="black", linewidths=0.8)
        ax.set_xlim(0.0, a.shape[0] * dt_ms)
        ax.set_ylim(-0.5, max(a.shape[1], 1) - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_title(f"{name}: {len(t)} spikes from {a.shape[1]} neurons", fontsize=9)
    axes[-1, 0].set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def theta_histogram(theta, bins: int = 30, title: str = "adaptive thresholds") -> Figure:
    """A histogram of the adaptive threshold increments ``theta`` (mV) of a population.

    Returns:
        A figure with 1 axes.

    Shapes:
        theta: ``[n]`` (any shape; flattened).
    """
    t = _numpy(theta, "theta").reshape(-1).astype(np.float64)
    if t.size == 0:
        raise ValueError("theta is empty")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.hist(t, bins=bins, color="tab:red", edgecolor="black", linewidth=0.5)
    ax.set_xlabel("theta (mV)")
    ax.set_ylabel("neurons")
    ax.set_title(f"{title} (n={t.size}, mean {t.mean():.3g}, max {t.max():.3g})")
    fig.tight_layout()
    return fig


def accuracy_curve(steps: Sequence[int], curves: Mapping[str, Sequence[float]], as_fraction: bool = True,
                   title: str = "accuracy", xlabel: str = "training samples",
                   final: Optional[Mapping[str, float]] = None) -> Figure:
    """Accuracy curves against training progress, in percent.

    Args:
        steps: the x values (e.g. samples seen) shared by all curves.
        curves: ``{label: values}``, each as long as ``steps``.
        as_fraction: the values are fractions in ``[0, 1]`` (what
            :func:`snnrun.run.evaluation.accuracy` returns) and are multiplied by 100; pass
            ``False`` if they are percentages already.
        final: ``{label: value}`` drawn as dashed horizontal lines (the test accuracies), so
            a short run with one or two training points still shows where it ended.

    Returns:
        A figure with 1 axes.
    """
    if not curves:
        raise ValueError("accuracy_curve needs at least one curve, got an empty dict")
    x = [float(s) for s in steps]
    scale = 100.0 if as_fraction else 1.0
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for name, values in curves.items():
        y = [float(v) * scale for v in values]
        if len(y) != len(x):
            raise ValueError(f"curve {name!r} has {len(y)} values but steps has {len(x)}")
        ax.plot(x, y, marker="o" if len(x) <= 50 else None, markersize=3, label=str(name))
    for name, value in (final or {}).items():
        ax.axhline(float(value) * scale, ls="--", lw=1, color="k" if "proportion" not in name else "0.5",
                   label=f"{name}: {float(value) * scale:.1f} %")
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- helpers
def _numpy(x, name: str) -> np.ndarray:
    """A host numpy copy of a tensor or array-like."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:  # half / bfloat16: numpy lacks bfloat16
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from e


def _check_weights(w: np.ndarray, image_shape: Sequence[int], channels: int) -> None:
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D [n_pre, n_post], got shape {tuple(w.shape)}")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image_shape must be (H, W) with positive sizes, got {tuple(image_shape)}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    expected = shape[0] * shape[1] * channels
    if w.shape[0] != expected:
        raise ValueError(f"w has n_pre={w.shape[0]} rows but image_shape {shape[0]}x{shape[1]} x {channels} "
                         f"channel(s) needs {expected}")


def _grid(grid: Sequence[int]) -> tuple[int, int]:
    g = tuple(int(s) for s in grid)
    if len(g) != 2 or min(g) < 1:
        raise ValueError(f"grid must be (rows, cols) with positive sizes, got {tuple(grid)}")
    return g


def _tile_figure(w: np.ndarray, image_shape: Sequence[int], channels: int, grid: tuple[int, int], cmap: str,
                 vmin: Optional[float], vmax: Optional[float], title: str) -> Figure:
    """Tile the receptive fields ``w [C*H*W, n_post]`` into one image and draw it."""
    h, wd = (int(s) for s in image_shape)
    rows, cols = grid
    n_post = w.shape[1]
    tiles = w.T.astype(np.float32).reshape(n_post, channels, h, wd).transpose(0, 2, 1, 3).reshape(n_post, h, channels * wd)
    full = np.full((rows * cols, h, channels * wd), np.nan, dtype=np.float32)
    full[:n_post] = tiles
    image = full.reshape(rows, cols, h, channels * wd).transpose(0, 2, 1, 3).reshape(rows * h, cols * channels * wd)

    finite = w[np.isfinite(w)] if w.size else w
    lo = float(finite.min()) if vmin is None and finite.size else (0.0 if vmin is None else vmin)
    hi = float(finite.max()) if vmax is None and finite.size else (1.0 if vmax is None else vmax)
    if hi <= lo:
        hi = lo + 1.0

    aspect = (cols * channels * wd) / (rows * h)
    width = 7.0 * min(max(aspect, 0.5), 2.0)
    fig, ax = plt.subplots(figsize=(width + 1.5, min(max(width / aspect, 2.0), 14.0) + 1.0))
    colour_map = matplotlib.colormaps[cmap].with_extremes(bad="white")
    im = ax.imshow(image, cmap=colour_map, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if max(rows, cols) <= 40:  # separate the cells with thin lines
        for r in range(1, rows):
            ax.axhline(r * h - 0.5, color="0.6", linewidth=0.5)
        for c in range(1, cols):
            ax.axvline(c * channels * wd - 0.5, color="0.6", linewidth=0.5)
    ax.set_title(title)
    _colorbar(fig, ax, im)
    fig.tight_layout()
    return fig


def _colorbar(fig: Figure, ax, im, **kwargs):
    """A colorbar exactly as tall as the image (a thin axes appended on the right)."""
    cax = make_axes_locatable(ax).append_axes("right", size="3%", pad=0.1)
    return fig.colorbar(im, cax=cax, **kwargs)


def _class_names(names: Optional[Sequence[str]], n: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names but there are {n} classes")
    return names


def _class_colours(n: int) -> list:
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["hsv"](i / n) for i in range(n)]
