"""A run that ends in error: the task is marked failed with a reason its owner can read."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.models import BacktestTask
from apps.backtests.progress import progress_push
from apps.common.errors import ApplicationError


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


def backtest_task_fail(*, task_id: int, error: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        changed = BacktestTask.objects.filter(
            pk=task_id, status=BacktestTask.Status.RUNNING
        ).update(
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
            progress_push(task)
