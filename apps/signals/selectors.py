"""Reads for signal bots, tenancy-checked: a stranger's id is a 404."""

from __future__ import annotations

from django.db.models import Count, Max, Min, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.backtests.models import BacktestTask
from apps.bots.models import Bot, BotRun
from apps.signals.models import WebhookEvent


def signal_bot_list_for_user(*, user: User) -> QuerySet[Bot]:
    return Bot.objects.filter(
        owner=user, kind=Bot.Kind.SIGNAL, archived_at__isnull=True
    ).select_related("account", "signal_source")


def signal_bot_get_for_user(*, user: User, bot_id: int) -> Bot:
    queryset = Bot.objects.select_related("account", "signal_source")
    return get_object_or_404(queryset, pk=bot_id, owner=user, kind=Bot.Kind.SIGNAL)


def webhook_events_for_bot(*, bot: Bot) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(bot=bot).select_related("order")


def signal_backtests_of_bot(*, bot: Bot) -> QuerySet[BacktestTask]:
    """The backtests of the bot's recorded alerts, newest first (the caller checked that
    the bot is the user's)."""
    return (
        BacktestTask.objects.filter(
            owner=bot.owner, pairs__strategy_version__strategy__signal_bot=bot
        )
        .distinct()
        .order_by("-created_at", "-id")
    )


def signal_replays_of_bot(*, bot: Bot) -> QuerySet[Bot]:
    """The paper bots replaying the bot's recorded alerts, newest first, with their latest
    run's figures at hand (the caller checked that the bot is the user's)."""
    return (
        Bot.objects.filter(owner=bot.owner, strategy_version__strategy__signal_bot=bot)
        .select_related("account", "strategy_version")
        .prefetch_related(Prefetch("runs", BotRun.objects.order_by("-created_at", "-id")))
        .order_by("-created_at", "-id")
    )


def accepted_alerts_by_symbol(*, bot: Bot) -> QuerySet[WebhookEvent, dict[str, object]]:
    """Per symbol: how many accepted alerts the bot holds and when the first and last
    arrived (what "Backtest these alerts" would replay)."""
    return (
        WebhookEvent.objects.filter(bot=bot, status=WebhookEvent.Status.ACCEPTED)
        .exclude(symbol="")
        .values("symbol")
        .annotate(count=Count("id"), first=Min("received_at"), last=Max("received_at"))
        .order_by("symbol")
    )
