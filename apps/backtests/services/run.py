"""The worker's side: claim a queued task and run its pairs one by one."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.backtests.aggregate import PairOutcome
from apps.backtests.models import BacktestPair, BacktestTask
from apps.backtests.progress import progress_push
from apps.backtests.selectors import backtest_pair_candles
from apps.backtests.services.fail import backtest_task_fail, failure_text
from apps.backtests.services.pair_config import (
    pair_event_config,
    pair_settings,
    version_engine_spec,
    version_is_script,
)
from apps.backtests.services.results import (
    BacktestCancelled,
    pair_result_store,
    still_running,
    task_finish,
)
from apps.common.errors import ApplicationError
from apps.engine.backtest import BacktestReport
from apps.engine.pair_backtest import run_pair_backtest
from apps.engine.sandbox import SandboxLimits
from apps.engine.script_backtest import ScriptBacktestError, run_script_backtest

logger = logging.getLogger(__name__)

# Limits for one script pair's sandbox run; well inside the task's soft time limit.
SCRIPT_LIMITS = SandboxLimits(cpu_seconds=120.0, wall_seconds=180.0, memory_mb=1024.0)


def backtest_task_run(*, task_id: int) -> bool:
    """Run every pair of a queued task, storing results as it goes.

    Claims the task with a conditional UPDATE (queued -> running), so a duplicate message
    finds nothing to claim and returns False. Checks for cancellation before and after each
    pair; marks the task failed, with the reason, on any error.
    """
    now = timezone.now()
    claimed = BacktestTask.objects.filter(pk=task_id, status=BacktestTask.Status.QUEUED).update(
        status=BacktestTask.Status.RUNNING, started_at=now, progress=0, error="", updated_at=now
    )
    if not claimed:
        logger.info("backtest %s was not queued any more; nothing to do", task_id)
        return False
    task = BacktestTask.objects.select_related("owner").get(pk=task_id)
    first = task.pairs.order_by("position").first()
    progress_push(task, current=first.label if first else "")
    try:
        _run_pairs(task)
    except BacktestCancelled:
        logger.info("backtest %s cancelled", task_id)
    except Exception as exc:
        logger.exception("backtest %s failed", task_id)
        backtest_task_fail(task_id=task_id, error=failure_text(exc))
    return True


def _run_pairs(task: BacktestTask) -> None:
    pairs = list(task.pairs.select_related("strategy_version__strategy").order_by("position"))
    outcomes: list[PairOutcome] = []
    for index, pair in enumerate(pairs):
        still_running(task.pk)
        report = _run_one(task, pair)
        progress = min(99, round((index + 1) * 100 / len(pairs)))
        with transaction.atomic():
            still_running(task.pk, lock=True)
            outcome = pair_result_store(pair, report)
            BacktestTask.objects.filter(pk=task.pk).update(
                progress=progress, updated_at=timezone.now()
            )
            task.progress = progress
            nxt = pairs[index + 1].label if index + 1 < len(pairs) else "combining"
            progress_push(task, current=nxt)
        outcomes.append(outcome)
    task_finish(task, outcomes)


def _run_one(task: BacktestTask, pair: BacktestPair) -> BacktestReport:
    candles = backtest_pair_candles(pair=pair)
    if len(candles) < 2:
        raise ApplicationError(
            f"no candles for {pair.label} on {task.exchange} between "
            f"{task.start:%Y-%m-%d %H:%M} and {task.end:%Y-%m-%d %H:%M} UTC any more"
        )
    version = pair.strategy_version
    if version_is_script(version):
        return _run_script(pair, candles)
    spec = version_engine_spec(version, symbol=pair.symbol)
    return run_pair_backtest(spec, candles, pair_settings(pair, market_type=task.market_type))


def _run_script(pair: BacktestPair, candles: Any) -> BacktestReport:
    """A script version: the event path in the sandbox; a script error fails the task."""
    version = pair.strategy_version
    try:
        return run_script_backtest(
            version.script_source, version.params, candles, pair_event_config(pair), SCRIPT_LIMITS
        )
    except ScriptBacktestError as exc:
        raise ApplicationError(f"{pair.label}, {version}: {exc}") from exc
