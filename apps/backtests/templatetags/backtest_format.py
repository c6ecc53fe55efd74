"""Number formatting for results: fractions as percentages, money with separators."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()
DASH = "\u2013"  # an en dash for "no value"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def pct(value: Any, places: int = 2) -> str:
    """0.1234 -> "12.34 %"."""
    number = _number(value)
    return DASH if number is None else f"{number * 100:,.{places}f} %"


@register.filter
def signed_pct(value: Any, places: int = 2) -> str:
    number = _number(value)
    return DASH if number is None else f"{number * 100:+,.{places}f} %"


@register.filter
def money(value: Any, places: int = 2) -> str:
    number = _number(value)
    return DASH if number is None else f"{number:,.{places}f}"


@register.filter
def ratio(value: Any, places: int = 2) -> str:
    number = _number(value)
    return DASH if number is None else f"{number:,.{places}f}"


@register.filter
def price(value: Any) -> str:
    """Prices keep their significant digits: 43,210.5 or 0.00012345."""
    number = _number(value)
    if number is None:
        return DASH
    return f"{number:,.2f}" if abs(number) >= 100 else f"{number:.6g}"


@register.filter
def tone(value: Any) -> str:
    """A CSS class for a signed figure: up, down or flat."""
    number = _number(value)
    if number is None or number == 0:
        return "flat"
    return "up" if number > 0 else "down"
