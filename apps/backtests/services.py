"""Writes for backtests: create (validate everything first), cancel, and the worker's run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.aggregate import PairOutcome, aggregate_metrics, combined_equity, json_metrics
from apps.backtests.models import (
    BacktestPair,
    BacktestResult,
    BacktestTask,
    BacktestTrade,
    pack_times,
    pack_values,
)
from apps.backtests.progress import progress_state, publish_progress
from apps.common.errors import ApplicationError
from apps.engine.backtest import BacktestReport, StrategySpec, StrategySpecError, run_backtest
from apps.engine.conditions import ConditionError
from apps.engine.event_book import EventConfig
from apps.engine.sandbox import SandboxError, SandboxLimits, compile_strategy
from apps.engine.script_backtest import ScriptBacktestError, run_script_backtest
from apps.engine.simulator import ExecutionConfig, SimulationConfigError
from apps.market.selectors import candle_series_find, candles_load
from apps.market.services import series_key_clean
from apps.strategies.models import StrategyKind
from apps.strategies.selectors import strategy_version_get_for_user

logger = logging.getLogger(__name__)

MAX_PAIRS = 20
MAX_NAME = 120
# The simulator names its settings after ExecutionConfig; pairs name them after columns.
CONFIG_FIELD_NAMES = {"cash": "initial_capital", "fee": "taker_fee"}
RUNNING = BacktestTask.Status.RUNNING
# Limits for one script pair's sandbox run; well inside the task's soft time limit.
SCRIPT_LIMITS = SandboxLimits(cpu_seconds=120.0, wall_seconds=180.0, memory_mb=1024.0)


class BacktestInvalid(ApplicationError):
    """Input refused before anything was written; `problems` lists (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        path, message = problems[0]
        super().__init__(message, field=path)


class BacktestCancelled(Exception):
    """The owner cancelled the task; the worker stops at its next checkpoint."""


@dataclass(frozen=True)
class PairInput:
    symbol: str
    timeframe: str
    strategy_version_id: int
    initial_capital: Decimal = Decimal(10_000)
    order_type: str = BacktestPair.OrderType.MARKET
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal(0)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    sizing: str = BacktestPair.Sizing.ALL_IN
    size_value: Decimal = Decimal(1)
    max_trades_per_day: int | None = None
    max_drawdown_stop: Decimal | None = None


@dataclass
class _Checked:
    """A pair that passed validation, ready to write."""

    data: PairInput
    symbol: str
    timeframe: str
    version: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _fraction(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def pair_execution_config(pair: PairInput | BacktestPair) -> ExecutionConfig:
    """The simulator settings of one pair: market orders pay the taker fee."""
    fee = pair.taker_fee if pair.order_type == BacktestPair.OrderType.MARKET else pair.maker_fee
    return ExecutionConfig(
        cash=float(pair.initial_capital),
        fee=float(fee),
        slippage=float(pair.slippage),
        stop_loss=_fraction(pair.stop_loss),
        take_profit=_fraction(pair.take_profit),
        trailing_stop=_fraction(pair.trailing_stop),
        sizing=pair.sizing,  # type: ignore[arg-type]
        size_value=float(pair.size_value),
        max_trades_per_day=pair.max_trades_per_day,
        max_drawdown_stop=_fraction(pair.max_drawdown_stop),
    )


def version_is_script(version: Any) -> bool:
    return bool(version.kind == StrategyKind.SCRIPT)


def version_script_check(version: Any) -> None:
    """A script version's source compiles in the sandbox's policy (it is not run here)."""
    try:
        compile_strategy(version.script_source)
    except SandboxError as exc:
        raise ApplicationError(
            f"{version} cannot be backtested: {exc}", field="strategy_version"
        ) from exc


def version_engine_spec(version: Any) -> StrategySpec:
    """The version's condition spec; scripts and event-path templates cannot run here yet."""
    try:
        return version.engine_spec()
    except (StrategySpecError, ConditionError, ValueError) as exc:
        raise ApplicationError(
            f"{version} cannot be backtested yet: {exc}", field="strategy_version"
        ) from exc


def _task_problems(
    *, name: str, exchange: str, market_type: str, start: datetime, end: datetime
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not name.strip():
        problems.append(("name", "give the backtest a name"))
    elif len(name.strip()) > MAX_NAME:
        problems.append(("name", f"at most {MAX_NAME} characters"))
    if market_type == BacktestTask.MarketType.FUTURES:
        problems.append(("market_type", "futures backtests are not available yet; choose spot"))
    elif market_type not in BacktestTask.MarketType.values:
        problems.append(("market_type", f"choose one of {', '.join(BacktestTask.MarketType)}"))
    if start is None or end is None or timezone.is_naive(start) or timezone.is_naive(end):
        problems.append(("start", "give the start and end as UTC date-times"))
    elif end <= start:
        problems.append(("end", "must be after the start"))
    try:
        series_key_clean(exchange=exchange, symbol="BTC/USDT", timeframe="1h")
    except ApplicationError as exc:
        problems.append(("exchange", exc.message))
    return problems


def _check_pair(
    *, owner: Any, index: int, data: PairInput, exchange: str, start: datetime, end: datetime
) -> tuple[_Checked | None, list[tuple[str, str]]]:
    prefix = f"pairs[{index}]."
    problems: list[tuple[str, str]] = []
    try:
        exchange_, symbol, timeframe = series_key_clean(
            exchange=exchange, symbol=data.symbol, timeframe=data.timeframe
        )
    except ApplicationError as exc:
        return None, [(prefix + (exc.field or "symbol"), exc.message)]
    label = f"{symbol} {timeframe.code}"
    if data.order_type == BacktestPair.OrderType.LIMIT:
        problems.append(
            (prefix + "order_type", "limit orders are not available in backtests yet; use market")
        )
    elif data.order_type != BacktestPair.OrderType.MARKET:
        problems.append((prefix + "order_type", "choose market"))
    if data.sizing not in BacktestPair.Sizing.values:
        problems.append((prefix + "sizing", f"choose one of {', '.join(BacktestPair.Sizing)}"))
    if not Decimal(0) <= data.maker_fee < Decimal("0.1"):
        problems.append((prefix + "maker_fee", "maker_fee must be a fraction between 0 and 0.1"))
    version = None
    try:
        version = strategy_version_get_for_user(user=owner, version_id=data.strategy_version_id)
        if version_is_script(version):
            version_script_check(version)
        else:
            version_engine_spec(version)
    except Http404:
        problems.append(
            (prefix + "strategy_version", f"strategy version {data.strategy_version_id} not found")
        )
    except ApplicationError as exc:
        problems.append((prefix + "strategy_version", exc.message))
    try:
        pair_execution_config(data).validate()
    except SimulationConfigError as exc:
        name = str(exc).split(" ", 1)[0]
        problems.append((prefix + CONFIG_FIELD_NAMES.get(name, name), str(exc)))
    series = candle_series_find(exchange=exchange_, symbol=symbol, timeframe=timeframe.code)
    stored = (
        0
        if series is None
        else series.candles.filter(open_time__gte=start, open_time__lt=end)[:2].count()
    )
    if stored < 2:
        problems.append(
            (
                prefix + "symbol",
                f"no candles for {label} on {exchange_} between {start:%Y-%m-%d %H:%M} and "
                f"{end:%Y-%m-%d %H:%M} UTC; import them on the Market data page first",
            )
        )
    checked = _Checked(data=data, symbol=symbol, timeframe=timeframe.code, version=version)
    return checked, problems


@transaction.atomic(durable=True)
def backtest_task_create(
    *,
    owner: Any,
    name: str,
    exchange: str,
    market_type: str,
    start: datetime,
    end: datetime,
    pairs: Sequence[PairInput],
) -> BacktestTask:
    """Validate every input, then write the task, its pairs and the audit event, and
    enqueue the run after commit. Raise BacktestInvalid (naming each field) and write
    nothing when anything is wrong."""
    problems = _task_problems(
        name=name, exchange=exchange, market_type=market_type, start=start, end=end
    )
    if not pairs:
        problems.append(("pairs", "add at least one pair"))
    elif len(pairs) > MAX_PAIRS:
        problems.append(("pairs", f"at most {MAX_PAIRS} pairs per backtest"))
    checked: list[_Checked] = []
    if not problems:
        for index, data in enumerate(pairs):
            ok, pair_problems = _check_pair(
                owner=owner, index=index, data=data, exchange=exchange, start=start, end=end
            )
            problems.extend(pair_problems)
            if ok is not None:
                checked.append(ok)
    if problems:
        raise BacktestInvalid(problems)

    task = BacktestTask.objects.create(
        owner=owner,
        name=name.strip(),
        exchange=exchange.strip().lower(),
        market_type=market_type,
        start=start,
        end=end,
        celery_task_id=str(uuid.uuid4()),
    )
    BacktestPair.objects.bulk_create(
        [_pair_row(task, position, item) for position, item in enumerate(checked)]
    )
    audit_record(
        event_type="backtests.task_created",
        actor=owner,
        owner=owner,
        target=task,
        data={
            "name": task.name,
            "exchange": task.exchange,
            "start": start,
            "end": end,
            "pairs": [
                {"symbol": c.symbol, "timeframe": c.timeframe, "version": c.version.pk}
                for c in checked
            ],
        },
    )
    transaction.on_commit(partial(_enqueue, task.pk, task.celery_task_id))
    return task


def _pair_row(task: BacktestTask, position: int, item: _Checked) -> BacktestPair:
    data = item.data
    return BacktestPair(
        task=task,
        position=position,
        symbol=item.symbol,
        timeframe=item.timeframe,
        initial_capital=data.initial_capital,
        strategy_version=item.version,
        order_type=data.order_type,
        maker_fee=data.maker_fee,
        taker_fee=data.taker_fee,
        slippage=data.slippage,
        stop_loss=data.stop_loss,
        take_profit=data.take_profit,
        trailing_stop=data.trailing_stop,
        sizing=data.sizing,
        size_value=data.size_value,
        max_trades_per_day=data.max_trades_per_day,
        max_drawdown_stop=data.max_drawdown_stop,
    )


def _enqueue(task_id: int, celery_task_id: str) -> None:
    from apps.backtests.tasks import backtest_task_run as backtest_task_run_task

    backtest_task_run_task.apply_async(args=[task_id], task_id=celery_task_id)


@transaction.atomic(durable=True)
def backtest_task_cancel(*, task: BacktestTask, acting_user: Any) -> bool:
    """Mark a queued or running task cancelled; the worker stops at its next checkpoint.

    Returns False (and changes nothing) when the task had already finished.
    """
    now = timezone.now()
    changed = BacktestTask.objects.filter(pk=task.pk, status__in=BacktestTask.ACTIVE).update(
        status=BacktestTask.Status.CANCELLED, finished_at=now, updated_at=now
    )
    if not changed:
        return False
    task.refresh_from_db(fields=["status", "finished_at", "progress", "error"])
    audit_record(
        event_type="backtests.task_cancelled",
        actor=acting_user,
        owner=task.owner,
        target=task,
        data={"progress": task.progress},
    )
    transaction.on_commit(partial(publish_progress, progress_state(task)))
    return True


# --- The worker's side -------------------------------------------------------------------


def backtest_task_run(*, task_id: int) -> bool:
    """Run every pair of a queued task, storing results as it goes.

    Claims the task with a conditional UPDATE (queued -> running), so a duplicate message
    finds nothing to claim and returns False. Checks for cancellation before and after each
    pair; marks the task failed, with the reason, on any error.
    """
    now = timezone.now()
    claimed = BacktestTask.objects.filter(pk=task_id, status=BacktestTask.Status.QUEUED).update(
        status=RUNNING, started_at=now, progress=0, error="", updated_at=now
    )
    if not claimed:
        logger.info("backtest %s was not queued any more; nothing to do", task_id)
        return False
    task = BacktestTask.objects.select_related("owner").get(pk=task_id)
    first = task.pairs.order_by("position").first()
    publish_progress(progress_state(task, current=first.label if first else ""))
    try:
        _run_pairs(task)
    except BacktestCancelled:
        logger.info("backtest %s cancelled", task_id)
    except Exception as exc:
        logger.exception("backtest %s failed", task_id)
        backtest_task_fail(task_id=task_id, error=_describe(exc))
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return exc.message
    name = type(exc).__name__
    if name == "SoftTimeLimitExceeded":
        return (
            "the backtest took longer than the worker's time limit; "
            "use fewer pairs or a shorter range"
        )
    return f"{name}: {exc}"


def backtest_task_fail(*, task_id: int, error: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        changed = BacktestTask.objects.filter(pk=task_id, status=RUNNING).update(
            status=BacktestTask.Status.FAILED, error=error[:2000], finished_at=now, updated_at=now
        )
        if changed:
            task = BacktestTask.objects.get(pk=task_id)
            audit_record(
                event_type="backtests.task_failed",
                actor=None,
                actor_label="backtests worker",
                owner=task.owner,
                target=task,
                data={"error": task.error},
            )
            transaction.on_commit(partial(publish_progress, progress_state(task)))


def _still_running(task_id: int, *, lock: bool = False) -> None:
    queryset = BacktestTask.objects.filter(pk=task_id)
    if lock:
        queryset = queryset.select_for_update()
    if queryset.values_list("status", flat=True).first() != RUNNING:
        raise BacktestCancelled


def _run_pairs(task: BacktestTask) -> None:
    pairs = list(task.pairs.select_related("strategy_version__strategy").order_by("position"))
    outcomes: list[PairOutcome] = []
    for index, pair in enumerate(pairs):
        _still_running(task.pk)
        report = _run_one(task, pair)
        progress = min(99, round((index + 1) * 100 / len(pairs)))
        with transaction.atomic():
            _still_running(task.pk, lock=True)
            outcome = _store_result(pair, report)
            BacktestTask.objects.filter(pk=task.pk).update(
                progress=progress, updated_at=timezone.now()
            )
            task.progress = progress
            nxt = pairs[index + 1].label if index + 1 < len(pairs) else "combining"
            transaction.on_commit(partial(publish_progress, progress_state(task, current=nxt)))
        outcomes.append(outcome)
    _finish(task, outcomes)


def _run_one(task: BacktestTask, pair: BacktestPair) -> BacktestReport:
    candles = candles_load(
        exchange=task.exchange,
        symbol=pair.symbol,
        timeframe=pair.timeframe,
        start=task.start,
        end=task.end,
    )
    if len(candles) < 2:
        raise ApplicationError(
            f"no candles for {pair.label} on {task.exchange} between "
            f"{task.start:%Y-%m-%d %H:%M} and {task.end:%Y-%m-%d %H:%M} UTC any more"
        )
    version = pair.strategy_version
    if version_is_script(version):
        return _run_script(pair, candles)
    spec = version_engine_spec(version)
    return run_backtest(spec, candles, pair_execution_config(pair))


def _run_script(pair: BacktestPair, candles: Any) -> BacktestReport:
    """A script version: the event path in the sandbox; a script error fails the task."""
    config = EventConfig(
        pair_execution_config(pair),
        maker_fee=float(pair.maker_fee),
        taker_fee=float(pair.taker_fee),
    )
    version = pair.strategy_version
    try:
        return run_script_backtest(
            version.script_source, version.params, candles, config, SCRIPT_LIMITS
        )
    except ScriptBacktestError as exc:
        raise ApplicationError(f"{pair.label}, {version}: {exc}") from exc


def _store_result(pair: BacktestPair, report: BacktestReport) -> PairOutcome:
    metrics = json_metrics(report.metrics.as_dict())
    times = report.candles.time.astype("datetime64[s]").astype("int64")
    BacktestResult.objects.create(
        pair=pair,
        metrics=metrics,
        candle_count=len(report.candles),
        times=pack_times(report.candles.time),
        equity=pack_values(report.equity),
        drawdown=pack_values(report.drawdown),
    )
    BacktestTrade.objects.bulk_create(
        [
            BacktestTrade(
                pair=pair,
                number=number,
                entry_time=datetime.fromisoformat(row.entry_time),
                exit_time=None if row.exit_time is None else datetime.fromisoformat(row.exit_time),
                entry_price=row.entry_price,
                exit_price=row.exit_price,
                size=row.size,
                fee=row.fee,
                pnl=row.pnl,
                exit_reason=row.exit_reason,
            )
            for number, row in enumerate(report.trades, start=1)
        ],
        batch_size=5000,
    )
    BacktestPair.objects.filter(pk=pair.pk).update(status=BacktestPair.Status.DONE)
    pnl, cost = report.result.closed_pnl_and_cost()
    return PairOutcome(
        times=times,
        equity=report.equity,
        initial=float(pair.initial_capital),
        metrics=metrics,
        closed_pnl=pnl,
        closed_cost=cost,
    )


def _finish(task: BacktestTask, outcomes: list[PairOutcome]) -> None:
    times, equity = combined_equity(outcomes)
    metrics = aggregate_metrics(outcomes, times, equity)
    with transaction.atomic():
        _still_running(task.pk, lock=True)
        now = timezone.now()
        BacktestTask.objects.filter(pk=task.pk).update(
            status=BacktestTask.Status.DONE,
            progress=100,
            metrics=metrics,
            equity_times=times.astype("<i8").tobytes(),
            equity_values=pack_values(equity),
            finished_at=now,
            updated_at=now,
        )
        task.status, task.progress = BacktestTask.Status.DONE, 100
        audit_record(
            event_type="backtests.task_finished",
            actor=None,
            actor_label="backtests worker",
            owner=task.owner,
            target=task,
            data={
                "total_return": metrics["total_return"],
                "final_equity": metrics["final_equity"],
                "trades": metrics["trade_count"],
            },
        )
        transaction.on_commit(partial(publish_progress, progress_state(task)))
