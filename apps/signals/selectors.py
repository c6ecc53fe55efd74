"""Reads for signal bots, tenancy-checked: a stranger's id is a 404."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.bots.models import Bot
from apps.signals.models import SignalBacktestRun, WebhookEvent


def signal_bot_list_for_user(*, user: User) -> QuerySet[Bot]:
    return Bot.objects.filter(
        owner=user, kind=Bot.Kind.SIGNAL, archived_at__isnull=True
    ).select_related("account", "signal_source")


def signal_bot_get_for_user(*, user: User, bot_id: int) -> Bot:
    queryset = Bot.objects.select_related("account", "signal_source")
    return get_object_or_404(queryset, pk=bot_id, owner=user, kind=Bot.Kind.SIGNAL)


def webhook_events_for_bot(*, bot: Bot) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(bot=bot).select_related("order")


def signal_backtest_latest(*, bot: Bot) -> SignalBacktestRun | None:
    return SignalBacktestRun.objects.filter(bot=bot).first()
