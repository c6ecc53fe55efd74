"""Live progress of one backtest over a websocket: transport only (house style §3.13)."""

from __future__ import annotations

from typing import Any

from apps.backtests.progress import CHANNEL, progress_state
from apps.backtests.selectors import backtest_task_get_for_user
from apps.common.progress import ProgressConsumer


class BacktestProgressConsumer(ProgressConsumer):
    """Relays `backtest.<id>` to the task's owner."""

    channel = CHANNEL
    url_kwarg = "task_id"

    def state_for(self, user: Any, job_id: int) -> dict[str, Any]:
        return progress_state(backtest_task_get_for_user(user=user, task_id=job_id))
