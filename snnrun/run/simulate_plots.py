"""Figures of a ``simulate`` run: the spike raster, voltage traces and the firing-rate
histogram of each recorded population (sample 0 of the batch)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def voltage_traces(v: Mapping[str, np.ndarray], dt_ms: float, n: int) -> Any:
    """``v[pop]``: ``[T, n_neurons]``; the first ``n`` neurons' traces, one axes per population."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(v), 1, figsize=(8.0, 2.8 * len(v)), squeeze=False)
    for ax, (pop, x) in zip(axes[:, 0], v.items()):
        t = np.arange(x.shape[0]) * dt_ms
        ax.plot(t, x[:, :n], lw=0.6, alpha=0.7)
        ax.set_title(f"{pop}: v of {min(n, x.shape[1])} of {x.shape[1]} neurons")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("v (mV)")
    fig.tight_layout()
    return fig


def rate_histogram(s: Mapping[str, np.ndarray], dt_ms: float) -> Any:
    """``s[pop]``: ``[T, n_neurons]`` spikes; each neuron's firing rate (Hz), histogrammed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(s), figsize=(4.0 * len(s), 3.2), squeeze=False)
    for ax, (pop, x) in zip(axes[0], s.items()):
        rates = x.astype(np.float64).mean(0) * 1000.0 / dt_ms
        ax.hist(rates, bins=30, color="0.3")
        ax.axvline(rates.mean(), color="r", lw=1, label=f"mean {rates.mean():.1f} Hz")
        ax.set_title(pop)
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons")
        ax.legend()
    fig.tight_layout()
    return fig


def log_simulation_plots(tracker: Any, recordings: Mapping[str, np.ndarray], dt_ms: float, n_traces: int) -> None:
    import matplotlib.pyplot as plt

    from ..integrations import plots

    first = {k: x[:, 0].reshape(x.shape[0], -1) for k, x in recordings.items()}  # sample 0, neurons flattened
    spikes = {k.rsplit(".", 1)[0]: x for k, x in first.items() if k.endswith(".s")}
    volts = {k.rsplit(".", 1)[0]: x for k, x in first.items() if k.endswith(".v")}
    figs = {}
    if spikes:
        figs["plots/raster.png"] = plots.spike_raster(spikes, dt_ms=dt_ms)
        figs["plots/rates.png"] = rate_histogram(spikes, dt_ms)
    if volts:
        figs["plots/voltages.png"] = voltage_traces(volts, dt_ms, n_traces)
    for name, fig in figs.items():
        tracker.log_figure(fig, name)
        plt.close(fig)
