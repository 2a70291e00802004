"""One job: validated config -> built network -> runner -> tracking.  Used by the CLI and
usable from Python (``run_job(cfg_dict)``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import torch

from ..build import build_encoder, build_network, to_container
from ..config.schema import RunConfig
from ..config.validate import ConfigError, from_dict
from ..integrations import tracking
from .backend import check_rewards, make_backend
from .checkpoint import CheckpointError, resume_checkpoint, resume_dir
from .resume import resumed_config
from ..config.overrides import check_experiment_package, check_overrides_used
from .seeding import resolve_device, seed_everything
from .signals import stop_on_signals
from .tags import config_yaml as _yaml, run_tags, snnrun_version as _version
from .unsupervised import Progress, UnsupervisedRunner, WeightRamp


# the run's own top-level keys; any other top-level key is a variable for interpolation
SCHEMA_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig))


def validate(cfg: Any) -> tuple[RunConfig, dict]:
    """Resolve and validate a config (OmegaConf or dict); return (typed config, plain dict)."""
    raw = to_container(cfg)
    if not isinstance(raw, dict):
        raise ConfigError("", f"expected a mapping at the top level, got {type(raw).__name__}")
    check_experiment_package(raw)
    typed = from_dict(RunConfig, {k: v for k, v in raw.items() if k in SCHEMA_KEYS})
    return typed, raw


def _unresolved(cfg: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    except ImportError:  # pragma: no cover
        return cfg


def _load_data(cfg: RunConfig) -> dict[str, Any]:
    from ..integrations.datasets import load_dataset

    d = cfg.data
    train = load_dataset(d.name, d.root, train=True, n=d.n_train, download=d.download, grayscale=d.grayscale)
    if cfg.train.test and d.n_test != 0:
        test = load_dataset(d.name, d.root, train=False, n=d.n_test, download=d.download, grayscale=d.grayscale)
    else:
        test = (torch.zeros(0, *train[0].shape[1:]), torch.zeros(0, dtype=torch.long))
    return {"train": train, "test": test}


def _check_input_shape(cfg: RunConfig, net, images: torch.Tensor) -> None:
    name = cfg.train.input_population
    if name not in net.populations:
        raise ConfigError("train.input_population", f"{name!r} is not a population; populations are: {', '.join(net.populations)}")
    if cfg.train.exc_population not in net.populations:
        raise ConfigError("train.exc_population",
                          f"{cfg.train.exc_population!r} is not a population; populations are: {', '.join(net.populations)}")
    shape = list(net.populations[name].shape)
    if shape != list(images.shape[1:]) and net.populations[name].n != images[0].numel():
        raise ConfigError(f"network.populations.{name}.shape",
                          f"{shape} does not match the {cfg.data.name} images {list(images.shape[1:])}")


def run_job(cfg: Any, output_dir: Optional[str | Path] = None, hydra_dir: Optional[str | Path] = None,
            extra_tags: Optional[dict] = None, default_run_name: Optional[str] = None,
            overrides: Optional[list[str]] = None, config_groups: tuple = ()) -> float:
    """Run one configured experiment end to end; return the test accuracy (all activity).
    ``extra_tags`` are added to the MLflow run (the CLI adds the sweep of a multirun).
    Resuming (``resume=``), the run continues with the config stored in its checkpoint;
    ``overrides`` (the command line's) say which keys the user set (None: all of ``cfg``),
    see :mod:`snnrun.run.resume`."""
    typed, raw = validate(cfg)
    if overrides is not None:
        check_overrides_used(_unresolved(cfg), overrides, SCHEMA_KEYS, config_groups)
    ckpt = resume_checkpoint(typed)
    if ckpt is not None and isinstance(ckpt.get("config"), dict):
        typed, raw = validate(resumed_config(ckpt["config"], raw, overrides))
    if typed.train.kind in ("rl", "transfer"):
        from ..rl.job import run_rl_job

        return run_rl_job(typed, raw, ckpt, output_dir, hydra_dir, extra_tags, default_run_name)
    device = resolve_device(typed.device)
    generator = seed_everything(typed.seed)
    out_dir = resume_dir(typed, ckpt) or Path(output_dir or Path("outputs") / typed.name)
    out_dir.mkdir(parents=True, exist_ok=True)

    net = build_network(typed.network, dt_ms=typed.dt_ms, device=device, seed=typed.seed)
    encoder = build_encoder(typed.encoder, dt_ms=typed.dt_ms)
    data = _load_data(typed)
    _check_input_shape(typed, net, data["train"][0])
    check_rewards(net, typed.train.kind)
    sim = make_backend(net, [typed.train.exc_population], typed.backend, device)
    if sim.backend == "numba":
        # the kernel is single-threaded; the few torch ops around it are tiny, and
        # intra-op threads only add contention for them
        torch.set_num_threads(1)

    ws = typed.train.weight_schedule  # its start weights are the built ones, taken before a resume
    ramp = None if ws is None else WeightRamp(net, ws.connection, ws.to, ws.over)
    progress, run_id = Progress(), None
    if ckpt is not None:
        try:
            net.load_state_dict(ckpt["network"])
            if "fast_state" in ckpt:
                net.restore(ckpt["fast_state"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {typed.resume!r} does not fit this network: {exc}") from None
        progress = ckpt["progress"]
        run_id = ckpt.get("mlflow_run_id")
        torch.set_rng_state(ckpt["rng"]["torch"])

    tracker = tracking.Tracker(typed.tracking.uri, typed.tracking.experiment, typed.tracking.run_name or default_run_name,
                               typed.tracking.artifact_location, typed.tracking.enabled)

    final: dict = {}  # set once the run has its test metrics: the last checkpoint says "finished"

    def save_payload(p: Progress) -> dict:
        return {"network": net.state_dict(), "fast_state": net.snapshot(), "progress": p, "config": raw,
                "mlflow_run_id": tracker.run_id, "finished": final.get("metrics"),
                "rng": {"torch": torch.get_rng_state()}, "snnrun_version": _version()}

    def log(metrics: dict, step: Optional[int]) -> None:
        tracker.log_metrics(metrics, step)

    runner_cls = UnsupervisedRunner
    if typed.train.kind == "readout":
        from .readout import ReadoutRunner as runner_cls
    runner = runner_cls(typed, net, encoder, sim, data, out_dir, log, generator, save_payload)
    runner.progress = progress
    runner.ramp = ramp
    tracker.keep_on_exit.append((out_dir / "checkpoint.pt", "checkpoint"))
    tags = run_tags(device, getattr(sim, "backend", "torch"), out_dir, extra_tags)
    with tracking.tracked(tracker, tracking.flatten(raw), tags, run_id):
        if hydra_dir is not None:
            tracker.log_artifact(hydra_dir, ".hydra")
        tracker.log_text(_yaml(raw), "config.yaml")
        tracker.log_metrics({"n_train": len(data["train"][0]), "n_test": len(data["test"][0])}, 0)
        with stop_on_signals(runner):
            runner.train()
            runner.assign()
            result = runner.test()
        final["metrics"] = dict(result.get("metrics") or {"done": 1.0})
        runner.checkpoint()
        tracker.log_artifact(out_dir / "checkpoint.pt", "checkpoint")
        if typed.train.plots:
            _log_plots(tracker, typed, net, runner, result, data)
    return float(result.get("metrics", {}).get("test_accuracy", float("nan")))


def _log_plots(tracker, cfg: RunConfig, net, runner: UnsupervisedRunner, result: dict, data: dict) -> None:
    import matplotlib.pyplot as plt

    from ..integrations import plots

    figs = {}
    inp, exc = cfg.train.input_population, cfg.train.exc_population
    conn = next((c for c in net.connections.values() if c.source is net.populations[inp] and c.target is net.populations[exc]), None)
    image_shape = tuple(net.populations[inp].shape[-2:])
    channels = net.populations[inp].n // (image_shape[0] * image_shape[1]) if len(image_shape) == 2 else 1
    if conn is not None:
        figs["plots/weights.png"] = plots.weights_grid(conn.dense_weights().detach().cpu(), image_shape=image_shape, channels=channels)
    p = runner.progress
    if p.assignments is not None:
        figs["plots/assignments.png"] = plots.assignments_plot(p.assignments, 10)
    if "confusion" in result:
        figs["plots/confusion.png"] = plots.confusion_plot(result["confusion"])
    theta = getattr(net.populations[exc], "theta", None)
    if theta is not None and theta.dim() == 1:
        figs["plots/theta.png"] = plots.theta_histogram(theta.detach().cpu())
    if p.curve_steps:
        figs["plots/accuracy.png"] = plots.accuracy_curve(p.curve_steps, {"all activity": p.curve_all, "proportion": p.curve_prop})
    images = data["test"][0] if len(data["test"][0]) else data["train"][0]
    figs["plots/raster.png"] = plots.spike_raster(runner.record_sample(images[:1]), dt_ms=net.dt)
    for name, fig in figs.items():
        tracker.log_figure(fig, name)
        plt.close(fig)
