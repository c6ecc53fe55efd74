"""Create a backtest task: validate everything, write it with its pairs, enqueue the run."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.backtests.models import BacktestPair, BacktestTask
from apps.backtests.services.validate import (
    MAX_PAIRS,
    BacktestInvalid,
    CheckedPair,
    PairInput,
    pair_problems,
    task_problems,
)


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
    problems = task_problems(
        name=name, exchange=exchange, market_type=market_type, start=start, end=end
    )
    if not pairs:
        problems.append(("pairs", "add at least one pair"))
    elif len(pairs) > MAX_PAIRS:
        problems.append(("pairs", f"at most {MAX_PAIRS} pairs per backtest"))
    checked: list[CheckedPair] = []
    if not problems:
        for index, data in enumerate(pairs):
            ok, found = pair_problems(
                owner=owner,
                index=index,
                data=data,
                exchange=exchange,
                market_type=market_type,
                start=start,
                end=end,
            )
            problems.extend(found)
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


def _pair_row(task: BacktestTask, position: int, item: CheckedPair) -> BacktestPair:
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
        limit_offset=data.limit_offset,
        leverage=data.leverage,
        direction=data.direction,
        funding_rate=data.funding_rate,
        maintenance_margin=data.maintenance_margin,
    )


def _enqueue(task_id: int, celery_task_id: str) -> None:
    from apps.backtests.tasks import backtest_task_run as backtest_task_run_task

    backtest_task_run_task.apply_async(args=[task_id], task_id=celery_task_id)
