"""Live bot cards over a websocket: transport only (house style §3.13).

`/ws/bots/<bot_id>/` joins `bot.<id>` for the bot's owner; `/ws/bots/` joins the user's
own `user.<id>` group (every card of the bot list). A stranger's socket is closed before
it joins anything. Messages carry the card already rendered by apps/bots/push.py.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from apps.bots.push import bot_group, user_group
from apps.bots.selectors import bot_get_for_user


class BotCardConsumer(AsyncWebsocketConsumer):
    group = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        bot_id = self.scope["url_route"]["kwargs"].get("bot_id")
        if bot_id is None:
            self.group = user_group(user.pk)
        elif await self._may_watch(user, int(bot_id)):
            self.group = bot_group(int(bot_id))
        else:
            await self.close()
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Nothing to receive: the page only listens.
        return

    async def bot_card(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])

    @database_sync_to_async
    def _may_watch(self, user: Any, bot_id: int) -> bool:
        try:
            bot_get_for_user(user=user, bot_id=bot_id)
        except Http404:
            return False
        return True
