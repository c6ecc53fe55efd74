"""Live progress of one optimisation over a websocket: transport only (house style §3.13)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from apps.optimizations.progress import group_name, progress_state, render_progress
from apps.optimizations.selectors import optimization_get_for_user


class OptimizationProgressConsumer(AsyncWebsocketConsumer):
    """Joins `optimization.<id>` for the task's owner and sends the rendered progress
    partial, whose `id` htmx's ws extension swaps. On (re)connect it sends the current
    state first."""

    group = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        task_id = int(self.scope["url_route"]["kwargs"]["optimization_id"])
        state = await self._current_state(user, task_id)
        if state is None:
            await self.close()
            return
        self.group = group_name(task_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=render_progress(state))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Nothing to receive: the page only listens.
        return

    async def optimization_progress(self, event: dict[str, Any]) -> None:
        await self.send(text_data=render_progress(event["state"]))

    @database_sync_to_async
    def _current_state(self, user: Any, task_id: int) -> dict[str, Any] | None:
        try:
            task = optimization_get_for_user(user=user, optimization_id=task_id)
        except Http404:
            return None
        return progress_state(task)
