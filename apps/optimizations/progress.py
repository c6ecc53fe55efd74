"""Live progress: one JSON-safe state dict, pushed to the group `optimization.<id>` after
commit. The same dict renders the progress partial over HTTP (polling and re-sync) and over
the websocket (the consumer renders it from the message, without touching the database).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.template.loader import render_to_string
from django.urls import reverse

from apps.optimizations.models import OptimizationTask

logger = logging.getLogger(__name__)
PROGRESS_TEMPLATE = "optimizations/detail.html#progress"


def group_name(task_id: int) -> str:
    return f"optimization.{task_id}"


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


def render_progress(
    state: dict[str, Any], *, request: Any = None, results_shown: bool = False
) -> str:
    """The `#opt-progress` element; `results_shown`: the page already has the results."""
    context = {
        "results_shown": results_shown,
        "state": state,
        "progress_url": reverse("optimizations:progress", args=[state["id"]]),
        "cancel_url": reverse("optimizations:cancel", args=[state["id"]]),
        "detail_url": reverse("optimizations:detail", args=[state["id"]]),
    }
    return render_to_string(PROGRESS_TEMPLATE, context, request=request)


def publish_progress(state: dict[str, Any]) -> None:
    """Send the state to everyone watching; call it from `transaction.on_commit`.

    A push that fails (Redis briefly away) must not fail the run: pages poll over HTTP as
    well, so they catch up on the next poll.
    """
    safe = json.loads(json.dumps(state, cls=DjangoJSONEncoder))
    message = {"type": "optimization.progress", "state": safe}
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(state["id"]), message)
    except Exception:  # any transport error: logged, and polling covers it
        logger.warning("optimisation progress push failed for %s", state["id"], exc_info=True)
