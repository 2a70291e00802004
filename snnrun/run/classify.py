"""Classification tasks on image datasets: ``train.kind: unsupervised`` (STDP learning,
label assignment by spike counts, test) and ``readout`` (a fixed reservoir read out by a
trained linear classifier).  The phases live in :mod:`snnrun.run.unsupervised` and
:mod:`snnrun.run.readout`; this module builds them for the run lifecycle."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..build import build_encoder, build_network
from ..config.validate import ConfigError
from .backend import check_rewards, make_backend
from . import live
from .classify_plots import input_weights
from .live import LivePlots
from .readout import ReadoutRunner
from .task import Task, register_task
from .unsupervised import N_CLASSES, UnsupervisedRunner, WeightRamp


def load_data(cfg: Any) -> dict[str, Any]:
    """``{"train": (inputs, labels), "test": (inputs, labels), "n_classes": C}`` as ``cfg.data``
    says: image tensors ``[N, C, H, W]`` for image data sets, lazy
    :class:`~snnrun.integrations.events.EventData` for event data sets (``encoder: events``)."""
    from ..integrations.datasets import load_dataset
    from ..integrations.events import check_dataset_name, is_event_dataset, load_events

    d = cfg.data
    kind = cfg.encoder["kind"]
    check_dataset_name(d.name)  # a typo is named as one, before any pairing with the encoder
    events, binning = is_event_dataset(d.name), kind == "events"
    if events != binning:
        raise ConfigError("encoder.kind", f"{kind!r} cannot encode data.name={d.name}: event data sets "
                          "need encoder=events, image data sets an image encoder (poisson, bernoulli, ...)")
    if events and cfg.train.min_spikes > 0:
        raise ConfigError("train.min_spikes", "re-presents a sample at a higher input rate, and recorded events "
                          "have no rate to raise; set train.min_spikes=0 for event data")
    if events:
        train_x, train_y, n_classes = load_events(d.name, d.root, train=True, n=d.n_train, download=d.download)
        train = (train_x, train_y)
    else:
        train, n_classes = load_dataset(d.name, d.root, train=True, n=d.n_train, download=d.download,
                                        grayscale=d.grayscale), N_CLASSES  # MNIST, Fashion-MNIST, CIFAR-10
    if cfg.train.test and d.n_test != 0 and events:
        test_x, test_y, test_classes = load_events(d.name, d.root, train=False, n=d.n_test, download=d.download)
        test, n_classes = (test_x, test_y), max(n_classes, test_classes)
    elif cfg.train.test and d.n_test != 0:
        test = load_dataset(d.name, d.root, train=False, n=d.n_test, download=d.download, grayscale=d.grayscale)
    else:
        test = (train[0][:0], torch.zeros(0, dtype=torch.long))
    return {"train": train, "test": test, "n_classes": n_classes}


def check_input_shape(cfg: Any, net: Any, images: torch.Tensor) -> None:
    """The input and excitatory populations exist and the input fits the images."""
    for key in ("input_population", "exc_population"):
        name = getattr(cfg.train, key)
        if name not in net.populations:
            raise ConfigError(f"train.{key}", f"{name!r} is not a population; populations are: {', '.join(net.populations)}")
    name = cfg.train.input_population
    shape = list(net.populations[name].shape)
    if shape != list(images.shape[1:]) and net.populations[name].n != math.prod(images.shape[1:]):
        raise ConfigError(f"network.populations.{name}.shape",
                          f"{shape} does not match the {cfg.data.name} inputs {list(images.shape[1:])}")


@register_task("unsupervised")
class UnsupervisedTask(Task):
    """Train with the network's learning rules, assign labels, test."""

    headline = "test_accuracy"
    runner_cls = UnsupervisedRunner

    def __init__(self, run: Any):
        super().__init__(run)
        cfg = run.cfg
        self.net = build_network(cfg.network, dt_ms=cfg.dt_ms, device=run.device, seed=cfg.seed)
        encoder = build_encoder(cfg.encoder, dt_ms=cfg.dt_ms)
        self.data = load_data(cfg)
        check_input_shape(cfg, self.net, self.data["train"][0])
        check_rewards(self.net, cfg.train.kind)
        sim = make_backend(self.net, [cfg.train.exc_population], cfg.backend, run.device)
        self.backend, self.backend_note = sim.backend, sim.note
        if sim.backend == "numba":
            # the kernel is single-threaded; the few torch ops around it are tiny, and
            # intra-op threads only add contention for them
            torch.set_num_threads(1)
        ws = cfg.train.weight_schedule  # its start weights are the built ones, taken before a resume
        self.runner = self.runner_cls(cfg, self.net, encoder, sim, self.data, run.log, run.save)
        self.runner.ramp = None if ws is None else WeightRamp(self.net, ws.connection, ws.to, ws.over)
        self.stop_target = self.runner
        self.result: dict[str, Any] = {}
        self.live = LivePlots(run.tracker, cfg.train.live_plots, cfg.train.live_budget)
        self.runner.on_interval = lambda step: self.live.maybe(step, self._live_images)
        if cfg.train.eval_streams > 1:
            if hasattr(encoder, "counts"):
                raise ConfigError("train.eval_streams", f"the {cfg.encoder['kind']} encoder counts what it bins across "
                                  "presentations, which parallel streams would race on; use 1")
            if sim.backend in ("compile", "cuda"):
                raise ConfigError("train.eval_streams", f"parallel streams run the numba or torch backends, not "
                                  f"{sim.backend} (one GPU runs a batch in parallel blocks: raise data.eval_batch_size); "
                                  f"use 1 with backend={sim.backend}")

    def _live_images(self) -> dict[str, Any]:
        """The receptive fields of the input -> excitatory connection and the label assignments."""
        images = {}
        weights = input_weights(self.run.cfg, self.net)
        if weights is not None:
            w, shape, channels = weights
            images["receptive_fields"] = live.receptive_fields(w.numpy(), shape, channels)
        a = self.runner.progress.assignments
        if a is not None:
            images["assignments"] = live.assignments(a.cpu().numpy(), self.runner.n_classes)
        return images

    def state(self) -> dict[str, Any]:
        state = {"network": self.net.state_dict(), "fast_state": self.net.snapshot(), "progress": self.runner.progress}
        counts = getattr(self.runner.encoder, "counts", None)
        if counts is not None:  # event data: the events binned so far (metrics input_events*)
            state["event_counts"] = counts.cpu()
        return state

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["network"])
        if "fast_state" in ckpt:
            self.net.restore(ckpt["fast_state"])
        self.runner.progress = ckpt["progress"]
        if "event_counts" in ckpt:
            self.runner.encoder.counts = ckpt["event_counts"].to(self.net.device)

    def start(self) -> None:
        # sizes are parameters (what Compare plots against), not metrics
        self.run.tracker.log_params({"n_train": len(self.data["train"][0]), "n_test": len(self.data["test"][0])})

    def execute(self) -> dict[str, float]:
        self.runner.train()
        self.live.report()
        self.runner.assign()
        self.result = self.runner.test()
        metrics = dict(self.result.get("metrics") or {})
        stats = getattr(self.runner.encoder, "stats", None)
        if stats is not None:  # event data: how many events fell outside the window or were merged
            counted = stats()
            metrics.update(counted)
            self.run.log(counted, self.runner.progress.seen)
        return metrics

    def log_plots(self, tracker: Any) -> None:
        from .classify_plots import log_plots  # matplotlib: only when plotting

        log_plots(tracker, self.run.cfg, self.net, self.runner, self.result, self.data)


@register_task("readout")
class ReadoutTask(UnsupervisedTask):
    """A fixed reservoir's spike counts read out by a trained linear classifier."""

    runner_cls = ReadoutRunner
