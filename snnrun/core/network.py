"""The network: populations and connections keyed by name, and the clock-driven loop.

One step of ``dt`` (BindsNET's order, see ``shared/BINDSNET-NOTES.md`` section 1):

1. every connection turns its source's spikes of the previous step (or of ``delay`` steps
   earlier) into current for its target;
2. every population, in insertion order, adds its external input for this step and
   updates (input populations copy their encoded spikes);
3. if learning is on, every plastic connection's rule updates its weights from this
   step's spikes and traces;
4. recorders copy what they watch.

Names, kinds and functions are resolved once into flat lists (the "plan"); the loop over
steps touches only tensors and those lists.  State lives on the populations, connections
and rules and is updated in place.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import torch

from .connections.base import CONNECTIONS, Connection
from .learning.base import RULES, LearningRule
from .models.rng import one_spike_stream, presentation_seed
from .neurons.base import NEURONS, Population
from .registry import ParamError


class SimulationError(RuntimeError):
    """The simulation produced NaN/inf; the message names the population or connection."""


class Network:
    """A spiking network simulated in steps of ``dt_ms`` with a batch dimension."""

    def __init__(self, dt_ms: float = 1.0, device: str | torch.device = "cpu"):
        if not dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {dt_ms}")
        self.dt = float(dt_ms)
        self.device = torch.device(device)
        self.populations: dict[str, Population] = {}
        self.connections: dict[str, Connection] = {}
        self.learning = True
        self.batch = 0
        self.reward = torch.zeros((), device=self.device)
        self.rng_state = torch.zeros(2, dtype=torch.int64, device=self.device)  # [presentation seed, step]
        self._plan: Optional[tuple] = None
        self._compiled: Any = None
        self.generation = 0  # bumped whenever state tensors are re-created

    # ----------------------------------------------------------------- building
    def add_population(self, name: str, population: Population | str, **params: Any) -> Population:
        """Add a population: an instance, or a kind name with its parameters
        (``net.add_population("exc", "lif", n=100, tau_mem_ms=50)``)."""
        if name in self.populations:
            raise KeyError(f"population {name!r} already exists")
        if isinstance(population, str):
            entry = NEURONS.get(population)
            population = entry.factory(entry.params(**params), dt=self.dt)
        elif params:
            raise TypeError("pass parameters only together with a kind name")
        if population.dt != self.dt:
            raise ValueError(f"population {name!r} has dt={population.dt}, network has dt={self.dt}")
        population.to(self.device)
        self.populations[name] = population
        self._invalidate()
        return population

    def add_connection(self, name: str, source: str, target: str, connection: Connection | str = "dense",
                       learning: LearningRule | Mapping[str, Any] | None = None,
                       generator: Optional[torch.Generator] = None, **params: Any) -> Connection:
        """Add a connection from population ``source`` to ``target``: an instance, or a kind
        name with parameters; ``learning`` is a rule instance or ``{"kind": ..., **params}``."""
        if name in self.connections:
            raise KeyError(f"connection {name!r} already exists")
        for role, pop in (("source", source), ("target", target)):
            if pop not in self.populations:
                raise KeyError(f"connection {name!r}: {role} {pop!r} is not a population; populations are: {', '.join(self.populations)}")
        if self.populations[target].is_input:
            raise ParamError("target", f"{target!r} is an input population: its spikes are given from outside, "
                                       f"so a connection into it would have no effect")
        if isinstance(learning, Mapping):
            learning = dict(learning)
            entry = RULES.get(learning.pop("kind", "post_pre"))
            learning = entry.factory(entry.params(**learning), dt=self.dt)
        if isinstance(connection, str):
            entry = CONNECTIONS.get(connection)
            connection = entry.factory(self.populations[source], self.populations[target], entry.params(**params),
                                       dt=self.dt, rule=learning, generator=generator)
        else:
            if params:
                raise TypeError("pass parameters only together with a kind name")
            if learning is not None:
                connection.rule = learning
        if connection.rule is not None and connection.rule.kind == "none":
            connection.rule = None
        if connection.rule is not None:
            connection.rule.bind(connection)
        connection.to(self.device)
        connection.name = name
        self.connections[name] = connection
        self._invalidate()
        return connection

    def _invalidate(self) -> None:
        self._plan = None
        self.batch = 0
        self.generation += 1

    # ----------------------------------------------------------------- state
    def to(self, device: str | torch.device) -> "Network":
        self.device = torch.device(device)
        for pop in self.populations.values():
            pop.to(self.device)
        for conn in self.connections.values():
            conn.to(self.device)
        self.reward = self.reward.to(self.device)
        self.rng_state = self.rng_state.to(self.device)
        self._invalidate()
        return self

    def train(self, mode: bool = True) -> "Network":
        """Switch learning on (``True``) or off (test mode) for the whole network."""
        self.learning = bool(mode)
        return self

    def eval(self) -> "Network":
        return self.train(False)

    def allocate(self, batch: int) -> None:
        """Create fast state for ``batch`` samples (resets it)."""
        if batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch}")
        self.batch = int(batch)
        self.generation += 1
        for pop in self.populations.values():
            pop.allocate(batch, self.device)
        for conn in self.connections.values():
            conn.allocate(batch)
            if conn.rule is not None:
                conn.rule.allocate(batch)
        self._build_plan()

    # fast state as plain data, for checkpoints that resume bit for bit
    _SNAPSHOT_INTS = ("pos", "clock")

    def _stateful(self) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = [(f"populations.{n}", p) for n, p in self.populations.items()]
        for n, c in self.connections.items():
            parts.append((f"connections.{n}", c))
            if c.rule is not None:
                parts.append((f"connections.{n}.rule", c.rule))
        return parts

    def snapshot(self) -> dict[str, Any]:
        """Copy of every fast-state tensor (voltages, conductances, traces, refractory
        counters, delay lines, rule traces) and counter, plus the batch size; with
        :meth:`state_dict` it is everything the next step depends on."""
        snap: dict[str, Any] = {"batch": self.batch}
        for prefix, obj in self._stateful():
            for k, v in vars(obj).items():
                if k.startswith("_"):  # derived caches (index views), rebuilt on allocate
                    continue
                if isinstance(v, torch.Tensor) and k != "w":
                    snap[f"{prefix}.{k}"] = v.detach().clone()
                elif k in self._SNAPSHOT_INTS and isinstance(v, int):
                    snap[f"{prefix}.{k}"] = v
        return snap

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Load a :meth:`snapshot` (in place: views held by simulators stay valid)."""
        if snap.get("batch") and snap["batch"] != self.batch:
            self.allocate(int(snap["batch"]))
        for prefix, obj in self._stateful():
            for k, v in vars(obj).items():
                key = f"{prefix}.{k}"
                if key not in snap or k.startswith("_"):
                    continue
                if isinstance(v, torch.Tensor):
                    if v.shape != snap[key].shape:
                        raise ValueError(f"{key}: snapshot shape {tuple(snap[key].shape)} != {tuple(v.shape)}")
                    v.copy_(snap[key])
                else:
                    setattr(obj, k, snap[key])

    def nonfinite(self, quick: bool = False) -> Optional[str]:
        """The first population state or weight holding NaN/inf (else None).  ``quick``:
        voltages only, one sum per population (NaN anywhere upstream reaches them within a
        step or two; a float64 sum of float32 values is finite exactly when they all are)."""
        if quick:  # a finite sum of the voltages has no NaN/inf in them; else look closer
            vs = [(name, pop.v) for name, pop in self.populations.items() if isinstance(getattr(pop, "v", None), torch.Tensor)]
            if all(math.isfinite(float(v.sum(dtype=torch.float64))) for _, v in vs):
                return None
            bad = next((name for name, v in vs if not bool(torch.isfinite(v).all())), None)
            return None if bad is None else f"population {bad!r} (v)"
        for name, pop in self.populations.items():
            for var in pop.state_vars():
                t = getattr(pop, var)
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return f"population {name!r} ({var})"
        for name, conn in self.connections.items():
            if not bool(torch.isfinite(conn.w).all()):
                return f"connection {name!r} (weights)"
        return None

    def reset_state(self) -> None:
        """Reset fast state (voltages, refractory counters, traces, delay lines, rule
        traces); keep weights and slow state such as ``theta``."""
        for pop in self.populations.values():
            pop.reset()
        for conn in self.connections.values():
            conn.reset()
            if conn.rule is not None:
                conn.rule.reset()

    def set_reward(self, reward: float | torch.Tensor) -> None:
        """Set the reward read by reward-modulated rules (a scalar, or one per sample)."""
        r = torch.as_tensor(reward, dtype=torch.float32)
        if r.shape != self.reward.shape:
            self.reward = torch.zeros(r.shape, device=self.device)
            self._plan = None
        self.reward.copy_(r)

    def normalize(self) -> None:
        """Apply weight normalisation (``norm``) on every connection that has it."""
        for conn in self.connections.values():
            conn.normalize()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything slow: weights (and biases, delays) of connections, slow state of
        populations (e.g. ``theta``)."""
        state: dict[str, torch.Tensor] = {}
        for name, conn in self.connections.items():
            for k, v in conn.state_dict().items():
                state[f"connections.{name}.{k}"] = v
        for name, pop in self.populations.items():
            for k, v in pop.state_dict().items():
                state[f"populations.{name}.{k}"] = v
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        parts = [(f"connections.{n}.", c) for n, c in self.connections.items()]
        parts += [(f"populations.{n}.", p) for n, p in self.populations.items()]
        for prefix, part in parts:
            try:
                part.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{prefix}{exc}") from None

    def weights(self, connection: str) -> torch.Tensor:
        """The weight tensor of ``connection`` (in its own layout; a live view)."""
        return self._conn(connection).w

    def set_weights(self, connection: str, w: torch.Tensor) -> None:
        conn = self._conn(connection)
        w = torch.as_tensor(w)
        if tuple(w.shape) != tuple(conn.w.shape):
            raise ValueError(f"connection {connection!r}: weight shape {tuple(w.shape)} does not match {tuple(conn.w.shape)}")
        conn.w.copy_(w.to(conn.w.device, conn.w.dtype))
        conn.clamp_()

    def check_populations(self, names: Sequence[str], what: str = "count") -> list[str]:
        """``names`` as a list, each a population (a KeyError naming the stranger)."""
        for name in names:
            if name not in self.populations:
                raise KeyError(f"no population {name!r} to {what}; populations are: {', '.join(self.populations)}")
        return list(names)

    def _conn(self, name: str) -> Connection:
        if name not in self.connections:
            raise KeyError(f"no connection {name!r}; connections are: {', '.join(self.connections)}")
        return self.connections[name]

    # ----------------------------------------------------------------- simulation
    def _build_plan(self) -> None:
        names = list(self.populations)
        pops = [self.populations[n] for n in names]
        for k, pop in enumerate(pops):  # one random-number contract (models.rng): shared seed and step
            pop.rng_state = self.rng_state
            pop.stream = one_spike_stream(k)
        exc = [torch.zeros((self.batch, *p.shape), device=self.device) for p in pops]
        inh = [torch.zeros_like(e) if p.conductance else None for p, e in zip(pops, exc)]
        conns = []
        for conn in self.connections.values():
            i = names.index(next(n for n, p in self.populations.items() if p is conn.target))
            buf = inh[i] if (conn.receptor_inh and inh[i] is not None) else exc[i]
            conns.append((conn, buf))
        plastic = [c.rule for c in self.connections.values() if c.rule is not None and c.learning_enabled]
        self._plan = (names, pops, exc, inh, conns, plastic)

    def _check_inputs(self, inputs: Mapping[str, torch.Tensor], n_steps: Optional[int]) -> tuple[int, int]:
        T = n_steps
        batch = None
        for name, x in inputs.items():
            if name not in self.populations:
                raise KeyError(f"input for unknown population {name!r}; populations are: {', '.join(self.populations)}")
            pop = self.populations[name]
            if x.dim() < 2 or tuple(x.shape[2:]) != pop.shape and not (x.dim() == 3 and x.shape[2] == pop.n):
                raise ValueError(f"input {name!r}: expected shape [T, B, {', '.join(map(str, pop.shape))}], got {list(x.shape)}")
            if T is None:
                T = x.shape[0]
            elif x.shape[0] < T:
                raise ValueError(f"input {name!r} has {x.shape[0]} steps, fewer than the {T} to run")
            if batch is None:
                batch = x.shape[1]
            elif x.shape[1] != batch:
                raise ValueError(f"input {name!r} has batch {x.shape[1]}, other inputs have {batch}")
        for name, pop in self.populations.items():
            if pop.is_input and name not in inputs:
                raise KeyError(f"no input given for input population {name!r}")
        if T is None:
            raise ValueError("give inputs or n_steps")
        return T, batch or max(self.batch, 1)

    def run(self, inputs: Mapping[str, torch.Tensor], n_steps: Optional[int] = None,
            recorders: Sequence[Any] = (), learning: Optional[bool] = None, reset: bool = False,
            seed: Optional[int] = None) -> None:
        """Simulate ``n_steps`` (default: the inputs' length) steps.

        Args:
            inputs: ``{population: tensor [T, B, *shape]}`` -- spikes for input
                populations, injected current for any other population (for
                conductance-based ones an increment of ``g_e``, or of ``g_i`` by ``|x|``
                where ``x < 0``).
            recorders: :class:`~snnrun.core.record.Recorder` / ``SpikeCounter`` objects.
            learning: override the network's learning switch for this run.
            reset: reset fast state before running.
            seed: the presentation's seed for random choices inside the step (one spike
                per step); drawn from torch's global RNG when not given (see models.rng).

        State carries over from the previous run unless ``reset`` (or a batch change,
        which re-allocates).  Weight normalisation (``norm``) is applied after the run
        when learning is on.
        """
        T, batch = self._check_inputs(inputs, n_steps)
        if batch != self.batch or self._plan is None:
            self.allocate(batch)
        elif reset:
            self.reset_state()
        learn = self.learning if learning is None else bool(learning)
        names, pops, exc, inh, conns, plastic = self._plan
        ext = [inputs.get(n) for n in names]
        ext = [None if x is None else x.to(self.device).view(x.shape[0], batch, *p.shape) for x, p in zip(ext, pops)]
        # conductance-based populations: negative external input opens the inhibitory
        # conductance (a negative excitatory conductance has no meaning), split once here
        ext_inh: list[Optional[torch.Tensor]] = [None] * len(ext)
        for k, (x, p) in enumerate(zip(ext, pops)):
            if x is not None and p.conductance and not p.is_input and bool((x < 0).any()):
                ext_inh[k] = x.clamp(max=0.0).neg_()
                ext[k] = x.clamp(min=0.0)
        has_inh = any(x is not None for x in ext_inh)
        for pop in pops:
            pop.learning = learn
        for r in recorders:
            r.bind(self, T)
        self.rng_state[0].fill_(presentation_seed() if seed is None else int(seed))
        self.rng_state[1].fill_(0)
        step = self._compiled if self._compiled is not None else self.step
        for t in range(T):
            step([None if x is None else x[t] for x in ext], learn,
                 [None if x is None else x[t] for x in ext_inh] if has_inh else None)
            for r in recorders:
                r.record(t)
        if learn:
            self.normalize()

    def step(self, ext: Sequence[Optional[torch.Tensor]], learning: bool,
             ext_inh: Optional[Sequence[Optional[torch.Tensor]]] = None) -> None:
        """One step of ``dt`` (see the module docstring); ``ext[k]`` is the external input
        ``[B, *shape]`` of the k-th population (or ``None``), ``ext_inh[k]`` an input to its
        inhibitory conductance.  Call :meth:`allocate` first."""
        names, pops, exc, inh, conns, plastic = self._plan
        for buf in exc:
            buf.zero_()
        for buf in inh:
            if buf is not None:
                buf.zero_()
        for conn, buf in conns:
            conn.propagate(buf)
        for k, (pop, e, i, x) in enumerate(zip(pops, exc, inh, ext)):
            if x is not None:
                if pop.is_input:
                    e.copy_(x)
                else:
                    e.add_(x)
            if ext_inh is not None and i is not None and ext_inh[k] is not None:
                i.add_(ext_inh[k])
            pop.step(e, i)
        if learning:
            for rule in plastic:
                rule.update(self.reward)
        self.rng_state[1].add_(1)

    def compile(self, **kwargs: Any) -> "Network":
        """Use ``torch.compile(self.step, fullgraph=True, **kwargs)`` for every step
        (e.g. ``mode="reduce-overhead"`` for CUDA graphs).  The eager step stays the reference."""
        self._compiled = torch.compile(self.step, fullgraph=True, **kwargs)
        return self

    def __repr__(self) -> str:
        pops = ", ".join(f"{n}: {p.kind}{list(p.shape)}" for n, p in self.populations.items())
        conns = ", ".join(f"{n}: {c.kind}" for n, c in self.connections.items())
        return f"Network(dt={self.dt} ms; populations: {pops}; connections: {conns})"
