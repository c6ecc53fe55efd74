"""The owner (or an operator) cancels a task."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.models import BacktestTask
from apps.backtests.progress import progress_push


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
    progress_push(task)
    return True
