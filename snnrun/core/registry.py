"""Kind registries: ``kind`` string -> (params dataclass, factory).

Plain Python (no Hydra/OmegaConf): the config layer validates user dicts against the
``Params`` dataclass registered for a kind, then calls the factory.  Every component
family (neurons, connections, learning rules, encoders) owns one :class:`Registry`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class ParamError(ValueError):
    """A parameter value is invalid.  ``field`` names the offending parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    kind: str
    params: type
    factory: Callable[..., T]
    doc: str


class Registry(Generic[T]):
    """Maps ``kind`` names to a params dataclass and the class that builds from it."""

    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, Entry[T]] = {}

    def register(self, kind: str, params: type) -> Callable[[type], type]:
        if not dataclasses.is_dataclass(params):
            raise TypeError(f"{self.family} kind {kind!r}: params must be a dataclass")

        def deco(cls: type) -> type:
            if kind in self._entries:
                raise KeyError(f"{self.family} kind {kind!r} registered twice")
            self._entries[kind] = Entry(kind, params, cls, (cls.__doc__ or "").strip())
            cls.kind = kind
            return cls

        return deco

    def get(self, kind: str) -> Entry[T]:
        try:
            return self._entries[kind]
        except KeyError:
            raise KeyError(
                f"{kind!r} is not {'an' if self.family[0] in 'aeiou' else 'a'} {self.family} kind; "
                f"choose one of: {', '.join(self.kinds())}"
            ) from None

    def kinds(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, kind: str) -> bool:
        return kind in self._entries


def check(cond: bool, field: str, message: str) -> None:
    """Raise :class:`ParamError` naming ``field`` unless ``cond`` holds."""
    if not cond:
        raise ParamError(field, message)


def as_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)


def load_tensors(obj: Any, names: "list[str] | tuple[str, ...]", state: dict) -> None:
    """Copy ``state[name]`` into the tensor attribute ``obj.<name>`` for each name (skipping
    attributes that are ``None``), checking presence and shape."""
    for name in names:
        cur = getattr(obj, name)
        if cur is None:
            continue
        if name not in state:
            raise KeyError(f"missing {name!r}")
        val = state[name]
        if tuple(val.shape) != tuple(cur.shape):
            raise ValueError(f"{name}: shape {tuple(val.shape)} does not match {tuple(cur.shape)}")
        cur.copy_(val.to(cur.device, cur.dtype))
