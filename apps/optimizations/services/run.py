"""The worker's side: run one chunk, store it at most once, finish the task exactly once.

Every chunk is its own Celery task on the `backtests` queue, so the worker's processes take
chunks side by side (a prefork child is daemonic and cannot start a process pool itself).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.aggregate import json_metrics
from apps.backtests.execution import execution_config
from apps.common import jobs
from apps.common.errors import ApplicationError
from apps.engine.candles import CandleArrays
from apps.engine.metrics import Metrics
from apps.engine.optimize import (
    EvaluationContext,
    evaluate_jobs,
    metric_score,
    rank_rows,
    walk_forward_summary,
)
from apps.market.selectors import candles_load
from apps.optimizations.models import OptimizationChunk, OptimizationRow, OptimizationTask
from apps.optimizations.plan import chunk_jobs, walk_forward_of
from apps.optimizations.progress import progress_push

logger = logging.getLogger(__name__)
RUNNING = OptimizationTask.Status.RUNNING
WORKER = "optimisation worker"
STALE_SWEEP = "optimisations stale sweep"
STALE_ERROR = "the worker stopped while running this optimisation; run it again"
OPTIMIZATION_JOB = jobs.JobKind(
    model=OptimizationTask,
    failable=OptimizationTask.ACTIVE,
    event_type="optimizations.task_failed",
    push=progress_push,
)


def optimization_chunk_run(*, task_id: int, chunk: int) -> bool:
    """Run chunk `chunk` of a task; True when this delivery stored its rows.

    The first chunk to start moves the task queued -> running. A chunk whose task is no
    longer running (cancelled, failed, done) does nothing. The delivery that completes the
    last chunk finishes the task; any error fails the task with the reason.
    """
    _start(task_id)
    task = _running(task_id)
    if task is None:
        return False
    if OptimizationChunk.objects.filter(task=task, number=chunk, done_at__isnull=False).exists():
        # A redelivery of a stored chunk. If the delivery that stored the last chunk died
        # before finishing, this one finishes instead (at most one finish ever writes).
        if task.chunks_done == task.chunk_count:
            _finish_or_fail(task_id)
        return False
    OptimizationChunk.objects.filter(task=task, number=chunk, done_at__isnull=True).update(
        started_at=timezone.now()
    )
    try:
        rows = _evaluate_chunk(task, chunk)
        complete = _store_chunk(task, chunk, rows)
    except Exception as exc:
        logger.exception("optimisation %s chunk %s failed", task_id, chunk)
        optimization_task_fail(task_id=task_id, error=_describe(exc))
        return False
    if complete is None:
        return False
    if complete:
        _finish_or_fail(task_id)
    return True


def _start(task_id: int) -> None:
    now = timezone.now()
    started = OptimizationTask.objects.filter(
        pk=task_id, status=OptimizationTask.Status.QUEUED
    ).update(status=RUNNING, started_at=now, updated_at=now)
    if started:
        progress_push(OptimizationTask.objects.get(pk=task_id))


def _running(task_id: int) -> OptimizationTask | None:
    task = (
        OptimizationTask.objects.select_related("strategy_version", "owner")
        .filter(pk=task_id)
        .first()
    )
    if task is None or task.status != RUNNING:
        logger.info("optimisation %s is not running; chunk skipped", task_id)
        return None
    return task


def _candles(task: OptimizationTask) -> CandleArrays:
    candles = candles_load(
        exchange=task.exchange,
        symbol=task.symbol,
        timeframe=task.timeframe,
        start=task.start,
        end=task.end,
    )
    if len(candles) != task.candle_count:
        # The windows and chunks were planned on the old count; mixing them would be wrong.
        raise ApplicationError(
            f"the stored {task.label} candles in the range changed while optimising "
            f"({task.candle_count} then {len(candles)}); run the optimisation again"
        )
    return candles


def _context(task: OptimizationTask) -> EvaluationContext:
    return EvaluationContext(task.template, _candles(task), execution_config(task))


def _evaluate_chunk(task: OptimizationTask, chunk: int) -> list[OptimizationRow]:
    jobs = chunk_jobs(task, chunk)
    found = dict(evaluate_jobs(_context(task), jobs))
    per_window = len(task.combinations)
    return [
        OptimizationRow(
            task=task,
            number=job.number,
            window=job.number // per_window if task.is_walk_forward else None,
            params=job.params,
            score=metric_score(found[job.number], task.metric),
            metrics=json_metrics(found[job.number].as_dict()),
        )
        for job in jobs
    ]


COUNT_CHUNK = (
    "UPDATE optimizations_optimizationtask"
    " SET chunks_done = chunks_done + 1,"
    " progress = LEAST(99, (chunks_done + 1) * 100 / chunk_count), updated_at = %s"
    " WHERE id = %s AND status = %s"
    " RETURNING chunks_done, chunk_count, progress"
)


@transaction.atomic
def _store_chunk(task: OptimizationTask, chunk: int, rows: list[OptimizationRow]) -> bool | None:
    """Count the chunk, claim it and write its rows, all or nothing.

    Returns None when nothing was stored (the task stopped running, or another delivery
    stored this chunk first), else whether this was the last chunk. The counter UPDATE
    locks the task row first, so concurrent chunks count one after another and exactly one
    sees the final count; a cancel waits for it, or it sees the cancel and stores nothing.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(COUNT_CHUNK, [now, task.pk, RUNNING])
        counted = cursor.fetchone()
    claimed = OptimizationChunk.objects.filter(
        task=task, number=chunk, done_at__isnull=True
    ).update(done_at=now)
    if counted is None or not claimed:
        transaction.set_rollback(True)
        return None
    OptimizationRow.objects.bulk_create(rows, batch_size=2000)
    task.chunks_done, task.chunk_count, task.progress = counted
    progress_push(task)
    return bool(task.chunks_done == task.chunk_count)


def _finish_or_fail(task_id: int) -> None:
    try:
        _finish(task_id)
    except Exception as exc:
        logger.exception("optimisation %s failed while finishing", task_id)
        optimization_task_fail(task_id=task_id, error=_describe(exc))


def _stored_results(task: OptimizationTask) -> tuple[list[dict[str, float]], list[Metrics]]:
    rows = task.rows.order_by("number").values_list("params", "metrics")
    params = [p for p, _ in rows]
    return params, [Metrics(**m) for _, m in rows]


def _search_summary(task: OptimizationTask) -> dict[str, Any]:
    params, metrics = _stored_results(task)
    ranked = rank_rows(params, metrics, task.metric)
    best = ranked[0]
    return {
        "best": {
            "number": params.index(best.params),
            "params": best.params,
            "score": best.score,
            "metrics": best.metrics.as_dict(),
        },
        "rows": len(ranked),
        "scored": sum(row.score is not None for row in ranked),
    }


def _walk_forward_summary(task: OptimizationTask) -> dict[str, Any]:
    _params, metrics = _stored_results(task)
    result = walk_forward_summary(
        _context(task), walk_forward_of(task), metrics, threshold=float(task.overfit_threshold)
    )
    summary = result.as_dict()
    # The stitched curve is one value per out-of-sample bar; the pages show the windows.
    del summary["equity"], summary["equity_time"]
    summary["oos_bars"] = len(result.equity)
    summary["overfit_windows"] = sum(window.overfit for window in result.windows)
    valid = task.combinations
    for window in summary["windows"]:
        window["best_row"] = window["index"] * len(valid) + valid.index(window["best_params"])
        window["oos_metrics"] = json_metrics(window["oos_metrics"])
    return summary


def _finish(task_id: int) -> None:
    task = _running(task_id)
    if task is None or task.chunks_done != task.chunk_count:
        return
    summary = _walk_forward_summary(task) if task.is_walk_forward else _search_summary(task)
    with transaction.atomic():
        now = timezone.now()
        finished = OptimizationTask.objects.filter(pk=task_id, status=RUNNING).update(
            status=OptimizationTask.Status.DONE,
            progress=100,
            summary=summary,
            finished_at=now,
            updated_at=now,
        )
        if not finished:
            return
        task.status, task.progress, task.summary = OptimizationTask.Status.DONE, 100, summary
        _worker_event(task, "optimizations.task_finished", _finish_audit(task))


def _finish_audit(task: OptimizationTask) -> dict[str, Any]:
    summary = task.summary or {}
    if task.is_walk_forward:
        return {
            "windows": len(summary["windows"]),
            "efficiency": summary["efficiency"],
            "overfit": summary["overfit"],
        }
    return {"best_params": summary["best"]["params"], "best_score": summary["best"]["score"]}


def _describe(exc: BaseException) -> str:
    return jobs.failure_text(
        exc, over_time="a chunk took longer than the worker's time limit; use a shorter range"
    )


def optimization_task_fail(*, task_id: int, error: str) -> bool:
    """Mark a queued or running task failed with `error`; False when it had stopped."""
    return jobs.job_fail(OPTIMIZATION_JOB, job_id=task_id, error=error, actor_label=WORKER)


def optimization_tasks_fail_stale(*, idle_for: timedelta) -> list[int]:
    """Fail every running task with a chunk started and not stored for longer than
    `idle_for`, and no progress since (its worker died); return their ids. Chunks still
    waiting in the queue (behind long backtests, say) never make a task stale. A
    redelivered chunk of a failed task stores nothing, as for any task not running."""
    return jobs.jobs_fail_stale(
        OPTIMIZATION_JOB,
        idle_for=idle_for,
        error=STALE_ERROR,
        actor_label=STALE_SWEEP,
        also=lambda idle_since: Q(chunks__started_at__lt=idle_since, chunks__done_at__isnull=True),
    )


def _worker_event(task: OptimizationTask, event_type: str, data: dict[str, Any]) -> None:
    """Audit the worker's change in its transaction; push the new state after commit."""
    audit_record(
        event_type=event_type,
        actor=None,
        actor_label=WORKER,
        owner=task.owner,
        target=task,
        data=data,
    )
    progress_push(task)
