"""A signal bot shares the bots' lifecycle: stop (closing at the last price), restart, and
never a scheduled candle tick."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.bots.models import BotOrder, BotRun
from apps.bots.schedule import bots_schedule
from apps.bots.services.lifecycle import bot_run_start, bot_run_stop
from tests.apps.signals.conftest import alert, post_alert, run_queued

pytestmark = pytest.mark.django_db


def test_stop_with_close_positions_sells_at_the_last_price_and_the_bot_can_start_again(
    client, alice, signal_bot, queued, django_capture_on_commit_callbacks
):
    bot, secrets = signal_bot
    with django_capture_on_commit_callbacks(execute=True):
        post_alert(client, secrets.token, alert(price="30000"))
    assert run_queued(queued) == ["sent"]
    run = BotRun.objects.get(bot=bot)

    bot_run_stop(run=run, acting_user=alice, close_positions=True)

    run.refresh_from_db()
    assert run.status == "STOPPED" and run.next_due_at is None
    buy, sell = BotOrder.objects.order_by("created_at")
    assert sell.side == "sell" and sell.status == "FILLED"
    assert sell.filled_qty == buy.filled_qty and sell.average_price == Decimal(30000)
    assert bot.account.paper_balances.get(asset="BTC").amount == 0

    again = bot_run_start(bot=bot, acting_user=alice)
    assert again.status == "RUNNING" and again.next_due_at is None


def test_the_scheduler_never_ticks_a_signal_bot(alice, signal_bot):
    bot, _secrets = signal_bot
    BotRun.objects.filter(bot=bot).update(next_due_at=timezone.now() - timedelta(hours=1))
    sent: list[tuple[int, str]] = []
    assert bots_schedule(enqueue=lambda run_id, iso: sent.append((run_id, iso))) == 0
    assert sent == []
