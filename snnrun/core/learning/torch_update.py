"""The eager torch update of a learning rule, printed from its compiled model.

The generated ``update(rule, c, reward)`` runs, once per step while learning::

    traces decay (x <- x exp(-dt / tau)), then set / add at their side's spikes
    synapse variables with tau_ms decay
    on_pre terms:  d<target> += outer(s_pre * pre-factors [* reward], post-factors) * coeff * syn-factors
                   (and on_pre's trace assignments, in order)
    on_post terms: d<target> += outer(pre-factors [* reward], s_post * post-factors) * coeff * syn-factors
    synapse variables += their increments
    on_step terms: dw += coeff [* reward] * syn-factors  (or outer(...) of neuron factors)
    w += dw (clamped, masked: Connection.apply_update), or into the eligibility (episode mode)

``outer`` is the connection's own (dense, one_to_one, conv2d, local, sparse), summing over
the batch; with ``pre_timing: arrival`` (dense connections with per-synapse delays) the
presynaptic events are each synapse's spike arrivals and the presynaptic traces are kept
per synapse (as the step of its last arrival), correlated by ``einsum``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..models.printer import TorchPrinter, f32_text
from ..models.rule import PRE, CompiledRule, Term


def _b(x: Any, shape: tuple, B: int, like: torch.Tensor) -> torch.Tensor:
    """``x`` (tensor or number) broadcast to ``[B, *shape]``."""
    if isinstance(x, torch.Tensor):
        return torch.broadcast_to(x, (B, *shape))
    return torch.full((B, *shape), float(x), dtype=like.dtype, device=like.device)


def _col(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """A presynaptic neuron value ``[B, *shape]`` (or ``[*shape]``) as ``[B, n_pre, 1]``."""
    return x.reshape(x.shape[0], -1, 1) if x.dim() > ndim else x.reshape(-1, 1)


def _prod(printer: TorchPrinter, factors: tuple) -> str:
    out = None
    for f in factors:
        code = printer.expr(f)[0]
        out = code if out is None else f"({out} * {code})"
    return out or "1.0"


def torch_update_source(c: CompiledRule, scale: float, arrival: bool) -> str:
    env = {t.name: t.name for t in c.traces}
    env.update({name: name for name, _, _ in c.synapse})
    env.update(w="w", reward="reward")
    for end, var_names in c.pop_vars.items():
        for v in var_names:
            env[f"{v}_{end}"] = f"{v}_{end}"
    p = TorchPrinter(env, like="w")
    L = ["B = rule.batch", "w = c.w", "s_pre = c.source.s", "s_post = c.target.s",
         "ev_pre = s_pre.to(w.dtype)", "ev_post = s_post.to(w.dtype)",
         "src, tgt = c.source.shape, c.target.shape"]
    for end, var_names in c.pop_vars.items():
        pop = "c.source" if end == PRE else "c.target"
        if arrival and end == PRE:  # neuron values against per-synapse ones: [B, n_pre, 1]
            L += [f"{v}_{end} = _col({pop}.{v}, len(src))" for v in sorted(var_names)]
        else:
            L += [f"{v}_{end} = {pop}.{v}" for v in sorted(var_names)]
    L.append("r = reward.reshape(-1, *([1] * len(src)))")
    for t in c.traces:
        s = "s_pre" if t.side == PRE else "s_post"
        if arrival and t.side == PRE:
            continue
        L.append(f"{t.name} = rule.{t.name} * {f32_text(t.decay)}")
        if t.set is not None:
            L.append(f"{t.name} = torch.where({s}, {f32_text(t.set)}, {t.name})")
        elif t.add is not None:
            L.append(f"{t.name} = {t.name} + torch.where({s}, {f32_text(t.add)}, 0.0)")
    for name, _, d in c.synapse:
        L.append(f"{name} = rule.{name}" + (f" * {f32_text(d)}" if d is not None else ""))
    if arrival:  # per-synapse presynaptic traces from each synapse's last arrival
        L += ["arr = rule.arrivals()", "rule.last.masked_fill_(arr, rule.clock)",
              "ages = (rule.clock - rule.last).clamp_(max=rule.tables.shape[1] - 1)"]
        for k, t in enumerate(tt for tt in c.traces if tt.side == PRE):
            L.append(f"{t.name} = rule.tables[{k}][ages]")
        L.append("ev_arr = arr.to(w.dtype)")
    acc: dict[str, bool] = {}

    def add(target: str, code: str) -> None:
        L.append(f"d_{target} = {code}" if target not in acc else f"d_{target} = d_{target} + {code}")
        acc[target] = True

    def term_code(t: Term, event: str) -> str:
        pre, post, syn = _prod(p, t.pre), _prod(p, t.post), _prod(p, t.syn)
        coeff = f32_text(t.coeff * (scale if (event or t.pre or t.post) else 1.0))
        if arrival and (event == "pre" or t.pre):
            a = "ev_arr" if event == "pre" else "1.0"
            a = f"({a} * {pre})" if t.pre else a
            if t.reward:
                a = f"({a} * reward.reshape(-1, 1, 1))"
            pv = f"(ev_post * {post})" if event == "post" else post
            corr = f"torch.einsum('bij,bj->ij', _b({a}, ev_arr.shape[1:], B, w), _b({pv}, tgt, B, w).reshape(B, -1))"
        elif event or t.pre or t.post:
            pv = pre if event != "pre" else ("ev_pre" if not t.pre else f"(ev_pre * {pre})")
            if t.reward:
                pv = f"({pv} * r)"
            qv = post if event != "post" else ("ev_post" if not t.post else f"(ev_post * {post})")
            corr = f"c.outer(_b({pv}, src, B, w), _b({qv}, tgt, B, w))"
        else:
            corr = None
        out = f"({corr} * {coeff})" if corr else coeff
        if t.reward and not (event or t.pre or t.post):
            out = f"({out} * reward)"
        return f"({out} * {syn})" if t.syn else (out if corr else f"torch.full_like(w, {out})")

    for ops, event, mask in ((c.on_pre, "pre", "s_pre"), (c.on_post, "post", "s_post")):
        for op in ops:
            if isinstance(op, Term):
                add(op.target, term_code(op, event))
            else:
                L += p.block((op,), mask=mask)
    for name, _, _ in c.synapse:
        name_now = p.env.get(name, name)
        if name in acc:
            L.append(f"{name_now} = {name_now} + d_{name}")
        acc.pop(name, None)
    for t in c.on_step:
        add(t.target, term_code(t, ""))
    for t in c.traces:
        if not (arrival and t.side == PRE):
            L.append(f"rule.{t.name}.copy_({p.env.get(t.name, t.name)})")
    for name, _, _ in c.synapse:
        L.append(f"rule.{name}.copy_({p.env.get(name, name)})")
    if "w" in acc:
        L.append("rule.apply_w(d_w)")
    if arrival:
        L.append("rule.clock += 1")
    return "def update(rule, c, reward):\n" + "\n".join("    " + line for line in L) + "\n"


def make_torch_update(c: CompiledRule, scale: float, arrival: bool) -> tuple[Callable, str]:
    source = torch_update_source(c, scale, arrival)
    namespace: dict[str, Any] = {"torch": torch, "_b": _b, "_col": _col}
    exec(compile(source, f"<snnrun {c.model.kind} update>", "exec"), namespace)
    return namespace["update"], source
