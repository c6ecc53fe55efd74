"""A run that ends in error: the task is marked failed with a reason its owner can read.

Two ways in: the worker catches an exception (`backtest_task_fail`), or the worker died
without a word (killed, out of memory, machine lost) and the periodic sweep finds the task
still "running" with no progress for too long (`backtest_tasks_fail_stale`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.models import BacktestTask
from apps.backtests.progress import progress_push
from apps.common.errors import ApplicationError

STALE_ERROR = "the worker stopped while running this backtest; run it again"


def failure_text(exc: BaseException) -> str:
    """What the owner reads about an exception that ended a run."""
    if isinstance(exc, ApplicationError):
        return exc.message
    name = type(exc).__name__
    if name == "SoftTimeLimitExceeded":
        return (
            "the backtest took longer than the worker's time limit; "
            "use fewer pairs or a shorter range"
        )
    return f"{name}: {exc}"


def backtest_task_fail(
    *,
    task_id: int,
    error: str,
    idle_since: datetime | None = None,
    actor_label: str = "backtests worker",
) -> bool:
    """Mark a running task failed with `error`; with `idle_since`, only if it has made no
    progress since then (the same conditional UPDATE, so progress made meanwhile wins).
    Returns whether it changed anything."""
    with transaction.atomic():
        now = timezone.now()
        running = BacktestTask.objects.filter(pk=task_id, status=BacktestTask.Status.RUNNING)
        if idle_since is not None:
            running = running.filter(updated_at__lt=idle_since)
        changed = running.update(
            status=BacktestTask.Status.FAILED, error=error[:2000], finished_at=now, updated_at=now
        )
        if changed:
            task = BacktestTask.objects.get(pk=task_id)
            audit_record(
                event_type="backtests.task_failed",
                actor=None,
                actor_label=actor_label,
                owner=task.owner,
                target=task,
                data={"error": task.error},
            )
            progress_push(task)
    return bool(changed)


def backtest_tasks_fail_stale(*, idle_for: timedelta) -> list[int]:
    """Fail every running task whose last progress is older than `idle_for`; return their ids.

    `idle_for` must exceed the run's hard time limit: then no live worker can still be
    running such a task, so only tasks whose worker died are failed. (A redelivered message
    never resumes a running task, see `backtest_task_run`, so there is nothing to wait for.)
    """
    idle_since = timezone.now() - idle_for
    stale = list(
        BacktestTask.objects.filter(
            status=BacktestTask.Status.RUNNING, updated_at__lt=idle_since
        ).values_list("pk", flat=True)
    )
    return [
        task_id
        for task_id in stale
        if backtest_task_fail(
            task_id=task_id,
            error=STALE_ERROR,
            idle_since=idle_since,
            actor_label="backtests stale sweep",
        )
    ]
