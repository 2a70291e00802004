"""Recorded events (event cameras, audio-spike data) binned into spike trains.

A batch of recordings travels as an :class:`EventBatch`: one row per event, ``sample`` (which
recording of the batch), ``pos`` (the input neuron: ``c * H * W + y * W + x`` for an event of
polarity/channel ``c`` at pixel ``(y, x)`` of a ``[C, H, W]`` sensor) and ``t_us`` (its time
in microseconds from the start of the recording).

The ``events`` encoder bins it at the simulation's ``dt``:

    step(event) = floor(t_us / (1000 * dt_ms))

input neuron ``pos`` of sample ``b`` spikes at step ``k`` when at least one event of ``b`` at
``pos`` has ``step == k``; the train has ``T = round(time_ms / dt_ms)`` steps.  Two things
are counted, never hidden (:meth:`Events.stats`, logged as metrics): events at or after
``T * dt_ms`` (``late``: outside the presentation window) and events that share a step and a
neuron with an earlier one (``merged``: a neuron spikes at most once per step).  This is
tonic's ``ToFrame(time_window=1000 * dt_ms, start_time=0)`` clipped to one spike per bin
(checked in the tests), computed as one scatter on the batch's device.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .base import ENCODERS, Encoder, EncoderParams


class EventBatch(NamedTuple):
    """Events of ``shape[0]`` recordings on a ``shape[1:] = [C, H, W]`` sensor (see the module
    docstring); ``sample``, ``pos``, ``t_us`` are int64 ``[E]`` on one device."""

    sample: torch.Tensor
    pos: torch.Tensor
    t_us: torch.Tensor
    shape: torch.Size

    def __len__(self) -> int:
        return int(self.shape[0])

    def to(self, device=None, non_blocking: bool = False) -> "EventBatch":
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return EventBatch(move(self.sample), move(self.pos), move(self.t_us), self.shape)

    @property
    def device(self) -> torch.device:
        return self.t_us.device


@ENCODERS.register("events", EncoderParams)
class Events(Encoder):
    """Recorded events as spikes: step ``floor(t / dt)``, at most one spike per neuron and step."""

    def __init__(self, params: EncoderParams, dt: float = 1.0):
        super().__init__(params, dt)
        dt_us = 1000.0 * self.dt
        self._dt_us_int = int(round(dt_us)) if abs(dt_us - round(dt_us)) < 1e-9 else None
        self._dt_us = dt_us
        # [events, late, merged] binned so far, on the data's device (checkpointed by the task)
        self.counts: Optional[torch.Tensor] = None

    def __call__(self, x, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if not isinstance(x, EventBatch):
            raise ValueError("events encoder: it bins recorded events (data.name=nmnist, dvs_gesture, shd or another "
                             f"tonic data set), got {type(x).__name__}; pick an image encoder such as poisson for images")
        return self.encode(x, generator)

    def steps(self, t_us: torch.Tensor) -> torch.Tensor:
        """``floor(t_us / (1000 dt))`` exactly (integer division when ``dt`` is a whole number of µs)."""
        if self._dt_us_int is not None:
            return torch.div(t_us, self._dt_us_int, rounding_mode="floor")
        return torch.floor(t_us.double() / self._dt_us).long()

    def encode(self, x: EventBatch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        T, (B, *sensor) = self.n_steps, tuple(x.shape)
        n = 1
        for s in sensor:
            n *= int(s)
        # one flat index per event; late events all land in an extra step T, cut off below
        step = self.steps(x.t_us).clamp_(max=T)
        flat = (step * B + x.sample) * n + x.pos
        out = torch.zeros((T + 1, B, n), dtype=torch.bool, device=x.device)
        out.view(-1)[flat] = True
        # merged: an in-window event whose (step, sample, neuron) an earlier one already has
        ordered = flat.sort().values
        merged = ((ordered[1:] == ordered[:-1]) & (ordered[1:] < T * B * n)).sum()
        counts = torch.stack([merged.new_tensor(len(flat)), (step == T).sum(), merged])
        self.counts = counts if self.counts is None else self.counts + counts.to(self.counts.device)
        return out[:T].view(T, B, *sensor)

    def stats(self) -> dict[str, float]:
        """Events binned so far: ``input_events``, and the fractions ``late`` (at or after
        ``T * dt``, dropped) and ``merged`` (a second event of a neuron within one step)."""
        if self.counts is None:
            return {}
        total, late, merged = (float(v) for v in self.counts.cpu())
        return {"input_events": total, "input_events_late_fraction": late / max(total, 1.0),
                "input_events_merged_fraction": merged / max(total, 1.0)}
