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
    """Build a :class:`Network` from a ``{populations, connections}`` mapping."""
    cfg = to_container(cfg)
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
        rule = None
        lcfg = ccfg.get("learning")
        if lcfg is not None:
            rentry, rparams = build_kind(RULES, lcfg, join(cpath, "learning"))
            rule = rentry.factory(rparams, dt=dt_ms)
        try:
            conn = entry.factory(net.populations[ends["source"]], net.populations[ends["target"]], params,
                                 dt=dt_ms, rule=rule, generator=generator)
            net.add_connection(str(name), ends["source"], ends["target"], conn)
        except ParamError as exc:
            raise ConfigError(join(cpath, exc.field), exc.message) from None
    try:
        return net.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError("device", f"cannot use device {str(device)!r}: {str(exc).splitlines()[0]}") from None


def build_encoder(cfg: Any, dt_ms: float = 1.0, path: str = "encoder") -> Encoder:
    """Build an encoder from ``{kind: poisson, time_ms: 250, intensity: 128}``."""
    entry, params = build_kind(ENCODERS, to_container(cfg), path)
    return entry.factory(params, dt=dt_ms)
