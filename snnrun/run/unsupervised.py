"""Unsupervised classification (Diehl & Cook 2015): train with STDP, assign labels to
excitatory neurons from their activity, classify test samples by the assigned groups.

Per training batch: encode the images into spike trains, present them with learning on
(optionally re-presenting at higher intensity while the excitatory layer fires fewer
than ``min_spikes`` spikes, then a silent rest period or a state reset), count the
excitatory spikes on the device, copy the counts to the host once.  Every
``update_interval`` samples the window's counts update the label assignment and the
running training accuracy is logged.  With ``train.supervise_current > 0`` (supervised
Diehl & Cook) the excitatory neurons are split into ``N_CLASSES`` consecutive groups and,
during training only, the group of each sample's label receives that input every step
(a conductance for conductance neurons): those neurons are clamped to fire for their class,
and lateral inhibition silences the rest.  After training, labels are assigned from the
training activity (or from a learning-off pass), then the test set is classified
with learning off by "all activity" and "proportion weighting".
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from ..config.validate import ConfigError
from ..core import Network, Recorder
from ..core.network import SimulationError
from ..core.encoders import BernoulliTrain, Encoder
from . import evaluation as ev
from .signals import check_stop
from .streams import collect_streams

N_CLASSES = 10


@dataclass
class Progress:
    """Resumable position and accumulated label statistics."""

    epoch: int = 0
    sample: int = 0  # samples done within the epoch
    seen: int = 0  # samples done overall
    rates: Optional[torch.Tensor] = None
    assignments: Optional[torch.Tensor] = None
    proportions: Optional[torch.Tensor] = None
    curve_steps: list = field(default_factory=list)
    curve_all: list = field(default_factory=list)
    curve_prop: list = field(default_factory=list)
    window_counts: list = field(default_factory=list)  # the running-accuracy window so far
    window_labels: list = field(default_factory=list)
    window_presentations: int = 0  # batches presented in the window, retries included
    readout: Optional[dict] = None  # reservoir runs: the trained linear readout


class WeightRamp:
    """``train.weight_schedule``: a fixed connection's weights moved linearly from their
    initial values ``w0`` to the constant ``to`` (times the mask) as training progresses."""

    def __init__(self, net: Network, connection: str, to: float, over: float):
        path = "train.weight_schedule.connection"
        if connection not in net.connections:
            raise ConfigError(path, f"no connection {connection!r}; connections are: {', '.join(net.connections)}")
        conn = net.connections[connection]
        if conn.rule is not None and conn.learning_enabled:
            raise ConfigError(path, f"connection {connection!r} learns ({conn.rule.kind}); only fixed connections can be scheduled")
        self.conn, self.over = conn, float(over)
        self.w0 = conn.w.clone()
        self.target = torch.full_like(conn.w, float(to))
        if conn.mask is not None:
            self.target.mul_(conn.mask)
        self.frac = -1.0

    def apply(self, progress: float) -> None:
        """Set the weights for ``progress`` in [0, 1] of training (in place: backends share them)."""
        frac = min(1.0, max(0.0, progress) / self.over)
        if frac != self.frac:
            self.conn.w.copy_(torch.lerp(self.w0, self.target, frac))
            self.frac = frac


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class UnsupervisedRunner:
    def __init__(self, cfg: Any, net: Network, encoder: Encoder, simulator: Any, data: dict[str, Any],
                 log: Callable[[dict, Optional[int]], None], save: Optional[Callable[[], Any]] = None):
        self.cfg = cfg
        self.net = net
        self.encoder = encoder
        self.sim = simulator
        self.data = data
        self.n_classes = int(data.get("n_classes", N_CLASSES))
        self.log = log
        self.save = save  # writes the run's checkpoint (the run lifecycle owns what goes in it)
        t = cfg.train
        self.exc = t.exc_population
        self.inp = t.input_population
        self.device = net.device
        self.rest_steps = int(round(t.rest_ms / net.dt))
        self._rest_input: Optional[torch.Tensor] = None
        self.ramp: Optional[WeightRamp] = None  # train.weight_schedule (set by the job before a resume)
        self.progress = Progress()
        self.on_interval: Optional[Callable[[int], None]] = None  # after each update interval (live plots)
        self.stop_signal: Optional[int] = None  # set by SIGINT / SIGTERM (signals.stop_on_signals)
        self.presentations = 0  # batches presented, retries (train.min_spikes) included
        self.replicate: Optional[Callable[[], tuple[Network, Any]]] = None  # (network, simulator) copies (streams; None: streams.build_replica)
        self._saved_at = time.monotonic()  # the last checkpoint (train.checkpoint_minutes)

    # --------------------------------------------------------------- presenting
    def present(self, x: torch.Tensor, learning: bool, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Present a batch ``x [B, *shape]`` (values in [0, 1]); return Ae spike counts [B, n].
        ``labels`` (training with ``supervise_current``) clamp each label's neuron group."""
        t = self.cfg.train
        B = x.shape[0]
        supervised = labels is not None and (t.supervise_current > 0 or t.supervise_others != 0)
        extra = {self.exc: self._clamp(labels)} if supervised else {}
        base = float(getattr(self.encoder.params, "intensity", 1.0)) or 1.0
        factor = torch.ones(B, device=self.device)
        counts = None
        need = torch.ones(B, dtype=torch.bool, device=self.device)
        for attempt in range(t.max_retries + 1 if t.min_spikes > 0 else 1):
            # a retry raises the rate of the samples still short of spikes (images only)
            xs = x if attempt == 0 else x * (factor * need).view(B, *([1] * (x.dim() - 1)))
            self.presentations += 1
            spikes = self.encoder.train(xs) or self.encoder(xs)
            if self.rest_steps == 0:
                self.net.reset_state()
            c = self.sim.run({self.inp: spikes, **extra}, learning=learning)[self.exc].reshape(B, -1)
            counts = c if counts is None else torch.where(need[:, None], c, counts)
            if self.rest_steps:
                self._rest(learning)
            if t.min_spikes <= 0:
                break
            need = counts.sum(1) < t.min_spikes
            if not bool(need.any()):
                break
            factor = factor + need * (t.intensity_step / base)
        self._check_finite(quick=True, where=f"at sample {self.progress.seen + B} ({'train' if learning else 'test/assign'})")
        return counts

    def _clamp(self, labels: torch.Tensor) -> torch.Tensor:
        """Input [T, B, *shape]: ``supervise_current`` into the neuron group of each sample's
        label, ``supervise_others`` into every other neuron."""
        pop = self.net.populations[self.exc]
        group = torch.arange(pop.n, device=self.device) * self.n_classes // pop.n  # neuron -> class
        t = self.cfg.train
        drive = torch.where(group[None, :] == labels.to(self.device)[:, None], t.supervise_current, t.supervise_others)
        return drive.view(1, len(labels), *pop.shape).expand(self.encoder.n_steps, *drive.shape[:1], *pop.shape)

    def _check_finite(self, quick: bool, where: str) -> None:
        bad = self.net.nonfinite(quick=quick)
        if bad is not None:
            raise SimulationError(f"{bad} became NaN/inf {where}; check the parameters (weights, time constants, dt)")

    def _rest(self, learning: bool) -> None:
        shape = (self.net.batch, *self.net.populations[self.inp].shape)
        if self._rest_input is None or tuple(self._rest_input.prob.shape) != shape:
            self._rest_input = BernoulliTrain(torch.zeros(shape, device=self.device), self.rest_steps)
        self.sim.run({self.inp: self._rest_input}, learning=learning)

    def collect(self, images: torch.Tensor, learning: bool, desc: str) -> tuple[torch.Tensor, float]:
        """Present ``images`` in batches (learning off: in ``train.eval_streams`` parallel
        parts, :mod:`.streams`); return (counts [N, n] on CPU, images per second)."""
        t0 = time.perf_counter()
        streams = 1 if learning else min(self.cfg.train.eval_streams, len(images))
        with self._bar(len(images), self._phase(desc)) as bar:  # closed (cleared) however the phase ends
            tick = (lambda n: None) if bar is None else bar.update
            if streams > 1:
                counts, presented, batches = collect_streams(self, images, bar, streams)
            else:
                counts, presented, batches = self.present_all(images, learning, tick)
        check_stop(self)
        self.presentations_per_batch = presented / max(batches, 1)  # 1 + retries
        return counts, len(images) / max(time.perf_counter() - t0, 1e-9)

    def present_all(self, images: torch.Tensor, learning: bool, tick: Callable[[int], None],
                    stop: Optional[Callable[[], bool]] = None) -> tuple[torch.Tensor, int, int]:
        """Present ``images`` batch by batch; return (counts [N, n] on CPU, presentations,
        batches).  Stops early when ``stop()`` (default: a signal asked this runner to stop)."""
        stop = stop or (lambda: bool(self.stop_signal))
        p0, d = self.presentations, self.cfg.data
        # learning off, samples are independent: a larger batch spreads over the cores
        bs = d.batch_size if learning else (d.eval_batch_size or d.batch_size)
        out = []
        for i in range(0, len(images), bs):
            x = images[i:i + bs].to(self.device, non_blocking=True)
            out.append(self.present(x, learning).cpu())
            tick(len(x))
            if stop():
                break
        counts = torch.cat(out) if out else torch.zeros(0, self.net.populations[self.exc].n)
        return counts, self.presentations - p0, len(out)

    def _phase(self, name: str) -> str:
        """``2/3 assign labels``: the phase's place among this run's phases."""
        t = self.cfg.train
        phases = ["train", *(["assign labels"] if t.assign_pass else []), *(["test"] if len(self.data.get("test", ((),))[0]) else [])]
        return f"{phases.index(name) + 1}/{len(phases)} {name}" if name in phases else name

    def _later_images(self) -> int:
        """Images the phases after training present (the assign pass, the test)."""
        t, n = self.cfg.train, 0
        if t.assign_pass:
            n += len(self.data["train"][0]) if t.assign_n is None else min(t.assign_n, len(self.data["train"][0]))
        return n + len(self.data.get("test", ((),))[0])

    def _bar(self, total: int, desc: str, initial: int = 0):
        """A progress bar (stderr) that clears itself when its phase ends; ``initial``: work
        done before a resume (not counted in the rate)."""
        if not self.cfg.train.progress:
            return nullcontext()
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit="img", dynamic_ncols=True, leave=False)

    # --------------------------------------------------------------- phases
    def train(self) -> None:
        cfg, p = self.cfg, self.progress
        images, labels = self.data["train"]
        n = len(images)
        bs, interval = cfg.data.batch_size, cfg.train.update_interval
        self.net.train(True)
        for epoch in range(p.epoch, cfg.train.epochs):
            order = self._order(epoch, n)
            epochs = f" (epoch {epoch + 1}/{cfg.train.epochs})" if cfg.train.epochs > 1 else ""
            with self._bar(n, self._phase("train") + epochs, initial=p.sample) as bar:
                t_start, n_timed = time.perf_counter(), 0
                in_window = sum(len(c) for c in p.window_counts)  # samples in the window (O(1) per batch below)
                while p.sample < n:
                    if self.ramp is not None:
                        self.ramp.apply((epoch * n + p.sample) / (cfg.train.epochs * n))
                    idx = order[p.sample:p.sample + bs]
                    x = images[idx].to(self.device, non_blocking=True)
                    before = self.presentations
                    p.window_counts.append(self.present(x, learning=True, labels=labels[idx]).cpu())
                    p.window_presentations = getattr(p, "window_presentations", 0) + self.presentations - before
                    p.window_labels.append(labels[idx])
                    p.sample += len(idx)
                    p.seen += len(idx)
                    n_timed += len(idx)
                    in_window += len(idx)
                    if bar is not None:
                        bar.update(len(idx))
                    if in_window >= interval or p.sample >= n:
                        ips = n_timed / max(time.perf_counter() - t_start, 1e-9)
                        self._check_finite(quick=False, where=f"by sample {p.seen}")
                        self._update_labels(torch.cat(p.window_counts), torch.cat(p.window_labels), ips, bar)
                        p.window_counts, p.window_labels = [], []
                        t_start, n_timed, in_window = time.perf_counter(), 0, 0
                    if (p.seen % cfg.train.checkpoint_every < bs or self.stop_signal
                            or time.monotonic() - self._saved_at >= 60.0 * cfg.train.checkpoint_minutes):
                        self.checkpoint()
                    check_stop(self)
            p.epoch, p.sample = epoch + 1, 0
        if self.ramp is not None:
            self.ramp.apply(1.0)
        self.checkpoint()

    def _order(self, epoch: int, n: int) -> torch.Tensor:
        if not self.cfg.data.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(int(self.cfg.seed) * 1000 + epoch)
        return torch.randperm(n, generator=g)

    def _update_labels(self, counts: torch.Tensor, labels: torch.Tensor, ips: float, bar) -> None:
        p = self.progress
        metrics = {"train_images_per_s": ips,
                   "train_presentations_per_batch": p.window_presentations / max(len(p.window_counts), 1)}
        p.window_presentations = 0
        if p.assignments is not None:
            acc = ev.accuracy(ev.all_activity(counts, p.assignments, self.n_classes), labels)
            accp = ev.accuracy(ev.proportion_weighting(counts, p.assignments, p.proportions, self.n_classes), labels)
            metrics.update(train_accuracy=acc, train_accuracy_proportion=accp)
            p.curve_steps.append(p.seen)
            p.curve_all.append(acc)
            p.curve_prop.append(accp)
            if bar is not None:
                later = self._later_images()
                then = f", then ~{_duration(later / max(ips, 1e-9))} for {later} more images" if later else ""
                bar.set_postfix_str(f"train acc {100 * acc:.1f}%{then}")
        p.assignments, p.proportions, p.rates = ev.assign_labels(counts, labels, self.n_classes, rates=p.rates)
        self.log(metrics, p.seen)
        if self.on_interval is not None:
            self.on_interval(p.seen)

    def assign(self) -> None:
        """Final label assignment: a learning-off pass over training samples, if configured."""
        t = self.cfg.train
        if not t.assign_pass:
            return
        images, labels = self.data["train"]
        n = len(images) if t.assign_n is None else min(t.assign_n, len(images))
        self.net.train(False)
        counts, ips = self.collect(images[:n], learning=False, desc="assign labels")
        p = self.progress
        p.assignments, p.proportions, p.rates = ev.assign_labels(counts, labels[:n], self.n_classes)
        acc = ev.accuracy(ev.all_activity(counts, p.assignments, self.n_classes), labels[:n])
        metrics = {"assign_accuracy": acc, "assign_images_per_s": ips,
                   "assign_presentations_per_batch": self.presentations_per_batch}
        if t.readout_eval:  # a linear classifier on the same counts: what the features support

            p.readout = ev.fit_readout(counts, labels[:n], self.n_classes, t.readout_epochs, t.readout_lr,
                                    t.readout_weight_decay, self.cfg.seed)
            metrics["readout_train_accuracy"] = ev.accuracy(ev.predict(p.readout, counts), labels[:n])
        self.log(metrics, p.seen)

    def test(self) -> dict[str, Any]:
        images, labels = self.data["test"]
        p = self.progress
        if len(images) == 0 or p.assignments is None:
            return {}
        self.net.train(False)
        counts, ips = self.collect(images, learning=False, desc="test")
        pred = ev.all_activity(counts, p.assignments, self.n_classes)
        predp = ev.proportion_weighting(counts, p.assignments, p.proportions, self.n_classes)
        metrics = {
            "test_accuracy": ev.accuracy(pred, labels),
            "test_accuracy_proportion": ev.accuracy(predp, labels),
            "test_images_per_s": ips,
        }
        if getattr(p, "readout", None) is not None:

            metrics["test_accuracy_readout"] = ev.accuracy(ev.predict(p.readout, counts), labels)
        self.log({**metrics, "test_presentations_per_batch": self.presentations_per_batch}, p.seen)
        return {"metrics": metrics, "confusion": ev.confusion_matrix(pred, labels, self.n_classes), "counts": counts}

    def checkpoint(self) -> None:
        self._saved_at = time.monotonic()
        if self.save is not None:
            self.save()

    def record_sample(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spikes of every population for one sample (learning off), for the raster plot."""
        self.net.train(False)
        rec = Recorder({name: ["s"] for name in self.net.populations})
        spikes = self.encoder(x[:1].to(self.device))
        self.net.run({self.inp: spikes}, learning=False, recorders=[rec], reset=True)
        return {name: rec.get(name, "s")[:, 0].reshape(rec.get(name, "s").shape[0], -1).cpu()
                for name in self.net.populations}
