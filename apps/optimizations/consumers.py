"""Live progress of one optimisation over a websocket: transport only (house style §3.13)."""

from __future__ import annotations

from typing import Any

from apps.common.progress import ProgressConsumer
from apps.optimizations.progress import CHANNEL, progress_state
from apps.optimizations.selectors import optimization_get_for_user


class OptimizationProgressConsumer(ProgressConsumer):
    """Relays `optimization.<id>` to the task's owner."""

    channel = CHANNEL
    url_kwarg = "optimization_id"

    def state_for(self, user: Any, job_id: int) -> dict[str, Any]:
        return progress_state(optimization_get_for_user(user=user, optimization_id=job_id))
