"""Recorded-alerts strategies: a signal bot's accepted alerts as an immutable version, so
the backtests app replays them like any strategy (issue 7, deliver 5).

One `Strategy` of kind "recorded" per signal bot (`Strategy.signal_bot`), created on the
first snapshot and owned by the bot's owner; each snapshot is a new version whose params
are {"alerts": {symbol: [{"time", "action", "size_mode", "size"}, ...]}}. A snapshot equal
to the latest version reuses it (`strategy_recorded_snapshot` in services.py). The engine
builds the strategy from `StrategyVersion.engine_spec(symbol=...)`, an
`EventSpec("recorded", ...)`.
"""

from __future__ import annotations

from typing import Any

from apps.engine.strategies.recorded import recorded_signals_from_params
from apps.strategies.models import StrategyKind, spec_content
from apps.strategies.specs import StrategyInvalid

Alert = dict[str, Any]  # {"time": ISO 8601 UTC, "action", "size_mode", "size": str | None}
NAME_PREFIX = "Recorded alerts of "


def recorded_name(bot_name: str) -> str:
    return (NAME_PREFIX + bot_name)[:100]


def recorded_content(alerts: dict[str, list[Alert]]) -> dict[str, Any]:
    """The canonical content of a snapshot; StrategyInvalid (field "alerts") when there is
    nothing to replay or an alert is one the engine refuses."""
    alerts = {symbol: items for symbol, items in sorted(alerts.items()) if items}
    if not alerts:
        raise StrategyInvalid([("alerts", "there are no recorded alerts to replay yet")])
    for symbol, items in alerts.items():
        try:
            recorded_signals_from_params({"alerts": items})
        except ValueError as exc:
            raise StrategyInvalid([(f"alerts.{symbol}", str(exc))]) from exc
    return spec_content(
        kind=StrategyKind.RECORDED,
        template="",
        params={"alerts": alerts},
        entry=None,
        exit=None,
        script="",
    )
