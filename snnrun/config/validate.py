"""Validate plain dicts against dataclass schemas, with errors that name the config path.

``from_dict(Schema, data, "network.populations.exc")`` checks unknown keys (suggesting
the closest valid one), missing required fields and types (``int`` accepted where a
``float`` is expected, never the reverse or strings for numbers), then constructs the
dataclass; a :class:`~snnrun.core.registry.ParamError` raised by its ``__post_init__``
is re-raised as a :class:`ConfigError` carrying the full path.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping, Optional, Union

from ..core.registry import ParamError, Registry


class ConfigError(ValueError):
    """A configuration mistake; ``str(err)`` is one line naming the config path."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float)."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(path, "must not be null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if value is None:
        raise ConfigError(path, f"must not be null (expected {_type_name(tp)})")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        (arg,) = typing.get_args(tp)[:1] or (Any,)
        return [coerce(v, arg, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true/false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    return value


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(data: Mapping[str, Any], valid: list[str], path: str) -> None:
    for key in data:
        if key not in valid:
            raise ConfigError(join(path, key), f"unknown key{_suggest(str(key), valid)}; valid keys: {', '.join(valid)}")


def from_dict(schema: type, data: Any, path: str = "", ignore: tuple[str, ...] = ()) -> Any:
    """Build ``schema`` (a dataclass) from ``data``, raising :class:`ConfigError`."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(schema)
    fields = [f for f in dataclasses.fields(schema) if f.init]
    names = [f.name for f in fields]
    check_keys({k: v for k, v in data.items() if k not in ignore}, names, path)
    kwargs = {}
    for f in fields:
        if f.name in data:
            kwargs[f.name] = coerce(data[f.name], hints[f.name], join(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(join(path, f.name), "missing required value")
    try:
        return schema(**kwargs)
    except ParamError as exc:
        raise ConfigError(join(path, exc.field), exc.message) from None


def build_kind(registry: Registry, data: Any, path: str, *, default_kind: Optional[str] = None,
               ignore: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """Validate ``{kind: ..., **params}`` against ``registry``; return (entry, params)."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping with a 'kind', got {_describe(data)}")
    kind = data.get("kind", default_kind)
    if kind is None:
        raise ConfigError(join(path, "kind"), f"missing; choose one of: {', '.join(registry.kinds())}")
    if not isinstance(kind, str) or kind not in registry:
        raise ConfigError(join(path, "kind"),
                          f"{kind!r} is not {'an' if registry.family[0] in 'aeiou' else 'a'} {registry.family} kind"
                          f"{_suggest(str(kind), registry.kinds())}; "
                          f"choose one of: {', '.join(registry.kinds())}")
    entry = registry.get(kind)
    params = from_dict(entry.params, {k: v for k, v in data.items() if k != "kind"}, path, ignore=ignore)
    return entry, params
