"""Live progress: one JSON-safe state dict, pushed to the group `backtest.<id>` after commit.

The same dict renders the progress partial over HTTP (polling and re-sync) and over the
websocket (the consumer renders it from the message, without touching the database).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.backtests.models import BacktestPair, BacktestTask

logger = logging.getLogger(__name__)
PROGRESS_TEMPLATE = "backtests/detail.html#progress"


def group_name(task_id: int) -> str:
    return f"backtest.{task_id}"


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


def render_progress(
    state: dict[str, Any], *, request: Any = None, results_shown: bool = False
) -> str:
    """The `#bt-progress` element; `results_shown`: the page already has the results."""
    context = {
        "results_shown": results_shown,
        "state": state,
        "progress_url": reverse("backtests:progress", args=[state["id"]]),
        "cancel_url": reverse("backtests:cancel", args=[state["id"]]),
        "detail_url": reverse("backtests:detail", args=[state["id"]]),
    }
    return render_to_string(PROGRESS_TEMPLATE, context, request=request)


def publish_progress(state: dict[str, Any]) -> None:
    """Send the state to everyone watching; call it from `transaction.on_commit`.

    A push that fails (Redis briefly away) must not fail the backtest: browsers poll over
    HTTP as well, so they catch up on the next poll.
    """
    safe = json.loads(json.dumps(state, cls=DjangoJSONEncoder))
    message = {"type": "backtest.progress", "state": safe}
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(state["id"]), message)
    except Exception:  # any transport error: logged, and polling covers it
        logger.warning("backtest progress push failed for task %s", state["id"], exc_info=True)


def progress_push(task: BacktestTask, *, current: str = "") -> None:
    """Publish the task's state once the current transaction commits (at once outside one),
    so watchers never see a state that is rolled back."""
    transaction.on_commit(partial(publish_progress, progress_state(task, current=current)))
