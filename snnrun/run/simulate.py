"""``train.kind: simulate``: build any network, drive it, record it, look at it -- no data set,
no learning objective (BindsNET's tutorial: ``snnrun +experiment=tutorial``).

``simulate:`` says what to do::

    simulate:
      inputs: {A: 0.1}          # population -> constant value (a number, or a list of the
                                #   population's shape), turned into spikes by the encoder
                                #   (bernoulli: spike with probability value * max_prob per step)
      batch: 1                  # independent copies simulated side by side
      record: {A: [s], B: [s, v]}
      learning: false           # let the network's learning rules run
      plot_neurons: 50          # voltage traces drawn for the first N neurons

The run lasts the encoder's ``time_ms``.  Logged to MLflow: ``recordings.npz`` (every
recorded variable as ``<population>.<variable>``, shape ``[T, batch, *shape]``, compressed);
plots of the spike raster, the voltage traces and the firing-rate histogram of each recorded
population; metrics ``rate_hz.<population>``, the mean firing rate in spikes per neuron per
second (``mean(s) * 1000 / dt_ms``).
Recording needs the eager torch step: ``backend: auto`` runs it (and says so), ``numba`` and
``cuda`` are refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ..build import build_encoder, build_network
from ..config.validate import ConfigError, from_dict
from ..core import Recorder
from ..core.registry import check
from .backend import make_backend
from .task import Task, register_task


@dataclasses.dataclass
class SimulateConfig:
    inputs: dict = dataclasses.field(default_factory=dict)
    batch: int = 1
    record: dict = dataclasses.field(default_factory=dict)
    learning: bool = False
    plot_neurons: int = 50

    def __post_init__(self) -> None:
        check(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")
        check(self.plot_neurons >= 1, "plot_neurons", f"must be >= 1, got {self.plot_neurons}")
        for pop, names in self.record.items():
            check(isinstance(names, list) and names and all(isinstance(n, str) for n in names), f"record.{pop}",
                  f"expected a list of state variables such as [s, v], got {names!r}")


@register_task("simulate")
class SimulateTask(Task):
    """Drive a network with encoded constant inputs and record what the config names."""

    headline = ""  # rate_hz.<the first recorded population that is not an input>
    sections = ("simulate",)

    def __init__(self, run: Any):
        super().__init__(run)
        cfg = run.cfg
        self.sc = sc = from_dict(SimulateConfig, run.raw.get("simulate") or {}, "simulate")
        self.net = build_network(cfg.network, dt_ms=cfg.dt_ms, device=run.device, seed=cfg.seed)
        self.encoder = build_encoder(cfg.encoder, dt_ms=cfg.dt_ms)
        for key, spec in (("inputs", sc.inputs), ("record", sc.record)):
            for pop in spec:
                if pop not in self.net.populations:
                    raise ConfigError(f"simulate.{key}.{pop}", f"not a population; populations are: {', '.join(self.net.populations)}")
        for pop, names in sc.record.items():
            valid = self.net.populations[pop].state_vars()
            for name in names:
                if name not in valid:
                    raise ConfigError(f"simulate.record.{pop}", f"{name!r} is not a variable of {pop}; choose from: {', '.join(valid)}")
        if sc.record and cfg.backend in ("numba", "cuda"):
            raise ConfigError("backend", f"{cfg.backend} (a generated kernel) counts spikes but cannot record state "
                                         f"variables; use backend=auto or torch")
        backend = "torch" if sc.record and cfg.backend == "auto" else cfg.backend
        self.sim = make_backend(self.net, [], backend, run.device)
        self.backend = self.sim.backend
        self.backend_note = self.sim.note if backend == cfg.backend else "torch (recording needs the eager torch step)"
        self.values = {pop: self._value(pop, v) for pop, v in sc.inputs.items()}
        self.recorder = Recorder(sc.record)
        spiking = [p for p, names in sc.record.items() if "s" in names]
        driven = [p for p in spiking if self.net.populations[p].kind != "input"] or spiking
        self.headline = f"rate_hz.{driven[0]}" if driven else ""
        self.recordings: dict[str, np.ndarray] = {}

    def _value(self, pop: str, value: Any) -> torch.Tensor:
        shape = tuple(self.net.populations[pop].shape)
        try:
            x = torch.as_tensor(value, dtype=torch.float32)
            x = x.expand(shape) if x.dim() == 0 else x.reshape(shape)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"simulate.inputs.{pop}", f"expected a number or a list of shape {list(shape)}, got {value!r}") from None
        return x.expand(self.sc.batch, *shape).to(self.run.device)

    def execute(self) -> dict[str, float]:
        inputs = {pop: self.encoder(x) for pop, x in self.values.items()}
        self.net.reset_state()
        self.sim.run(inputs, learning=self.sc.learning, n_steps=self.encoder.n_steps, recorders=[self.recorder])
        self.recordings = {f"{pop}.{var}": self.recorder.get(pop, var).cpu().numpy()
                           for pop, names in self.sc.record.items() for var in names}
        path = self.run.out_dir / "recordings.npz"
        np.savez_compressed(path, **self.recordings)
        self.run.tracker.log_artifact(path, "recordings")
        # spikes per neuron per second: the mean spike probability per step over 1 step's seconds
        metrics = {f"rate_hz.{pop}": float(self.recordings[f"{pop}.s"].astype(np.float64).mean() * 1000.0 / self.net.dt)
                   for pop, names in self.sc.record.items() if "s" in names}
        self.run.log(metrics, None)
        return metrics

    def log_plots(self, tracker: Any) -> None:
        from .simulate_plots import log_simulation_plots

        log_simulation_plots(tracker, self.recordings, self.net.dt, self.sc.plot_neurons)
