"""Signal backtest: a bot's recorded accepted alerts replayed through the engine's event
path over stored candles (engine strategies/recorded.py), one run per whitelisted symbol.

The page only asks for one (`signal_backtest_start`: a `SignalBacktestRun` row, audited,
queued on commit); a worker on the `backtests` queue runs it (`signal_backtest_execute`),
symbol by symbol with its progress, so a long replay never holds a web request.

Each alert acts at the close of the bar during which it arrived and fills at the next
bar's open, as every backtested signal does; the risk profile's limits are not applied
(the engine backtest has its own execution settings: cash, fee, sizing for alerts without
a size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots.models import Bot
from apps.common.errors import ApplicationError
from apps.common.timefmt import utc_text
from apps.engine.backtest import BacktestReport, backtest_report
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.recorded import RecordedSignal, RecordedSignalsStrategy
from apps.market.selectors import candles_load
from apps.signals.models import SignalBacktestRun, WebhookEvent

logger = logging.getLogger(__name__)

TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")


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


def signal_backtest_symbol(
    *,
    bot: Bot,
    symbol: str,
    exchange: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    cash: float = 10_000.0,
    fee: float = 0.001,
) -> SignalBacktest:
    """One whitelisted symbol's recorded alerts replayed over its stored candles."""
    config = EventConfig(ExecutionConfig(cash=cash, fee=fee))
    config.validate()
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
    return SignalBacktest(symbol, len(signals), len(candles), report)


def signal_backtest_json(run: SignalBacktest) -> dict[str, Any]:
    """One symbol's outcome as `SignalBacktestRun.results` keeps it."""
    report = run.report
    trades = []
    if report is not None:
        times = report.candles.time
        for trade in report.result.trades:
            exit_at = None if trade.exit_index is None else times[trade.exit_index]
            trades.append(
                {
                    "entry_time": utc_text(times[trade.entry_index]),
                    "entry_price": trade.entry_price,
                    "exit_time": "" if exit_at is None else utc_text(exit_at),
                    "exit_price": trade.exit_price,
                    "size": trade.size,
                    "pnl": trade.pnl,
                }
            )
    return {
        "symbol": run.symbol,
        "alerts": run.alerts,
        "candles": run.candles,
        "metrics": None if report is None else report.metrics.as_dict(),
        "trades": trades,
    }


def signal_backtest_start(
    *, bot: Bot, acting_user: Any, exchange: str, timeframe: str
) -> SignalBacktestRun:
    """Queue a signal backtest of `bot` (checked, audited; the task is sent on commit).
    ApplicationError naming the field for a bad exchange or timeframe."""
    exchange = exchange.strip().lower()
    if not exchange or len(exchange) > 32:
        raise ApplicationError("give the ccxt id of the candles' exchange", field="exchange")
    if timeframe not in TIMEFRAMES:
        raise ApplicationError(
            f"timeframe must be one of {', '.join(TIMEFRAMES)}", field="timeframe"
        )
    with transaction.atomic():
        run = SignalBacktestRun.objects.create(bot=bot, exchange=exchange, timeframe=timeframe)
        audit_record(
            event_type="signals.backtest_started",
            actor=acting_user,
            owner=bot.owner,
            target=bot,
            data={"run": run.pk, "exchange": exchange, "timeframe": timeframe},
        )
        transaction.on_commit(partial(_enqueue, run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from apps.signals.tasks import signal_backtest_run as task

    # With the backtests, never on the orders queue, where alerts must not wait.
    task.apply_async(args=[run_id], queue=BACKTESTS_QUEUE)


BACKTESTS_QUEUE = "backtests"


def signal_backtest_execute(*, run_id: int) -> bool:
    """The worker's side: claim the queued run (a duplicate message finds nothing to
    claim: False), replay each symbol, store its outcome and progress; FAILED with the
    reason on any error."""
    now = timezone.now()
    claimed = SignalBacktestRun.objects.filter(
        pk=run_id, status=SignalBacktestRun.Status.QUEUED
    ).update(status=SignalBacktestRun.Status.RUNNING, started_at=now, updated_at=now)
    if not claimed:
        return False
    run = SignalBacktestRun.objects.select_related("bot").get(pk=run_id)
    try:
        results = []
        symbols = list(run.bot.symbols)
        for index, symbol in enumerate(symbols):
            outcome = signal_backtest_symbol(
                bot=run.bot, symbol=symbol, exchange=run.exchange, timeframe=run.timeframe
            )
            results.append(signal_backtest_json(outcome))
            SignalBacktestRun.objects.filter(pk=run_id).update(
                results=results,
                progress=min(99, round((index + 1) * 100 / len(symbols))),
                updated_at=timezone.now(),
            )
    except Exception as exc:
        logger.exception("signal backtest %s failed", run_id)
        _finish(run, status=SignalBacktestRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        return True
    _finish(run, status=SignalBacktestRun.Status.DONE, error="", results=results)
    return True


def _finish(
    run: SignalBacktestRun, *, status: str, error: str, results: list[Any] | None = None
) -> None:
    with transaction.atomic():
        fields: dict[str, Any] = {"status": status, "error": error[:2000]}
        fields |= {"finished_at": timezone.now(), "updated_at": timezone.now()}
        if status == SignalBacktestRun.Status.DONE:
            fields |= {"progress": 100, "results": results or []}
        SignalBacktestRun.objects.filter(pk=run.pk).update(**fields)
        audit_record(
            event_type=f"signals.backtest_{status}",
            actor=None,
            actor_label="worker",
            owner=run.bot.owner,
            target=run.bot,
            data={"run": run.pk, "error": error[:2000]},
        )
