"""Live bot cards: after each tick, fill or state change, the rendered card partial goes
to the groups `bot.<bot id>` (the bot's page) and `user.<owner id>` (the bot list).

Call `bot_push` through `transaction.on_commit` (or `bot_push_on_commit`), so a watcher
never sees a state that is rolled back. A failed push is logged and dropped: pages re-sync
over HTTP when their websocket reconnects.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

from apps.bots.models import BotRun
from apps.bots.selectors import bot_card

logger = logging.getLogger(__name__)
# The message type the consumers relay (BotCardConsumer.bot_card).
MESSAGE_TYPE = "bot.card"
CARD_TEMPLATE = "bots/_card.html"


def bot_group(bot_id: int) -> str:
    return f"bot.{bot_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def bot_card_render(*, card: dict[str, Any], request: Any = None) -> str:
    return render_to_string(CARD_TEMPLATE, {"card": card}, request=request).strip()


def bot_push(run_id: int) -> None:
    """Render the run's bot card and send it to the bot's and the owner's groups."""
    run = BotRun.objects.select_related("bot__account").filter(pk=run_id).first()
    if run is None:
        return
    bot = run.bot
    html = bot_card_render(card=bot_card(bot=bot, run=run))
    message = {"type": MESSAGE_TYPE, "html": html}
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in (bot_group(bot.pk), user_group(bot.owner_id)):
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # any transport error: logged; the page re-syncs over HTTP
        logger.warning("bot card push failed for run %s", run_id, exc_info=True)


def bot_push_on_commit(run_id: int) -> None:
    transaction.on_commit(partial(bot_push, run_id))
