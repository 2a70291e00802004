"""Tests of snnrun.integrations.plots: each figure builds, has the expected axes and saves to PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from snnrun.integrations import plots

plt = plots.plt


@pytest.fixture
def save(tmp_path):
    """Save a figure to PNG, check the file, close the figure."""

    def _save(fig, name: str) -> Path:
        try:
            assert isinstance(fig, matplotlib.figure.Figure)
            path = tmp_path / f"{name}.png"
            fig.savefig(path)
            assert path.is_file() and path.stat().st_size > 1024
            return path
        finally:
            plt.close(fig)

    yield _save
    plt.close("all")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_backend_is_non_interactive():
    # in a fresh interpreter: other tests may have imported pyplot first in this one
    code = "import snnrun.integrations.plots, matplotlib; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "svg"})
    assert out.stdout.strip().lower() == "agg"


# ---------------------------------------------------------------------- weight grids
@pytest.mark.parametrize("n_post, rows, cols", [(1, 1, 1), (10, 3, 4), (16, 4, 4), (50, 7, 8), (100, 10, 10)])
def test_weights_grid(save, n_post, rows, cols):
    w = torch.rand(784, n_post, generator=_gen())
    fig = plots.weights_grid(w)
    assert len(fig.axes) == 2  # the tiled image and its colorbar
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (rows * 28, cols * 28)  # no empty row (50: 7 x 8, not 8 x 8)
    # neuron k's receptive field sits in cell (k // cols, k % cols)
    k = n_post - 1
    r, c = divmod(k, cols)
    cell = np.asarray(image[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28])
    assert np.allclose(cell, w[:, k].reshape(28, 28).numpy())
    save(fig, f"weights_{n_post}")


def test_weights_grid_colour_channels(save):
    w = torch.rand(3 * 32 * 32, 5, generator=_gen(1))
    fig = plots.weights_grid(w, image_shape=(32, 32), channels=3)
    assert len(fig.axes) == 2
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2 * 32, 3 * 3 * 32)  # 2 rows of 3 cells; the 3 channels side by side in a cell
    # channel 1 of neuron 0 is the second 32-wide block of the first cell
    assert np.allclose(np.asarray(image[:32, 32:64]), w[1024:2048, 0].reshape(32, 32).numpy())
    save(fig, "weights_rgb")


def test_weights_grid_accepts_numpy_and_half(save):
    save(plots.weights_grid(np.random.default_rng(0).random((16, 4)), image_shape=(4, 4)), "weights_np")
    save(plots.weights_grid(torch.rand(16, 4).half(), image_shape=(4, 4)), "weights_half")


def test_weights_grid_bad_shape_names_both_numbers():
    with pytest.raises(ValueError, match=r"n_pre=100 rows but image_shape 28x28 x 1 channel\(s\) needs 784"):
        plots.weights_grid(torch.rand(100, 4))
    with pytest.raises(ValueError, match=r"w must be 2-D"):
        plots.weights_grid(torch.rand(784))
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W\)"):
        plots.weights_grid(torch.rand(784, 4), image_shape=(784,))


def test_receptive_field_grid(save):
    w = torch.rand(64, 12, generator=_gen(2))
    fig = plots.receptive_field_grid(w, image_shape=(8, 8), grid_shape=(3, 4))
    assert len(fig.axes) == 2
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (3 * 8, 4 * 8)
    # neuron 6 is at row 1, column 2 of the 3x4 grid
    assert np.allclose(np.asarray(image[8:16, 16:24]), w[:, 6].reshape(8, 8).numpy())
    save(fig, "som")
    with pytest.raises(ValueError, match="grid_shape 3x3 holds 9 neurons but w has n_post=12"):
        plots.receptive_field_grid(w, image_shape=(8, 8), grid_shape=(3, 3))


# ----------------------------------------------------------------------- assignments
def test_assignments_plot(save):
    a = torch.randint(-1, 10, (100,), generator=_gen(3))
    fig = plots.assignments_plot(a, 10)
    assert len(fig.axes) == 2  # the grid and the discrete colorbar
    bar = fig.axes[1]
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels == ["unassigned"] + [str(i) for i in range(10)]
    assert fig.axes[0].images[0].get_array().shape == (10, 10)
    save(fig, "assignments")


def test_assignments_plot_grid_names_and_errors(save):
    fig = plots.assignments_plot(torch.tensor([0, 1, -1, 2, 2]), 3, grid=(2, 3), class_names=["a", "b", "c"])
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape == (2, 3)
    save(fig, "assignments_grid")
    with pytest.raises(ValueError, match="grid 2x2 holds 4 cells but there are 5 neurons"):
        plots.assignments_plot(torch.zeros(5, dtype=torch.long), 3, grid=(2, 2))
    with pytest.raises(ValueError, match=r"outside \[-1, 3\)"):
        plots.assignments_plot(torch.tensor([0, 3]), 3)


# ------------------------------------------------------------------------- confusion
def test_confusion_plot(save):
    cm = torch.randint(0, 50, (10, 10), generator=_gen(4))
    fig = plots.confusion_plot(cm)
    ax = fig.axes[0]
    assert len(fig.axes) == 2
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 100 and texts[0] == str(int(cm[0, 0])) and texts[12] == str(int(cm[1, 2]))
    save(fig, "confusion")


def test_confusion_plot_names_and_errors(save):
    fig = plots.confusion_plot(np.array([[3, 1], [0, 4]]), class_names=["cat", "dog"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["cat", "dog"]
    assert "87.5%" in fig.axes[0].get_title()
    save(fig, "confusion_names")
    with pytest.raises(ValueError, match=r"square \[C, C\] matrix, got shape \(2, 3\)"):
        plots.confusion_plot(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="class_names has 1 names but there are 2 classes"):
        plots.confusion_plot(torch.zeros(2, 2), class_names=["x"])


# ----------------------------------------------------------------------------- raster
def test_spike_raster(save):
    g = _gen(5)
    spikes = {
        "X": torch.rand(250, 784, generator=g) < 0.02,
        "Ae": torch.rand(250, 100, generator=g) < 0.05,
        "Ai": torch.zeros(250, 100, dtype=torch.bool),  # silent population
    }
    fig = plots.spike_raster(spikes, dt_ms=0.5)
    assert len(fig.axes) == 3
    assert fig.axes[-1].get_xlabel() == "time (ms)"
    assert fig.axes[0].get_xlim() == (0.0, 125.0)
    assert fig.axes[1].get_title().startswith(f"Ae: {int(spikes['Ae'].sum())} spikes")
    save(fig, "raster")


def test_spike_raster_errors():
    with pytest.raises(ValueError, match="empty dict"):
        plots.spike_raster({}, dt_ms=1.0)
    with pytest.raises(ValueError, match=r"spikes\['X'\] must be \[T, n\]"):
        plots.spike_raster({"X": torch.zeros(10, dtype=torch.bool)}, dt_ms=1.0)
    with pytest.raises(ValueError, match="dt_ms must be > 0"):
        plots.spike_raster({"X": torch.zeros(10, 2, dtype=torch.bool)}, dt_ms=0.0)


# ------------------------------------------------------------------- theta, accuracy
def test_theta_histogram(save):
    fig = plots.theta_histogram(torch.rand(100, generator=_gen(6)) * 0.5)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "theta (mV)"
    save(fig, "theta")
    with pytest.raises(ValueError, match="theta is empty"):
        plots.theta_histogram(torch.zeros(0))


def test_accuracy_curve(save):
    steps = [250, 500, 750, 1000]
    fig = plots.accuracy_curve(steps, {"all activity": [0.5, 0.7, 0.8, 0.85], "proportion": [0.55, 0.72, 0.81, 0.86]})
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 2
    assert np.allclose(ax.lines[0].get_ydata(), [50, 70, 80, 85])  # fractions shown in percent
    assert ax.get_ylabel() == "accuracy (%)"
    save(fig, "accuracy")
    fig = plots.accuracy_curve(steps, {"pct": [50, 70, 80, 85]}, as_fraction=False)
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [50, 70, 80, 85])
    plt.close(fig)
    with pytest.raises(ValueError, match="curve 'short' has 2 values but steps has 4"):
        plots.accuracy_curve(steps, {"short": [0.1, 0.2]})
    # a short run: one training point, and the test accuracy it ended with as a dashed line
    fig = plots.accuracy_curve([100], {"train": [0.4]}, final={"test (all activity)": 0.655})
    line = fig.axes[0].lines[1]
    assert line.get_linestyle() == "--" and np.allclose(line.get_ydata(), [65.5, 65.5])
    assert "test (all activity): 65.5 %" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
