"""Live progress of one backtest: the state dict, published to `backtest.<id>` after commit
through the shared channel (apps/common/progress.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from apps.backtests.models import BacktestPair, BacktestTask
from apps.common.progress import ProgressChannel

CHANNEL = ProgressChannel(
    kind="backtest",
    template="backtests/_progress.html",
    urls="backtests",
    prefix="bt",
    poll="2s",
    label="Backtest",
)
# Names of this module: progress_push looks publish_progress up here when it runs.
render_progress = CHANNEL.render
publish_progress = CHANNEL.publish


def progress_state(task: BacktestTask, *, current: str = "") -> dict[str, Any]:
    pairs = BacktestPair.objects.filter(task_id=task.pk)
    done = pairs.filter(status=BacktestPair.Status.DONE).count()
    return {
        "id": task.pk,
        "status": task.status,
        "status_label": BacktestTask.Status(task.status).label,
        "progress": task.progress,
        "error": task.error,
        "pairs_done": done,
        "pair_count": pairs.count(),
        "current": current,
        "active": task.status in BacktestTask.ACTIVE,
    }


def progress_push(task: BacktestTask, *, current: str = "") -> None:
    """Publish the task's state once the current transaction commits (at once outside one),
    so watchers never see a state that is rolled back."""
    transaction.on_commit(partial(publish_progress, progress_state(task, current=current)))
