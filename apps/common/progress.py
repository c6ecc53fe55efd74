"""Live progress of a long job (a backtest, an optimisation): one JSON-safe state dict,
pushed to the group `<kind>.<id>` after commit, and the websocket consumer that relays it.

The same dict renders the progress partial over HTTP (polling and re-sync) and over the
websocket (the consumer renders it from the message, without touching the database).
Each app declares one `ProgressChannel` and subclasses `ProgressConsumer`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse

logger = logging.getLogger(__name__)
# The one message type every progress group carries; `ProgressConsumer.job_progress` takes it.
MESSAGE_TYPE = "job.progress"


@dataclass(frozen=True)
class ProgressChannel:
    """Where one kind of job publishes and how its progress element looks.

    `kind` names the group (`backtest.<id>`); `template` extends
    `_partials/job_progress.html`; `urls` is the URL namespace with `progress`, `cancel` and
    `detail`; `prefix` starts the element's ids (`bt-progress`), `poll` is how often the
    page re-reads it over HTTP and `label` names the job on the progress bar."""

    kind: str
    template: str
    urls: str
    prefix: str
    poll: str
    label: str

    def group_name(self, job_id: int) -> str:
        return f"{self.kind}.{job_id}"

    def render(
        self, state: dict[str, Any], *, request: Any = None, results_shown: bool = False
    ) -> str:
        """The progress element; `results_shown`: the page already has the results."""
        context = {
            "results_shown": results_shown,
            "state": state,
            "prefix": self.prefix,
            "poll": self.poll,
            "label": self.label,
            "progress_url": reverse(f"{self.urls}:progress", args=[state["id"]]),
            "cancel_url": reverse(f"{self.urls}:cancel", args=[state["id"]]),
            "detail_url": reverse(f"{self.urls}:detail", args=[state["id"]]),
        }
        return render_to_string(self.template, context, request=request)

    def publish(self, state: dict[str, Any]) -> None:
        """Send the state to everyone watching; call it from `transaction.on_commit`.

        A push that fails (Redis briefly away) must not fail the job: pages poll over HTTP
        as well, so they catch up on the next poll.
        """
        safe = json.loads(json.dumps(state, cls=DjangoJSONEncoder))
        message = {"type": MESSAGE_TYPE, "state": safe}
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(self.group_name(state["id"]), message)
        except Exception:  # any transport error: logged, and polling covers it
            logger.warning("%s progress push failed for %s", self.kind, state["id"], exc_info=True)


class ProgressConsumer(AsyncWebsocketConsumer):
    """Joins the job's group for its owner and sends the rendered progress partial, whose
    `id` htmx's ws extension swaps. On (re)connect it sends the current state first.

    Subclasses set `channel` and `url_kwarg` (the route's id) and implement `state_for`."""

    channel: ProgressChannel
    url_kwarg: str
    group = ""

    def state_for(self, user: Any, job_id: int) -> dict[str, Any]:
        """The job's current state; raises Http404 unless `user` may watch it."""
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        job_id = int(self.scope["url_route"]["kwargs"][self.url_kwarg])
        state = await self._current_state(user, job_id)
        if state is None:
            await self.close()
            return
        self.group = self.channel.group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=self.channel.render(state))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Nothing to receive: the page only listens.
        return

    async def job_progress(self, event: dict[str, Any]) -> None:
        await self.send(text_data=self.channel.render(event["state"]))

    @database_sync_to_async
    def _current_state(self, user: Any, job_id: int) -> dict[str, Any] | None:
        try:
            return self.state_for(user, job_id)
        except Http404:
            return None
