"""What an owner does with an existing optimisation: cancel it, or take a row's parameters
into a new strategy version to backtest."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.common.errors import ApplicationError
from apps.optimizations.models import OptimizationTask
from apps.optimizations.progress import progress_push
from apps.strategies.models import StrategyVersion
from apps.strategies.selectors import strategy_latest_version
from apps.strategies.services import NoChanges, strategy_version_create


@transaction.atomic(durable=True)
def optimization_task_cancel(*, task: OptimizationTask, acting_user: Any) -> bool:
    """Mark a queued or running task cancelled; chunks still queued or running store
    nothing. Returns False (and changes nothing) when the task had already finished."""
    now = timezone.now()
    changed = OptimizationTask.objects.filter(
        pk=task.pk, status__in=OptimizationTask.ACTIVE
    ).update(status=OptimizationTask.Status.CANCELLED, finished_at=now, updated_at=now)
    if not changed:
        return False
    task.refresh_from_db()
    audit_record(
        event_type="optimizations.task_cancelled",
        actor=acting_user,
        owner=task.owner,
        target=task,
        data={"progress": task.progress, "chunks_done": task.chunks_done},
    )
    progress_push(task)
    return True


@transaction.atomic(durable=True)
def optimization_params_adopt(
    *, task: OptimizationTask, row_number: int, acting_user: Any
) -> StrategyVersion:
    """A new version of the optimised strategy with the parameters of row `row_number`,
    ready to backtest; the latest version when it already has exactly those parameters."""
    row = task.rows.filter(number=row_number).first()
    if row is None:
        raise ApplicationError(f"optimisation #{task.pk} has no row {row_number}", field="row")
    version = task.strategy_version
    try:
        return strategy_version_create(
            strategy=version.strategy,
            acting_user=acting_user,
            template=version.template,
            params=row.params,
            note=f"Parameters from optimisation #{task.pk} ({task.metric} {row.score:.4g})"
            if row.score is not None
            else f"Parameters from optimisation #{task.pk}",
        )
    except NoChanges:
        return strategy_latest_version(strategy=version.strategy)
