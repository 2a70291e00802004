"""Figures of a classification run, logged to MLflow at its end."""

from __future__ import annotations

from typing import Any, Optional


def input_weights(cfg: Any, net: Any) -> Optional[tuple[Any, tuple[int, int], int]]:
    """The input -> excitatory weights as ``([C*H*W, n], (H, W), C)`` on the CPU, or None
    without such a connection (what the weight grids draw, at the end and live)."""
    inp, exc = net.populations[cfg.train.input_population], net.populations[cfg.train.exc_population]
    conn = next((c for c in net.connections.values() if c.source is inp and c.target is exc), None)
    if conn is None:
        return None
    image_shape = tuple(inp.shape[-2:]) if len(inp.shape) >= 2 else (1, inp.n)
    channels = max(1, inp.n // (image_shape[0] * image_shape[1]))
    return conn.dense_weights().detach().cpu(), image_shape, channels


def log_plots(tracker: Any, cfg: Any, net: Any, runner: Any, result: dict, data: dict) -> None:
    """The end-of-run figures: weights, assignments, confusion, thresholds, accuracy curve, raster."""
    import matplotlib.pyplot as plt

    from ..integrations import plots

    figs = {}
    weights = input_weights(cfg, net)
    if weights is not None:
        w, image_shape, channels = weights
        figs["plots/weights.png"] = plots.weights_grid(w, image_shape=image_shape, channels=channels)
    p = runner.progress
    if p.assignments is not None:
        figs["plots/assignments.png"] = plots.assignments_plot(p.assignments, runner.n_classes)
    if "confusion" in result:
        figs["plots/confusion.png"] = plots.confusion_plot(result["confusion"])
    theta = getattr(net.populations[cfg.train.exc_population], "theta", None)
    if theta is not None and theta.dim() == 1:
        figs["plots/theta.png"] = plots.theta_histogram(theta.detach().cpu())
    m = result.get("metrics") or {}
    final = {f"test ({k})": m[key] for k, key in (("all activity", "test_accuracy"), ("proportion", "test_accuracy_proportion"))
             if key in m}
    if p.curve_steps or final:
        figs["plots/accuracy.png"] = plots.accuracy_curve(p.curve_steps, {"train, all activity": p.curve_all,
                                                                          "train, proportion": p.curve_prop}, final=final)
    images = data["test"][0] if len(data["test"][0]) else data["train"][0]
    figs["plots/raster.png"] = plots.spike_raster(runner.record_sample(images[:1]), dt_ms=net.dt)
    for name, fig in figs.items():
        tracker.log_figure(fig, name)
        plt.close(fig)
