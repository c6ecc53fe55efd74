"""Live bot cards: after each tick, fill or state change, the rendered card partial goes
to the groups `bot.<bot id>` (the bot's page) and `user.<owner id>` (the bot list).

Call `bot_push` through `transaction.on_commit` (or `bot_push_on_commit`), so a watcher
never sees a state that is rolled back. A failed push is logged and dropped: pages re-sync
over HTTP when their websocket reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CardRef:
    """Whose card a batch pushes: the run, and the ids its groups are named after."""

    run_id: int
    bot_id: int
    owner_id: int


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


def bots_push(cards: Sequence[CardRef]) -> None:
    """`bot_push` for many runs (a batch of ticks), rendered only for the cards someone
    watches: one Redis round trip asks which of the batch's groups have members, and only
    their runs are read, rendered and sent (one trip into the event loop for every send).
    With 1,000 bots ticking on one candle and nobody looking, a card costs no query and
    no template."""
    layer = get_channel_layer()
    if layer is None or not cards:
        return
    try:
        groups = {card: (bot_group(card.bot_id), user_group(card.owner_id)) for card in cards}
        watched = async_to_sync(_watched)(layer, {g for pair in groups.values() for g in pair})
        wanted = {card.run_id: [g for g in pair if g in watched] for card, pair in groups.items()}
        sends = _rendered({run_id: gs for run_id, gs in wanted.items() if gs})
        if not sends:
            return

        async def send_all() -> None:
            await asyncio.gather(*(layer.group_send(group, msg) for group, msg in sends))

        async_to_sync(send_all)()
    except Exception:  # any transport error: logged; the pages re-sync over HTTP
        logger.warning("bot card push failed for runs %s", [c.run_id for c in cards], exc_info=True)


def _rendered(groups: Mapping[int, list[str]]) -> list[tuple[str, dict[str, str]]]:
    """Each run's card rendered once, addressed to its watched `groups` (by run id)."""
    if not groups:
        return []
    runs = list(BotRun.objects.select_related("bot__account").filter(pk__in=list(groups)))
    risk = dict(
        AccountRisk.objects.filter(account_id__in={r.bot.account_id for r in runs}).values_list(
            "account_id", "state"
        )
    )
    sends = []
    for run in runs:
        card = bot_card(bot=run.bot, run=run, account_risk=risk.get(run.bot.account_id) or {})
        message = {"type": MESSAGE_TYPE, "html": bot_card_render(card=card)}
        sends += [(group, message) for group in groups[run.pk]]
    return sends


async def _watched(layer: Any, groups: set[str]) -> set[str]:
    """The `groups` with at least one live member. Asked of channels_redis's own group sets
    (a member counts until its `group_expiry`, as its group_send counts it); another layer
    (one that does not keep them there) is taken as watching every group."""
    needed = ("_group_key", "consistent_hash", "connection", "group_expiry")
    if not all(hasattr(layer, name) for name in needed):
        return set(groups)
    since = int(time.time()) - int(layer.group_expiry)
    by_host: dict[int, list[str]] = {}
    for group in sorted(groups):
        by_host.setdefault(layer.consistent_hash(group), []).append(group)
    watched = set()
    for index, names in by_host.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for name in names:
            pipe.zcount(layer._group_key(name), since, "+inf")
        counts = await pipe.execute()
        watched.update(name for name, count in zip(names, counts, strict=True) if count)
    return watched


def bots_push_on_commit(cards: Sequence[CardRef]) -> None:
    if cards:
        transaction.on_commit(partial(bots_push, list(cards)))
