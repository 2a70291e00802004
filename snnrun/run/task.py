"""Tasks: what a run does (``train.kind``), registered like neuron kinds.

A task is a class registered with ``@register_task("kind")``.  The run lifecycle
(:class:`snnrun.run.lifecycle.Run`) owns everything a task shares with the others --
seeding every RNG, the device, the output folder, the tracker, resume, atomic checkpoints,
signals, the NaN guard, artifact logging -- and asks the task only for what is its own:

- ``__init__(run)``: build the network, data, environment ...; check shapes (raise
  :class:`~snnrun.config.validate.ConfigError` naming the key);
- ``state()`` / ``load_state(ckpt)``: the task's part of a checkpoint;
- ``rng_state()`` / ``set_rng_state(rng)``: RNGs the task owns (the run saves torch, numpy
  and Python's);
- ``start()``: metrics to log once the tracked run is open;
- ``execute()``: the phases, returning the final metrics; a loop with safe points polls
  ``stop_target.stop_signal`` (see :mod:`snnrun.run.signals`) and calls ``run.save()``;
- ``log_plots(tracker)``, ``close()``.

``headline`` names the metric :func:`snnrun.run.job.run_job` returns; ``resumable: False``
refuses ``resume=``.  A new task is one registration in its own module (this module imports
none: :func:`snnrun.run.lifecycle.task_class` imports the built-in ones when a kind is
looked up).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

TASKS: dict[str, type["Task"]] = {}


class Task:
    """Base of every task; see the module docstring."""

    kind: ClassVar[str] = ""
    headline: ClassVar[str] = ""
    resumable: ClassVar[bool] = True
    sections: ClassVar[tuple[str, ...]] = ()  # top-level config sections the task reads (``rl``, ``env``)
    config_network: ClassVar[bool] = True  # the network is built from ``network:`` (False: in code)

    net: Any = None  # the spiking network (the run's NaN guard checks it before each checkpoint)
    backend: str = "torch"  # what actually simulates it (tagged on the run)
    backend_note: str = ""  # ... and why (shown in the run's banner)
    stop_target: Any = None  # object whose ``stop_signal`` the task's loop polls (None: stop at once)

    def __init__(self, run: Any):
        self.run = run

    def state(self) -> dict[str, Any]:
        return {"network": self.net.state_dict()} if self.net is not None else {}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["network"])

    def rng_state(self) -> dict[str, Any]:
        return {}

    def set_rng_state(self, rng: dict[str, Any]) -> None:
        pass

    def start(self) -> None:
        pass

    def execute(self) -> dict[str, float]:
        raise NotImplementedError

    def log_plots(self, tracker: Any) -> None:
        pass

    def close(self) -> None:
        pass


def register_task(kind: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: ``@register_task("rl")`` makes ``train.kind: rl`` run this task."""

    def deco(cls: type[Task]) -> type[Task]:
        if kind in TASKS and TASKS[kind] is not cls:
            raise KeyError(f"task kind {kind!r} registered twice")
        cls.kind = kind
        TASKS[kind] = cls
        return cls

    return deco
