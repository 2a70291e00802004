"""What the CUDA kernel of a network reads and writes: its populations, connections and
rules in order, each array under a global name, and where each comes from at launch.

Names: ``p<k>_<array>`` for population k (``s``, ``xin``, ``ie``, ``ii``, ``ext``, ``ref``,
``x``, ``count``, ``st_<v>``, ``sl_<v>``), ``c<k>_w`` / ``c<k>_mask`` for connection k and
``r<k>_tr_<trace>`` for its rule.  :meth:`Plan.tensors` gives the tensors of a launch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from ..models.rule import PRE


@dataclasses.dataclass
class PopPlan:
    key: str
    name: str
    pop: Any
    ext: bool
    counted: bool
    prob: bool = False        # an input population drawing Bernoulli spikes from thresholds in the kernel
    rule_traces: list = dataclasses.field(default_factory=list)   # [Trace] updated at this side's spikes
    arrays: list = dataclasses.field(default_factory=list)        # [(local name, global name)]

    @property
    def s(self) -> str:
        return f"{self.key}_s"

    @property
    def stream(self) -> int:
        """models.rng's stream of this population's one-spike choices."""
        from ..models.rng import one_spike_stream

        return one_spike_stream(int(self.key[1:]))

    @property
    def input_stream(self) -> int:
        """models.rng's stream of this population's Bernoulli input."""
        from ..models.rng import input_stream

        return input_stream(int(self.key[1:]))


@dataclasses.dataclass
class ConnPlan:
    key: str
    conn: Any
    source: PopPlan
    target: PopPlan
    out: str
    rule_arrays: list = dataclasses.field(default_factory=list)

    @property
    def diag(self) -> bool:
        return self.conn.kind == "one_to_one"

    @property
    def n_post(self) -> int:
        return self.target.pop.n

    @property
    def n_w(self) -> int:
        return self.conn.w.numel()

    @property
    def w(self) -> str:
        return f"{self.key}_w"

    @property
    def mask(self) -> bool:
        return self.conn.mask is not None

    @property
    def mask_arg(self) -> str:
        return f"{self.key}_mask"


class Plan:
    """The kernel's layout for ``net``: ``inputs`` ``((population, "prob" | "steps"), ...)``
    names the populations given input (input populations draw it from probabilities or read
    it as spikes or values per step, others add it), ``counted`` the populations whose
    spikes are counted, ``spb`` the samples per thread block."""

    def __init__(self, net: Any, counted: list, inputs: tuple, spb: int):
        self.net, self.spb = net, spb
        self.getters: dict[str, Callable[[Any], torch.Tensor]] = {}
        self.pops: list[PopPlan] = []
        given = dict(inputs)
        for k, (name, pop) in enumerate(net.populations.items()):
            P = PopPlan(f"p{k}", name, pop, ext=name in given and not pop.compiled.input, counted=name in counted,
                        prob=pop.compiled.input and given.get(name) == "prob")
            self.pops.append(P)
            self._pop_arrays(P)
        by_pop = {id(P.pop): P for P in self.pops}
        self.conns: list[ConnPlan] = []
        self.plastic: list[ConnPlan] = []
        for k, conn in enumerate(net.connections.values()):
            S, Tg = by_pop[id(conn.source)], by_pop[id(conn.target)]
            out = f"{Tg.key}_ii" if (conn.receptor_inh and Tg.pop.compiled.uses_inh) else f"{Tg.key}_ie"
            C = ConnPlan(f"c{k}", conn, S, Tg, out)
            self.getters[C.w] = lambda x, conn=conn: conn.w
            self.getters[C.mask_arg] = (lambda x, conn=conn: x.mask(conn)) if C.mask else (
                lambda x: x.dummy(2 if conn.kind != "one_to_one" else 1))
            self.conns.append(C)
            if conn.rule is not None and conn.learning_enabled:
                self._rule_arrays(C, f"r{k}")
                self.plastic.append(C)
        self.batch_arg = self.pops[0].s

    def _pop_arrays(self, P: PopPlan) -> None:
        pop, c, key, g = P.pop, P.pop.compiled, P.key, self.getters
        batch = lambda t: t.view(pop.batch, -1)  # noqa: E731

        def add(local: str, getter: Callable[[Any], torch.Tensor]) -> None:
            g[f"{key}_{local}"] = getter
            P.arrays.append((local, f"{key}_{local}"))

        if P.prob:
            add("thr", lambda x, name=P.name: x.inputs[name])
        elif c.input:
            add("xin", lambda x, name=P.name: x.inputs[name])
        else:
            add("ie", lambda x: x.scratch(key + "_ie", pop.n))
            if c.uses_inh:
                add("ii", lambda x: x.scratch(key + "_ii", pop.n))
            if P.ext:
                add("ext", lambda x, name=P.name: x.inputs[name])
        add("s", lambda x: batch(pop.s))
        if c.refrac > 0:
            add("ref", lambda x: batch(pop.refrac_count))
        if pop.traces:
            add("x", lambda x: batch(pop.x))
        if P.counted:
            add("count", lambda x, name=P.name: x.counts[name])
        for v, _ in c.fast:
            add(f"st_{v}", lambda x, v=v: batch(getattr(pop, v)))
        for v, _ in c.slow:
            add(f"sl_{v}", lambda x, v=v: getattr(pop, v).view(-1))

    def _var(self, P: PopPlan, v: str) -> str:
        """The global name of population variable ``v`` (as rules read it: ``x_pre`` ...)."""
        local = {"s": "s", "x": "x", "refrac_count": "ref"}.get(v) or (
            f"sl_{v}" if v in P.pop.slow_state else f"st_{v}")
        return f"{P.key}_{local}"

    def _rule_arrays(self, C: ConnPlan, R: str) -> None:
        rule = C.conn.rule
        c = rule.compiled
        for t in c.traces:
            name = f"{R}_tr_{t.name}"
            self.getters[name] = lambda x, rule=rule, t=t: getattr(rule, t.name).view(rule.batch, -1)
            C.rule_arrays.append((f"tr_{t.name}", name))
            side = C.source if t.side == PRE else C.target
            side.rule_traces.append(t)
            side.arrays.append((f"rt{len(side.rule_traces) - 1}", name))
        for end, P in ((PRE, C.source), ("post", C.target)):
            for v in sorted(c.pop_vars[end]):
                C.rule_arrays.append((f"{end}_{v}", self._var(P, v)))

    def arg_names(self) -> list[str]:
        return list(self.getters)

    def tensors(self, x: Any) -> list[torch.Tensor]:
        """The launch's tensors, in :meth:`arg_names` order (``x``: the launch context)."""
        return [get(x) for get in self.getters.values()]

