"""Accepted alerts executed through engine risk and the account's paper broker."""

from decimal import Decimal

import pytest

from apps.bots.models import BotFill, BotLog, BotOrder, PaperBook
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import alert, make_signal_bot, post_alert, run_queued

pytestmark = pytest.mark.django_db


def send(client, token, capture, **fields):
    with capture(execute=True):
        return post_alert(client, token, alert(**fields))


def test_a_buy_alert_fills_at_the_alert_price_with_stage_times(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    bot, secrets = signal_bot
    send(client, secrets.token, django_capture_on_commit_callbacks, quote_amount="250")
    assert run_queued(queued) == ["sent"]
    event = WebhookEvent.objects.get()
    order = BotOrder.objects.get()
    assert event.order == order and order.bot == bot and order.status == "FILLED"
    assert order.client_order_id == f"sig{event.pk}-0" and order.side == "buy"
    assert order.average_price == Decimal(30000)
    fill = BotFill.objects.get()
    assert fill.qty * fill.price + fill.fee <= Decimal(250)
    assert event.received_at <= event.validated_at <= event.risk_at <= event.sent_at
    assert event.latency_ms is not None and event.latency_ms >= 0


def test_the_bot_default_size_applies_and_close_sells_everything(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = signal_bot  # default: 100 USDT
    send(client, secrets.token, django_capture_on_commit_callbacks, id="1")
    send(
        client,
        secrets.token,
        django_capture_on_commit_callbacks,
        id="2",
        action="close",
        price="31000",
    )
    assert run_queued(queued) == ["sent", "sent"]
    buy, sell = BotOrder.objects.order_by("created_at")
    assert buy.quote_qty == Decimal(100)
    assert sell.side == "sell" and sell.filled_qty == buy.filled_qty
    assert sell.average_price == Decimal(31000)


def test_a_redelivered_task_places_nothing_twice(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = signal_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    event_id = queued[0]
    assert run_queued([event_id, event_id]) == ["sent", "skipped"]
    assert BotOrder.objects.count() == 1
    assert len(PaperBook.objects.get().state["orders"]) == 1


def test_risk_refusal_is_recorded_and_logged(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = signal_bot  # conservative: one position at most 10 % of 10,000 USDT
    send(client, secrets.token, django_capture_on_commit_callbacks, quote_amount="5000")
    assert run_queued(queued) == ["refused"]
    event = WebhookEvent.objects.get()
    assert "max_position_size" in event.execution_reason
    assert not BotOrder.objects.exists()
    assert BotLog.objects.filter(source="risk", message__contains="max_position_size").exists()


def test_selling_without_a_position_is_refused(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = signal_bot
    send(client, secrets.token, django_capture_on_commit_callbacks, action="sell")
    assert run_queued(queued) == ["refused"]
    assert "no_position" in WebhookEvent.objects.get().execution_reason


def test_the_user_kill_switch_refuses_alerts(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    from apps.bots.models import KillSwitch

    bot, secrets = signal_bot
    KillSwitch.objects.create(user=bot.owner, engaged=True)
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["refused"]
    assert "kill switch" in WebhookEvent.objects.get().execution_reason


def test_five_bots_each_apply_their_own_whitelist_and_profile(
    client, alice, queued, django_capture_on_commit_callbacks
):
    specs = [
        ("btc conservative", ["BTC/USDT"], "conservative"),
        ("btc eth balanced", ["BTC/USDT", "ETH/USDT"], "balanced"),
        ("eth aggressive", ["ETH/USDT"], "aggressive"),
        ("sol balanced", ["SOL/USDT"], "balanced"),
        ("btc sol aggressive", ["BTC/USDT", "SOL/USDT"], "aggressive"),
    ]
    bots = [
        make_signal_bot(alice, name=name, symbols=symbols, risk_profile=profile)
        for name, symbols, profile in specs
    ]
    codes = {}
    for bot, secrets in bots:
        response = send(
            client,
            secrets.token,
            django_capture_on_commit_callbacks,
            ticker="BINANCE:ETHUSDT",
            price="2000",
        )
        codes[bot.name] = response.status_code
    assert codes == {
        "btc conservative": 400,
        "btc eth balanced": 200,
        "eth aggressive": 200,
        "sol balanced": 400,
        "btc sol aggressive": 400,
    }
    rejected = WebhookEvent.objects.filter(status="rejected")
    assert {e.bot.name for e in rejected} == {
        "btc conservative",
        "sol balanced",
        "btc sol aggressive",
    }
    assert all(e.field == "ticker" and "whitelist" in e.reason for e in rejected)
    assert run_queued(queued) == ["sent", "sent"]
    assert set(BotOrder.objects.values_list("bot__name", flat=True)) == {
        "btc eth balanced",
        "eth aggressive",
    }


def test_engine_risk_also_guards_the_whitelist(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    bot, secrets = signal_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    bot.symbols = ["ETH/USDT"]  # changed after the alert was accepted
    bot.save()
    assert run_queued(queued) == ["refused"]
    assert "instrument_whitelist" in WebhookEvent.objects.get().execution_reason


def test_an_unexpected_error_fails_the_alert_instead_of_leaving_it_pending(
    client, signal_bot, queued, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.signals import execute

    def broken_fill(**_kwargs):
        raise RuntimeError("paper book corrupt")

    _bot, secrets = signal_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    monkeypatch.setattr(execute, "paper_fill_now", broken_fill)
    event_id = queued[0]
    assert run_queued([event_id, event_id]) == ["failed", "skipped"]
    event = WebhookEvent.objects.get()
    assert event.execution == "failed" and "paper book corrupt" in event.execution_reason
    assert not BotOrder.objects.exists()  # the attempt that placed it rolled back
    assert BotLog.objects.filter(message__contains="paper book corrupt").exists()
