"""Store what a run produced: each pair's result and trades, then the task's aggregate."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
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
from apps.backtests.progress import progress_push
from apps.engine.backtest import BacktestReport


class BacktestCancelled(Exception):
    """The owner cancelled the task; the worker stops at its next checkpoint."""


def still_running(task_id: int, *, lock: bool = False) -> None:
    """Raise BacktestCancelled unless the task is still running (cancelled, or failed by
    the stale sweep); `lock` holds the row until the caller's transaction ends."""
    queryset = BacktestTask.objects.filter(pk=task_id)
    if lock:
        queryset = queryset.select_for_update()
    if queryset.values_list("status", flat=True).first() != BacktestTask.Status.RUNNING:
        raise BacktestCancelled


def pair_result_store(pair: BacktestPair, report: BacktestReport) -> PairOutcome:
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
                side=row.side,
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


def task_finish(task: BacktestTask, outcomes: list[PairOutcome]) -> None:
    times, equity = combined_equity(outcomes)
    metrics = aggregate_metrics(outcomes, times, equity)
    with transaction.atomic():
        still_running(task.pk, lock=True)
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
        progress_push(task)
