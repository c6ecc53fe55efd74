"""The demo's signal bot: recorded alerts the demo's real candles cover, so a new user can
backtest or replay them at once."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.bots.models import Bot, BotRun
from apps.signals.demo import ALERTS, NAME
from apps.signals.models import WebhookEvent
from apps.signals.replay import SignalReplayInput, signal_replay_start
from tests.apps.bots.conftest import btc_hours  # noqa: F401


@pytest.mark.usefixtures("btc_hours")
def test_the_demo_signal_bot_is_made_once_with_alerts_a_replay_can_run(settings, client, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert f"the signal bot “{NAME}” with {len(ALERTS)} recorded alerts" in first
    assert "the signal bot" not in second

    bot = Bot.objects.get(name=NAME, kind=Bot.Kind.SIGNAL)
    assert bot.owner.email == settings.DEMO_USER_EMAIL and bot.account.is_paper
    events = WebhookEvent.objects.filter(bot=bot, status=WebhookEvent.Status.ACCEPTED)
    assert sorted(events.values_list("alert_time", flat=True)) == [a[0] for a in ALERTS]
    assert AuditEvent.objects.filter(event_type="signals.webhook.seeded").count() == len(ALERTS)

    client.force_login(bot.owner)
    page = client.get(reverse("signals:backtest", args=[bot.pk])).content.decode()
    assert page.count('class="recorded-symbol"') == 1
    replay = signal_replay_start(
        bot=bot, acting_user=bot.owner, data=SignalReplayInput(exchange="binance")
    )
    assert BotRun.objects.get(bot=replay).status == BotRun.Status.RUNNING


def test_without_the_demo_candles_there_is_no_demo_signal_bot(db, capsys):
    call_command("seed_demo")
    assert "the signal bot" not in capsys.readouterr().out
    assert not Bot.objects.filter(name=NAME).exists()
