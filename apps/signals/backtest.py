"""Signal backtest: a bot's recorded accepted alerts replayed through the engine's event
path over stored candles (engine strategies/recorded.py), one run per whitelisted symbol.

Each alert acts at the close of the bar during which it arrived and fills at the next
bar's open, as every backtested signal does; the risk profile's limits are not applied
(the engine backtest has its own execution settings: cash, fee, sizing for alerts without
a size).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apps.bots.models import Bot
from apps.engine.backtest import BacktestReport, backtest_report
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.recorded import RecordedSignal, RecordedSignalsStrategy
from apps.market.selectors import candles_load
from apps.signals.models import WebhookEvent


@dataclass(frozen=True)
class SignalBacktest:
    symbol: str
    alerts: int
    candles: int
    report: BacktestReport | None  # None when no candles cover the alerts


def recorded_signals(*, bot: Bot, symbol: str) -> list[RecordedSignal]:
    events = WebhookEvent.objects.filter(
        bot=bot, symbol=symbol, status=WebhookEvent.Status.ACCEPTED
    ).order_by("received_at", "id")
    return [
        RecordedSignal(
            time=event.alert_time or event.received_at,
            action=event.action,
            size_mode=event.size_mode,
            size=None if event.size is None else float(event.size),
        )
        for event in events
    ]


def signal_backtest_run(
    *,
    bot: Bot,
    exchange: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    cash: float = 10_000.0,
    fee: float = 0.001,
) -> list[SignalBacktest]:
    config = EventConfig(ExecutionConfig(cash=cash, fee=fee))
    config.validate()
    runs = []
    for symbol in bot.symbols:
        signals = recorded_signals(bot=bot, symbol=symbol)
        first = start
        if first is None and signals:
            # From before the first alert's bar, whatever the timeframe (up to a week).
            first = signals[0].time - timedelta(days=7)
        candles = candles_load(
            exchange=exchange, symbol=symbol, timeframe=timeframe, start=first, end=end
        )
        report = None
        if len(candles) and signals:
            result = run_events(RecordedSignalsStrategy(signals), candles, config)
            report = backtest_report(candles, result, cash)
        runs.append(SignalBacktest(symbol, len(signals), len(candles), report))
    return runs
