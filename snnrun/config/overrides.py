"""Command-line overrides that would be silently ignored are errors.

A top-level key that is not part of the run's schema (``network``, ``train``, ...) is a
variable only if something interpolates it (``${n_neurons}``).  An override of such a key
that nothing refers to would change nothing: ``+n_neuron=30`` (a typo Hydra suggests adding)
or ``n_neurons=100`` on an experiment whose network is sized otherwise (``conv_mnist``:
``n_filters``).  Likewise an experiment file without ``# @package _global_`` lands under
``experiment.`` where nothing reads it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable

from .validate import ConfigError

_REF = re.compile(r"\$\{\s*([A-Za-z_]\w*)(?=[.}\s\[])")  # ${name}, ${name.sub}: not a resolver's ${fn:...}


def referenced_names(tree: Any) -> set[str]:
    """Top-level names that interpolations in ``tree`` (an unresolved plain container) use."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, str) and "${" in node:
            found.update(_REF.findall(node))
    return found


def check_experiment_package(raw: dict) -> None:
    if isinstance(raw.get("experiment"), dict):
        raise ConfigError("experiment", "the experiment file's keys landed under `experiment.` and would be ignored: "
                          "its first line must be `# @package _global_`")


def check_overrides_used(unresolved: dict, overrides: Iterable[str], schema_keys: Iterable[str],
                         groups: Iterable[str] = ()) -> None:
    """ConfigError for an override of a top-level variable that nothing interpolates
    (``groups``: Hydra's config groups, whose overrides choose a file, not a key)."""
    schema = set(schema_keys) | set(groups)
    used = referenced_names(unresolved)
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        top = key.split(".", 1)[0]
        if not key or top in schema or top in ("hydra", "experiment") or top in used:
            continue
        near = difflib.get_close_matches(top, sorted(used | schema), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(key, f"nothing in this experiment uses it, so `{o}` would change nothing{hint}")
