"""Config -> engine objects.  The only module that reads configuration for the engine.

A network config is a mapping::

    populations:
      X:  {kind: input, shape: [1, 28, 28]}
      Ae: {kind: diehl_cook, n: 100, traces: true}
    connections:
      X_Ae: {kind: dense, source: X, target: Ae, weight: {dist: uniform, high: 0.3},
             wmin: 0, wmax: 1, norm: 78.4,
             learning: {kind: post_pre, nu_pre: 1.0e-4, nu_post: 1.0e-2}}

Every entry's ``kind`` is looked up in the engine's registries and validated against
its parameter dataclass; mistakes raise :class:`~snnrun.config.validate.ConfigError`
naming the config path (``network.populations.Ae.tau_mem_ms: must be > 0, got -1.0``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch

from .config.validate import ConfigError, build_kind, check_keys, join
from .core import CONNECTIONS, ENCODERS, NEURONS, RULES, Network
from .core.encoders import Encoder
from .core.registry import ParamError


def to_container(cfg: Any) -> Any:
    """OmegaConf configs -> plain dicts/lists (resolving interpolations); others unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return cfg
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def build_network(cfg: Any, dt_ms: float = 1.0, device: str | torch.device = "cpu", seed: Optional[int] = None,
                  path: str = "network") -> Network:
    """Build a :class:`Network` from a ``{populations, connections}`` mapping, or from a NIR
    graph: ``{nir: path}`` (:mod:`snnrun.interop.nir_io`)."""
    cfg = to_container(cfg)
    if isinstance(cfg, Mapping) and "nir" in cfg:
        check_keys(cfg, ["nir"], path)
        return _network_from_nir(cfg["nir"], dt_ms, device, path)
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, f"expected a mapping with 'populations' and 'connections', got {cfg!r}")
    check_keys(cfg, ["populations", "connections"], path)
    pops = cfg.get("populations") or {}
    conns = cfg.get("connections") or {}
    if not isinstance(pops, Mapping) or not pops:
        raise ConfigError(join(path, "populations"), "expected a non-empty mapping of name -> population")
    if not isinstance(conns, Mapping):
        raise ConfigError(join(path, "connections"), "expected a mapping of name -> connection")
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    net = Network(dt_ms=dt_ms, device="cpu")
    for name, pcfg in pops.items():
        ppath = join(join(path, "populations"), name)
        entry, params = build_kind(NEURONS, pcfg, ppath)
        try:
            net.add_population(str(name), entry.factory(params, dt=dt_ms))
        except ParamError as exc:
            raise ConfigError(join(ppath, exc.field), exc.message) from None
    planned = []
    for name, ccfg in conns.items():
        cpath = join(join(path, "connections"), name)
        entry, params = build_kind(CONNECTIONS, ccfg, cpath, ignore=("source", "target", "learning"))
        ends = {}
        for role in ("source", "target"):
            ref = ccfg.get(role)
            if ref is None:
                raise ConfigError(join(cpath, role), "missing required value (a population name)")
            if ref not in net.populations:
                raise ConfigError(join(cpath, role), f"{ref!r} is not a population; populations are: {', '.join(net.populations)}")
            ends[role] = ref
        planned.append((name, cpath, entry, params, ends, ccfg.get("learning")))
    _check_memory(net, planned)
    for name, cpath, entry, params, ends, lcfg in planned:
        rule = None
        if lcfg is not None:
            rentry, rparams = build_kind(RULES, lcfg, join(cpath, "learning"))
            rule = rentry.factory(rparams, dt=dt_ms)
        try:
            conn = entry.factory(net.populations[ends["source"]], net.populations[ends["target"]], params,
                                 dt=dt_ms, rule=rule, generator=generator)
            net.add_connection(str(name), ends["source"], ends["target"], conn)
        except ParamError as exc:
            raise ConfigError(join(cpath, exc.field), exc.message) from None
        except (MemoryError, RuntimeError) as exc:
            if not isinstance(exc, MemoryError) and "alloc" not in str(exc):
                raise
            raise ConfigError(cpath, f"out of memory building its {net.populations[ends['source']].n} x "
                                     f"{net.populations[ends['target']].n} synapses ({str(exc).splitlines()[0][:120]})") from None
    try:
        return net.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError("device", f"cannot use device {str(device)!r}: {str(exc).splitlines()[0]}") from None


def _network_from_nir(file: Any, dt_ms: float, device: Any, path: str) -> Network:
    """A NIR graph as the network; its stated dt must be the run's (its weights' per-step gain
    was set at that dt)."""
    from .interop.nir_io import NIRError, graph_dt_ms, read_graph

    where = join(path, "nir")
    if not isinstance(file, str) or not file or file == "???":
        raise ConfigError(where, f"expected the path of a .nir file, got {file!r}")
    try:
        graph = read_graph(file)
        stated = graph_dt_ms(graph)
        if stated is not None and abs(stated - dt_ms) > 1e-9 * max(1.0, dt_ms):
            raise ConfigError("dt_ms", f"{dt_ms:g} ms, but {file!r} was exported at dt {stated:g} ms; set dt_ms={stated:g}")
        return network_from_graph(graph, dt_ms, device)
    except NIRError as exc:
        raise ConfigError(where, str(exc).removeprefix("network.nir: ")) from None


def network_from_graph(graph: Any, dt_ms: float, device: str | torch.device = "cpu", path: str = "network") -> Network:
    """A :class:`Network` from a ``nir.NIRGraph`` simulated at ``dt_ms``
    (:func:`snnrun.interop.nir_io.graph_to_config`, built and validated like any config)."""
    from .interop.nir_io import apply_params, graph_to_config

    cfg, params = graph_to_config(graph, dt_ms)
    net = build_network(cfg, dt_ms=dt_ms, device=device, path=path)
    apply_params(net, params)
    return net


def physical_memory() -> int:
    """This machine's RAM in bytes (0 if unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def _gib(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**20:.1f} MiB"


def _check_memory(net: Network, planned: list) -> None:
    """Refuse, before allocating, connections whose tensors together exceed this machine's
    memory, naming the largest (a typo like ``n_neurons=10000000`` would otherwise die in the
    allocator, or in the out-of-memory killer, with no key named)."""
    need = [(entry.factory.memory_bytes(net.populations[e["source"]], net.populations[e["target"]], params) or 0,
             cpath, net.populations[e["source"]].n, net.populations[e["target"]].n)
            for name, cpath, entry, params, e, _ in planned]
    total, have = sum(n[0] for n in need), physical_memory()
    if need and have and total > have:
        size, cpath, n_pre, n_post = max(need)
        raise ConfigError(cpath, f"{n_pre} x {n_post} synapses need {_gib(size)} (the network's connections "
                                 f"{_gib(total)}), more than this machine's {_gib(have)} of memory; use fewer neurons")


def build_encoder(cfg: Any, dt_ms: float = 1.0, path: str = "encoder") -> Encoder:
    """Build an encoder from ``{kind: poisson, time_ms: 250, intensity: 128}``."""
    entry, params = build_kind(ENCODERS, to_container(cfg), path)
    return entry.factory(params, dt=dt_ms)
