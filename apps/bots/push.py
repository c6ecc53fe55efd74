"""Live bot cards: after each tick, fill or state change, the rendered card partial goes
to the groups `bot.<bot id>` (the bot's page) and `user.<owner id>` (the bot list).

Call `bot_push` through `transaction.on_commit` (or `bot_push_on_commit`), so a watcher
never sees a state that is rolled back. A failed push is logged and dropped: pages re-sync
over HTTP when their websocket reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

from apps.bots.models import AccountRisk, BotRun
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


def bots_push(run_ids: Sequence[int]) -> None:
    """`bot_push` for many runs (a batch of ticks): one query for the runs and one trip
    into the event loop for every send, instead of one per card."""
    runs = list(BotRun.objects.select_related("bot__account").filter(pk__in=list(run_ids)))
    risk = dict(
        AccountRisk.objects.filter(account_id__in={r.bot.account_id for r in runs}).values_list(
            "account_id", "state"
        )
    )
    sends = []
    for run in runs:
        bot = run.bot
        card = bot_card(bot=bot, run=run, account_risk=risk.get(bot.account_id) or {})
        message = {"type": MESSAGE_TYPE, "html": bot_card_render(card=card)}
        sends += [(bot_group(bot.pk), message), (user_group(bot.owner_id), message)]
    try:
        layer = get_channel_layer()
        if layer is None or not sends:
            return

        async def send_all() -> None:
            await asyncio.gather(*(layer.group_send(group, msg) for group, msg in sends))

        async_to_sync(send_all)()
    except Exception:  # any transport error: logged; the pages re-sync over HTTP
        logger.warning("bot card push failed for runs %s", list(run_ids), exc_info=True)


def bots_push_on_commit(run_ids: Sequence[int]) -> None:
    if run_ids:
        transaction.on_commit(partial(bots_push, list(run_ids)))
