"""Which config a resumed run continues with: the one stored in its checkpoint.

``snnrun resume=<run dir | checkpoint | MLflow run id>`` alone is enough.  Keys given on the
command line are compared with the stored config: those that only change how the run is
watched or where it reads from (:data:`HARMLESS`) are taken; any other that differs is
refused with one line listing each difference (``key: stored -> given``), because the
continued run would no longer be the run its checkpoint, params and metrics describe.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Optional

from ..config.validate import ConfigError

# keys (or key prefixes, ending in ".") that may change on resume without changing results
HARMLESS = ("resume", "device", "backend", "data.root", "data.download", "tracking.", "train.progress",
            "train.plots", "train.live_plots", "train.live_budget", "train.checkpoint_every", "train.checkpoint_minutes", "rl.progress",
            "rl.checkpoint_every", "rl.checkpoint_minutes", "rl.video_steps", "rl.live_every")

_MISSING = object()


def _get(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def _set(tree: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def _leaves(tree: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1]


def override_keys(overrides: Iterable[str]) -> list[str]:
    """The config keys of Hydra overrides (``a.b=1``, ``+a.b=1``, ``++a.b=1``, ``~a.b``),
    without ``+experiment=`` (the stored config already is the experiment)."""
    keys = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key and not key.startswith(("experiment", "hydra.")):
            keys.append(key)
    return keys


def harmless(key: str) -> bool:
    return any(key == h or (h.endswith(".") and key.startswith(h)) for h in HARMLESS)


def resumed_config(stored: dict, given: dict, overrides: Optional[Iterable[str]]) -> dict:
    """``stored`` with the harmless given values applied; ConfigError if any other key the
    user gave (``overrides``: Hydra's; None: every key of ``given``) differs."""
    keys = override_keys(overrides) if overrides is not None else list(_leaves(given))
    out = copy.deepcopy(stored)
    refused = []
    for key in keys:
        new, old = _get(given, key), _get(stored, key)
        if new is _MISSING or new == old:
            continue
        if harmless(key):
            _set(out, key, new)
        else:
            refused.append(f"{key}: {old if old is not _MISSING else '(unset)'} -> {new}")
    if refused:
        raise ConfigError("resume", "these keys differ from the run's stored config and would change its results: "
                          + "; ".join(refused) + " (drop them to continue the run, or start a new run)")
    out["resume"] = given.get("resume")
    return out
