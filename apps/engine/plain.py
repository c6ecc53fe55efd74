"""Frozen dataclasses to and from plain JSON values, so the app can persist engine state.

Decimals travel as strings (exact), datetimes as ISO-8601 UTC, StrEnums as their values.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")
Parser = Callable[[Any], Any]


def to_plain(value: Any) -> dict[str, Any]:
    """`value`'s fields as JSON values."""
    out: dict[str, Any] = {}
    for item in fields(value):
        v = getattr(value, item.name)
        if isinstance(v, Decimal):
            v = str(v)
        elif isinstance(v, datetime):
            v = v.astimezone(UTC).isoformat()
        elif isinstance(v, StrEnum):
            v = v.value
        out[item.name] = v
    return out


def from_plain(cls: type[T], data: Mapping[str, Any]) -> T:
    """The `cls` that `to_plain` gave `data` for; missing fields take their defaults."""
    parsers = _parsers(cls)
    values: dict[str, Any] = {}
    for name, parse in parsers.items():
        if name in data:
            v = data[name]
            values[name] = v if v is None or parse is None else parse(v)
    return cls(**values)


_PARSERS: dict[type[Any], dict[str, Parser | None]] = {}


def _parsers(cls: type[Any]) -> dict[str, Parser | None]:
    if cls not in _PARSERS:
        hints = typing.get_type_hints(cls)
        _PARSERS[cls] = {item.name: _parser(hints[item.name]) for item in fields(cls)}
    return _PARSERS[cls]


def _parser(hint: Any) -> Parser | None:
    # `X | None` parses as X.
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = options[0] if len(options) == 1 else None
    if hint is Decimal:
        return Decimal
    if hint is datetime:
        return datetime.fromisoformat
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint
    return None
