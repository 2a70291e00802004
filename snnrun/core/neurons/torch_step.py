"""The eager torch step of a population, printed from its compiled model.

The generated function ``step(pop, I, I_inh)`` runs, vectorised over ``[B, *shape]``::

    slow_update                              (while learning; slow state [*shape])
    active = refrac_count < dt / 2           (when refractory)
    update
    refrac_count = max(refrac_count - dt, 0)
    s = threshold
    reset, refrac_count = refrac             where s
    one spike per sample among the crossers  (one_spike; counter-based draw, see models.rng)
    slow state += increments summed over the batch   (while learning)

and writes every state tensor in place (recorders and the fused kernel hold views of
them).  The source is kept on the population (``pop.torch_source``) for inspection.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..models import rng
from ..models.ir import Assign
from ..models.printer import TorchPrinter, f32_text


def one_spike(pop: Any, s: torch.Tensor) -> torch.Tensor:
    """Keep, per sample, the crosser with the largest counter-based draw (see models.rng)."""
    flat = s.reshape(s.shape[0], -1)
    u = rng.draw(rng.step_key(pop.rng_state[0], pop.stream, pop.rng_state[1]), pop.sites)
    u = torch.where(flat, u, -1)
    win = torch.argmax(u, dim=1, keepdim=True)
    keep = flat.gather(1, win)
    return torch.zeros_like(flat).scatter_(1, win, keep).view_as(s)


def torch_step_source(c: Any, one: bool) -> str:
    """Source of ``step(pop, I, I_inh)`` for the compiled model ``c``."""
    env = {name: name for name, _ in c.fast + c.slow}
    env.update(I="I", I_inh="I_inh", active="active")
    lines = ["learning = pop.learning"]
    lines += [f"{name} = pop.{name}" for name, _ in c.fast + c.slow]
    printer = TorchPrinter(env, like="I")
    if c.slow_update:
        body = printer.block(c.slow_update)
        writes = [f"pop.{n}.copy_({printer.env[n]})" for n, _ in c.slow if printer.env[n] != n]
        lines += ["if learning:"] + ["    " + x for x in body + writes]
        lines += [f"{n} = pop.{n}" for n, _ in c.slow if printer.env[n] != n]
        printer.env.update({n: n for n, _ in c.slow})
    if c.refrac > 0:
        lines.append(f"active = pop.refrac_count < {f32_text(c.refrac_tol)}")
    for name in c.slow_incremented:
        lines.append(f"d_{name} = torch.zeros_like(I)")

    def increment(s: Assign, value: str, mask: Any) -> Any:
        if s.target not in c.slow_incremented:
            return None
        sign = "+" if s.op == "+=" else "-"
        term = value if mask is None else f"torch.where({mask}, {value}, 0.0)"
        return [f"d_{s.target} = d_{s.target} {sign} {term}"]

    lines += printer.block(c.update, assign=increment)
    if c.refrac > 0:
        lines.append(f"rc = torch.clamp(pop.refrac_count - {f32_text(c.dt)}, min=0.0)")
    thr, is_tensor = printer.expr(c.threshold)
    lines.append(f"s = {thr}" if is_tensor else f"s = torch.full_like(I, {thr}, dtype=torch.bool)")
    lines += printer.block(c.reset, mask="s", assign=increment)
    if c.refrac > 0:
        lines.append(f"rc = torch.where(s, {f32_text(c.refrac)}, rc)")
        lines.append("pop.refrac_count.copy_(rc)")
    for name, _ in c.fast:
        if printer.env[name] != name:
            lines.append(f"pop.{name}.copy_({printer.env[name]})")
    if one:
        lines.append("s = one_spike(pop, s)")
    lines.append("pop.s.copy_(s)")
    if c.slow_incremented:
        lines.append("if learning:")
        lines += [f"    pop.{n}.add_(d_{n}.sum(0))" for n in c.slow_incremented]
    return "def step(pop, I, I_inh):\n" + "\n".join("    " + x for x in lines) + "\n"


def make_torch_step(c: Any, one: bool) -> tuple[Callable, str]:
    source = torch_step_source(c, one)
    namespace: dict[str, Any] = {"torch": torch, "one_spike": one_spike}
    exec(compile(source, f"<snnrun {c.model.kind} step>", "exec"), namespace)
    return namespace["step"], source
