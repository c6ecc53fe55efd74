"""Signal backtest: a signal bot's accepted alerts backtested by the backtests app, so a
webhook bot gets the same results page (K-line chart with the fills, equity, drawdown,
sortable trades, CSV, live progress) as a coded strategy (issue 7, deliver 5).

`signal_backtest_start` snapshots the alerts into an immutable recorded-alerts strategy
version (apps/strategies/recorded.py, one strategy per bot) and creates a `BacktestTask`
through the backtests app's own create service: one pair per symbol with alerts, over the
alerts' span. A worker on the `backtests` queue runs it like any backtest, replaying each
symbol's alerts with apps/engine/strategies/recorded.py: each alert acts at the close of
the bar during which it arrived and fills at the next bar's open. The bot's risk profile is
not applied (the pair's settings are: capital, fees, sizing for alerts without a size).

The snapshot is committed before the task is created (the backtests service is a durable
transaction of its own), so a task refused for missing candles leaves that snapshot
behind; it is immutable and the next request with the same alerts reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.backtests.models import BacktestTask
from apps.backtests.services import PairInput, backtest_task_create
from apps.bots.models import Bot
from apps.common.errors import ApplicationError
from apps.signals.models import WebhookEvent
from apps.strategies.models import StrategyVersion
from apps.strategies.recorded import Alert, recorded_name
from apps.strategies.services import strategy_recorded_snapshot

DEFAULT_TIMEFRAME = "1h"
# The replay starts this long before the first alert (the chart shows what led to it) and
# ends this long after the last one (its fill, and the open position's course).
LEAD = timedelta(days=7)
TAIL = timedelta(days=7)
NO_ALERTS = (
    "This bot has no accepted alerts yet: send it an alert (see the message templates on "
    "its page), then backtest them."
)


@dataclass(frozen=True)
class SignalBacktestInput:
    exchange: str
    timeframe: str = DEFAULT_TIMEFRAME
    initial_capital: Decimal = Decimal(10_000)
    fee: Decimal = Decimal("0.001")  # a fraction, on every fill


def recorded_alerts(*, bot: Bot) -> dict[str, list[Alert]]:
    """The bot's accepted alerts per symbol, in arrival order, as a snapshot keeps them."""
    events = (
        WebhookEvent.objects.filter(bot=bot, status=WebhookEvent.Status.ACCEPTED)
        .exclude(symbol="")
        .order_by("received_at", "id")
        .values_list("symbol", "alert_time", "received_at", "action", "size_mode", "size")
    )
    alerts: dict[str, list[Alert]] = {}
    for symbol, alert_time, received_at, action, size_mode, size in events:
        moment = (alert_time or received_at).astimezone(UTC)
        alerts.setdefault(symbol, []).append(
            {
                "time": moment.isoformat(),
                "action": action,
                "size_mode": size_mode,
                "size": None if size is None else str(size),
            }
        )
    return alerts


def alert_times(version: StrategyVersion) -> list[datetime]:
    """When each alert a recorded-alerts version holds arrived, over all its symbols."""
    return [
        datetime.fromisoformat(alert["time"])
        for alerts in version.params["alerts"].values()
        for alert in alerts
    ]


def alerts_span(version: StrategyVersion) -> tuple[datetime, datetime]:
    """The backtest range: from LEAD before the first alert (at a whole hour) to TAIL
    after the last one, and not past now."""
    times = alert_times(version)
    start = (min(times) - LEAD).replace(minute=0, second=0, microsecond=0)
    end = min(max(times) + TAIL, timezone.now()).replace(second=0, microsecond=0)
    return start, max(end, start + timedelta(hours=1))


def signal_backtest_start(*, bot: Bot, acting_user: Any, data: SignalBacktestInput) -> BacktestTask:
    """Snapshot the bot's accepted alerts and queue their backtest (both audited, by the
    strategies and backtests services). ApplicationError (field "alerts") when there is no
    alert, BacktestInvalid naming each field (`exchange`, `pairs[i].symbol` for missing
    candles, ...) as the backtests app refuses its input; nothing is queued then."""
    alerts = recorded_alerts(bot=bot)
    if not alerts:
        raise ApplicationError(NO_ALERTS, field="alerts")
    version = strategy_recorded_snapshot(bot=bot, acting_user=acting_user, alerts=alerts)
    start, end = alerts_span(version)
    pairs = [
        PairInput(
            symbol=symbol,
            timeframe=data.timeframe,
            strategy_version_id=version.pk,
            initial_capital=data.initial_capital,
            maker_fee=data.fee,
            taker_fee=data.fee,
        )
        for symbol in version.recorded_symbols
    ]
    return backtest_task_create(
        owner=bot.owner,
        name=f"{recorded_name(bot.name)} v{version.number}"[:120],
        exchange=data.exchange,
        market_type=BacktestTask.MarketType.SPOT,
        start=start,
        end=end,
        pairs=pairs,
    )
