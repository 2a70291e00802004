"""NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) export and import.

NIR describes networks in continuous time, in SI units (seconds); snnrun steps a discrete
clock of ``dt``.  The mapping, per population (``n`` neurons, every parameter repeated per
neuron as NIR wants):

* ``input`` -> ``nir.Input`` (its shape).
* ``lif`` (current-based) -> ``nir.LIF``: ``tau = tau_mem_ms / 1000``, ``v_leak = v_rest_mv``,
  ``v_threshold = v_thresh_mv``, ``v_reset = v_reset_mv`` and ``r = tau / dt``.  snnrun's step
  ``v <- v_rest + (v - v_rest) exp(-dt/tau) + I`` adds each step's input ``I`` (weights times
  the spikes delivered, plus biases) to ``v`` at gain 1; ``tau dv/dt = (v_leak - v) + r I``
  integrated over one step of a constant ``I`` gives gain ``r dt / tau``, so ``r = tau / dt``
  is gain 1 -- the convention of snnTorch's NIR export (``r = tau_mem / dt``).
* ``if`` (``reset_mode: zero``) -> ``nir.IF``: ``dv/dt = r I``, ``r = 1 / dt`` (gain 1);
  NIR's IF has no resting potential, so voltages are exported relative to ``v_rest_mv``
  (``v_threshold = v_thresh - v_rest``, ``v_reset = v_reset - v_rest``; the node's metadata
  ``snnrun.v_rest_mv`` lets snnrun restore the absolute values).
* ``dense`` -> ``nir.Affine`` (with a bias) or ``nir.Linear``, weights ``W^T`` (NIR's
  ``[n_post, n_pre]``), after a ``nir.Flatten`` when the source is shaped (an image);
  ``one_to_one`` -> ``nir.Scale``.  Non-input populations are exported flat.

Refused, with the population or connection named and why: refractory periods (NIR's neurons
have none), reset by subtraction (NIR resets to ``v_reset``), conductance-based synapses,
adaptive thresholds (``diehl_cook``'s theta) and the other kinds NIR has no node for, a
winner-take-all of one spike per step (``one_spike``), a voltage floor (``v_lbound_mv``),
transmission delays, the other connection kinds, and names that clash with the generated
``<population>_flat`` / ``<population>_output`` nodes.  (A connection's mask is already
multiplied into its weights, so the weights carry it.)  Learning rules, weight normalisation and clamps act only while learning: export
keeps the trained weights and says in a note that the rule is not exported.

Two conventions differ and are stated, not hidden: snnrun fires at ``v >= v_thresh``, NIR
at ``v > v_threshold`` (they differ only when ``v`` lands exactly on the threshold); and
snnrun delivers a connection's spikes one step after they are emitted (BindsNET's order),
recorded as ``metadata["snnrun.delivery_delay_steps"] = 1``.  Import rebuilds snnrun's
semantics, so snnrun -> NIR -> snnrun is exact.

Import accepts the same node types; an ``r`` other than the gain-1 value is folded into the
weights and biases arriving at the population (``gain = r dt / tau`` for LIF, ``r dt`` for
IF).  snnrun's populations share one value of each parameter, so per-neuron values that
differ are refused.  ``dt``: the ``dt_ms`` given, else the graph's ``metadata["dt"]``
(seconds).  As a run's network: ``network=nir network.nir=model.nir`` (the run's ``dt_ms``
must be the one the graph states).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ..core.network import Network


class NIRError(ValueError):
    """A network (or NIR graph) that this mapping cannot carry, naming the element and why."""


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is a test dependency
        raise NIRError("NIR support needs the `nir` package: pip install 'snnrun[nir]'") from None
    return nir


def _full(n: int, value: float) -> np.ndarray:
    return np.full(n, float(value), dtype=np.float64)  # parameters exactly as snnrun holds them


# =============================================================================== export
def _population_node(name: str, pop: Any, dt_s: float) -> Any:
    nir = _nir()
    where = f"network.populations.{name}"
    if pop.is_input:
        return nir.Input(input_type={"input": np.array(pop.shape)})
    p = pop.params
    if p.one_spike:
        raise NIRError(f"{where}: one_spike (one spike per step, winner-take-all) has no NIR equivalent")
    if p.refrac_ms > 0:
        raise NIRError(f"{where}: refractory period {p.refrac_ms:g} ms: NIR's neurons have none (refrac_ms: 0 exports)")
    if getattr(p, "v_lbound_mv", None) is not None:
        raise NIRError(f"{where}: v_lbound_mv (a floor on v) has no NIR equivalent")
    n = pop.n
    if pop.kind == "lif":
        if p.synapse != "current":
            raise NIRError(f"{where}: conductance-based synapses have no NIR node (synapse: current exports)")
        tau = p.tau_mem_ms / 1000.0
        return nir.LIF(tau=_full(n, tau), r=_full(n, tau / dt_s), v_leak=_full(n, p.v_rest_mv),
                       v_threshold=_full(n, p.v_thresh_mv), v_reset=_full(n, p.v_reset_mv))
    if pop.kind == "if":
        if p.reset_mode != "zero":
            raise NIRError(f"{where}: reset_mode {p.reset_mode}: NIR's IF resets to v_reset (reset_mode: zero exports)")
        return nir.IF(r=_full(n, 1.0 / dt_s), v_threshold=_full(n, p.v_thresh_mv - p.v_rest_mv),
                      v_reset=_full(n, p.v_reset_mv - p.v_rest_mv), metadata={"snnrun.v_rest_mv": p.v_rest_mv})
    raise NIRError(f"{where}: neuron kind {pop.kind!r} has no NIR node (exportable: input, lif, if)")


def _connection_node(name: str, conn: Any, notes: list[str]) -> Any:
    nir = _nir()
    where = f"network.connections.{name}"
    if conn.max_delay > 0:
        raise NIRError(f"{where}: transmission delays (delay_ms) are not exported")
    if conn.rule is not None:
        notes.append(f"{where}: learning rule {conn.rule.kind!r} not exported (NIR has no plasticity); its trained weights are")
    w = conn.w.detach().cpu().numpy().astype(np.float32)
    b = None if conn.b is None else conn.b.detach().cpu().numpy().astype(np.float32).reshape(-1)
    if conn.kind == "dense":
        if w.ndim != 2:
            raise NIRError(f"{where}: expected weights [n_pre, n_post], got {list(w.shape)}")
        return nir.Affine(weight=w.T.copy(), bias=b) if b is not None else nir.Linear(weight=w.T.copy())
    if conn.kind == "one_to_one":
        if b is not None:
            raise NIRError(f"{where}: a one_to_one connection with a bias has no NIR node")
        return nir.Scale(scale=w.reshape(-1).copy())
    raise NIRError(f"{where}: connection kind {conn.kind!r} is not exported (exportable: dense, one_to_one)")


def to_nir(net: Network) -> tuple[Any, list[str]]:
    """The network as a ``nir.NIRGraph`` (nodes named as the populations and connections;
    an ``Output`` node ``<population>_output`` after every population no other population
    reads from),
    and the notes on what was left out (learning rules)."""
    nir = _nir()
    dt_s = net.dt / 1000.0
    names = {id(p): n for n, p in net.populations.items()}
    notes: list[str] = []
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for name, pop in net.populations.items():
        nodes[name] = _population_node(name, pop, dt_s)
    def add(node_name: str, node: Any, what: str) -> None:
        if node_name in nodes:
            raise NIRError(f"{what}: its NIR node name {node_name!r} is taken by another population or connection; rename one")
        nodes[node_name] = node

    read = set()
    for name, conn in net.connections.items():
        add(name, _connection_node(name, conn, notes), f"network.connections.{name}")
        src, tgt = names[id(conn.source)], names[id(conn.target)]
        feed = src
        if conn.source.is_input and len(conn.source.shape) > 1:  # an image input is flattened first
            feed = f"{src}_flat"
            if (src, feed) not in edges:
                add(feed, nir.Flatten(input_type={"input": np.array(conn.source.shape)}, start_dim=0, end_dim=-1),
                    f"network.populations.{src}")
                edges.append((src, feed))
        edges += [(feed, name), (name, tgt)]
        if src != tgt:  # a recurrent connection does not make its population an inner one
            read.add(src)
    for name, pop in net.populations.items():
        if name not in read and not pop.is_input:  # exported flat, like its neuron node
            add(f"{name}_output", nir.Output(output_type={"output": np.array([pop.n])}), f"network.populations.{name}")
            edges.append((name, f"{name}_output"))
    meta = {"dt": dt_s, "source": "snnrun", "snnrun.delivery_delay_steps": 1,
            "snnrun.order": ",".join([*net.populations, *net.connections])}  # NIR files keep nodes sorted
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta), notes
    except (ValueError, AssertionError) as exc:
        raise NIRError(f"network: nir refused the graph ({str(exc).splitlines()[0][:160]})") from None


def write_nir(net: Network, path: str | Path) -> list[str]:
    """Write ``net`` to ``path`` (NIR's HDF5 file); returns the notes of :func:`to_nir`."""
    graph, notes = to_nir(net)
    _nir().write(str(path), graph)
    return notes


# =============================================================================== import
def _uniform(values: Any, where: str, what: str) -> float:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0 or not np.all(a == a[0]):
        raise NIRError(f"{where}: per-neuron {what} values differ; an snnrun population shares one value")
    return float(a[0])


def _shape(node: Any, key: str) -> list[int]:
    types = node.input_type if key == "input" else node.output_type
    return [int(d) for d in np.asarray(next(iter(types.values()))).reshape(-1)]


def read_graph(path: str | Path) -> Any:
    """Read a ``.nir`` file, or raise :class:`NIRError` naming it."""
    if not Path(path).is_file():
        raise NIRError(f"network.nir: {str(path)!r} is not a file")
    try:
        return _nir().read(str(path))
    except Exception as exc:  # h5py / nir raise many kinds on a damaged file
        raise NIRError(f"network.nir: {str(path)!r} is not a readable NIR file ({str(exc).splitlines()[0][:120]})") from None


def graph_dt_ms(graph: Any) -> Optional[float]:
    """The step the graph was exported at (``metadata["dt"]``, seconds), in ms; None if unstated."""
    dt = (graph.metadata or {}).get("dt")
    return None if dt is None else float(np.asarray(dt)) * 1000.0


def graph_to_config(graph: Any, dt_ms: float) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, Optional[np.ndarray]]]]:
    """The snnrun network config ``{populations, connections}`` of a ``nir.NIRGraph``
    simulated at ``dt_ms``, and the weights (and biases) of its connections, ``[n_pre, n_post]``
    with the input gains folded in (see the module docstring).  Build it with
    :func:`snnrun.build.network_from_graph` (or :func:`snnrun.interop.from_nir`)."""
    nir = _nir()
    dt_s = float(dt_ms) / 1000.0
    pops: dict[str, dict[str, Any]] = {}
    gains: dict[str, float] = {}
    order = str((graph.metadata or {}).get("snnrun.order", "")).split(",")
    rank = {n: k for k, n in enumerate(order)}
    nodes = sorted(graph.nodes.items(), key=lambda item: rank.get(item[0], len(rank)))
    for name, node in nodes:
        where = f"nir node {name!r}"
        if isinstance(node, nir.Input):
            pops[name] = {"kind": "input", "shape": _shape(node, "input")}
        elif isinstance(node, nir.LIF):
            tau = _uniform(node.tau, where, "tau")
            pops[name] = {"kind": "lif", "n": int(np.asarray(node.tau).size), "tau_mem_ms": tau * 1000.0,
                          "v_rest_mv": _uniform(node.v_leak, where, "v_leak"),
                          "v_thresh_mv": _uniform(node.v_threshold, where, "v_threshold"),
                          "v_reset_mv": _uniform(node.v_reset, where, "v_reset"), "refrac_ms": 0.0}
            gains[name] = _uniform(node.r, where, "r") * dt_s / tau
        elif isinstance(node, nir.IF):
            rest = float(np.asarray((node.metadata or {}).get("snnrun.v_rest_mv", 0.0)))
            pops[name] = {"kind": "if", "n": int(np.asarray(node.r).size), "v_rest_mv": rest,
                          "v_thresh_mv": _uniform(node.v_threshold, where, "v_threshold") + rest,
                          "v_reset_mv": _uniform(node.v_reset, where, "v_reset") + rest, "refrac_ms": 0.0}
            gains[name] = _uniform(node.r, where, "r") * dt_s
        elif not isinstance(node, (nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Flatten)):
            raise NIRError(f"{where}: {type(node).__name__} nodes are not imported "
                           "(importable: Input, Output, LIF, IF, Affine, Linear, Scale)")
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    flat = {name for name, node in graph.nodes.items() if isinstance(node, nir.Flatten)}
    for a, b in graph.edges:
        outgoing.setdefault(a, []).append(b)
        incoming.setdefault(b, []).append(a)
    weights = (nir.Affine, nir.Linear, nir.Scale)
    for f in flat:  # a Flatten between a population and weight nodes: the weights read the population
        src, dst = incoming.get(f, []), outgoing.get(f, [])
        if len(src) != 1 or src[0] not in pops or not dst or not all(isinstance(graph.nodes[d], weights) for d in dst):
            raise NIRError(f"nir node {f!r}: a Flatten is imported only between one population and weight nodes "
                           f"(got {src} -> {dst})")
        for c in dst:
            incoming[c] = [src[0] if x == f else x for x in incoming[c]]
    conns: dict[str, dict[str, Any]] = {}
    params: dict[str, tuple[np.ndarray, Optional[np.ndarray]]] = {}
    for name, node in nodes:
        if not isinstance(node, (nir.Affine, nir.Linear, nir.Scale)):
            continue
        src, tgt = incoming.get(name, []), outgoing.get(name, [])
        if len(src) != 1 or len(tgt) != 1 or src[0] not in pops or tgt[0] not in pops:
            raise NIRError(f"nir node {name!r}: a weight node must lead from one population (or its Flatten) to another "
                           f"(got {src} -> {tgt})")
        g = gains.get(tgt[0], 1.0)
        bias = getattr(node, "bias", None)
        if isinstance(node, nir.Scale):
            conns[name] = {"kind": "one_to_one", "source": src[0], "target": tgt[0], "weight": 0.0}
            params[name] = (np.asarray(node.scale, dtype=np.float32).reshape(-1) * g, None)
        else:
            w = np.asarray(node.weight, dtype=np.float32)
            conns[name] = {"kind": "dense", "source": src[0], "target": tgt[0], "weight": 0.0,
                           **({"bias": 0.0} if bias is not None else {})}
            b = None if bias is None else np.asarray(bias, dtype=np.float32).reshape(-1) * g
            params[name] = ((w.T * g).astype(np.float32), b)
    for a, b in graph.edges:
        if a in pops and b in pops:
            raise NIRError(f"nir edge {a!r} -> {b!r}: populations joined without a weight node are not imported")
    return {"populations": pops, "connections": conns}, params


def apply_params(net: Network, params: Mapping[str, tuple[np.ndarray, Optional[np.ndarray]]]) -> None:
    """Copy the weights (and biases) of :func:`graph_to_config` into the built network."""
    for name, (w, b) in params.items():
        net.set_weights(name, torch.as_tensor(w).reshape(net.connections[name].w.shape))
        if b is not None:
            net.connections[name].b.copy_(torch.as_tensor(b).reshape(net.connections[name].b.shape))
