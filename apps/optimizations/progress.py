"""Live progress of one optimisation: the state dict, published to `optimization.<id>`
after commit through the shared channel (apps/common/progress.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from apps.common.progress import ProgressChannel
from apps.optimizations.models import OptimizationTask

CHANNEL = ProgressChannel(
    kind="optimization",
    template="optimizations/_progress.html",
    urls="optimizations",
    prefix="opt",
    poll="1s",
    label="Optimisation",
)
# Names of this module: progress_push looks publish_progress up here when it runs.
render_progress = CHANNEL.render
publish_progress = CHANNEL.publish


def progress_state(task: OptimizationTask) -> dict[str, Any]:
    return {
        "id": task.pk,
        "status": task.status,
        "status_label": OptimizationTask.Status(task.status).label,
        "progress": task.progress,
        "error": task.error,
        "chunks_done": task.chunks_done,
        "chunk_count": task.chunk_count,
        "job_count": task.job_count,
        "active": task.status in OptimizationTask.ACTIVE,
    }


def progress_push(task: OptimizationTask) -> None:
    """Publish the task's state once the current transaction commits (at once outside one),
    so watchers never see a state that is rolled back."""
    transaction.on_commit(partial(publish_progress, progress_state(task)))
