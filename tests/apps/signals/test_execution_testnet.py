"""Alerts for signal bots on a testnet account: orders on the (fake) exchange, exactly once.

The intent is committed before the one send (ORD-1); a worker lost between the two never
sends again; fills are stored by trade id; keys stay out of every record.
"""

import logging
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.bots.exchange_orders import exchange_orders_reconcile
from apps.bots.models import AccountRisk, Bot, BotFill, BotLog, BotOrder
from apps.common.errors import InputInvalid
from apps.exchanges.services import exchange_account_create
from apps.signals import execute
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import (
    TESTNET_KEY,
    TESTNET_SECRET,
    alert,
    make_signal_bot,
    make_testnet_signal_bot,
    post_alert,
    run_queued,
)

# Transactional: the intent must really commit before the send (ORD-1).
pytestmark = pytest.mark.django_db(transaction=True)


class WorkerLost(BaseException):
    """Stands in for a SIGKILL: nothing after it runs, and no handler catches it."""


@pytest.fixture
def testnet_bot(alice, testnet_account):
    return make_testnet_signal_bot(alice, testnet_account, size_mode="quote", size_value=100)


def send(client, token, capture, **fields):
    with capture(execute=True):
        return post_alert(client, token, alert(**fields))


def lose_worker_in(monkeypatch, step: str, event_id: int) -> None:
    """Run the execution once, with the worker lost when it reaches `step`."""

    def lost(**_kwargs):
        raise WorkerLost

    with monkeypatch.context() as patch:
        patch.setattr(execute, step, lost)
        with pytest.raises(WorkerLost):
            run_queued([event_id])


def fake_orders(fake, cid):
    return fake.orders_for(cid)


def test_a_buy_alert_places_one_market_order_on_the_exchange_and_records_its_fills(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks
):
    bot, secrets = testnet_bot
    send(client, secrets.token, django_capture_on_commit_callbacks, quote_amount="250")
    assert run_queued(queued) == ["sent"]
    event = WebhookEvent.objects.get()
    order = BotOrder.objects.get()
    assert event.order == order and order.client_order_id == f"sig{event.pk}-0"
    assert order.account == bot.account and order.status == "FILLED"
    (on_exchange,) = fake_orders(fake_exchange, order.client_order_id)
    assert on_exchange.status == "FILLED" and on_exchange.quote_qty == Decimal(250)
    assert len(fake_exchange.create_requests(order.client_order_id)) == 1
    assert order.filled_qty == on_exchange.filled_qty > 0
    assert order.average_price == Decimal(30000)
    trades = [t for t in fake_exchange.book.trades if t.client_id == order.client_order_id]
    fills = BotFill.objects.filter(order=order)
    assert {f.fill_id for f in fills} == {str(t.trade_id) for t in trades}
    assert sum(f.qty for f in fills) == order.filled_qty
    assert event.received_at <= event.risk_at <= event.sent_at and event.latency_ms >= 0
    audited = list(
        AuditEvent.objects.filter(target_type="bots.botorder", target_id=str(order.pk))
        .order_by("seq")
        .values_list("event_type", "data__status")
    )
    assert audited == [("bot.order.intended", "PENDING_SUBMIT"), ("bot.order.placed", "FILLED")]


def test_the_account_stage_is_observed_and_saved(
    client, testnet_bot, queued, django_capture_on_commit_callbacks
):
    bot, secrets = testnet_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["sent"]
    state = AccountRisk.objects.get(account=bot.account).state
    assert state["stage"] and Decimal(state["peak_equity"]) > 0


def test_a_lost_reply_is_looked_up_not_sent_again(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks, settings
):
    _bot, secrets = testnet_bot
    settings.EXCHANGE_TIMEOUT_MS = 500
    fake_exchange.fault("drop")  # accepted, then the connection closes with no answer
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["sent"]
    order = BotOrder.objects.get()
    assert order.status == "FILLED"
    assert len(fake_exchange.create_requests(order.client_order_id)) == 1


def test_a_worker_lost_after_the_intent_commit_never_sends_it(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks, monkeypatch,
    settings,
):  # fmt: skip
    _bot, secrets = testnet_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    event_id = queued[0]
    lose_worker_in(monkeypatch, "exchange_order_send", event_id)
    order = BotOrder.objects.get()
    assert order.status == "PENDING_SUBMIT"  # committed before the send

    assert run_queued([event_id]) == ["sent"]  # the redelivery looks, and finds nothing
    assert fake_exchange.create_requests() == []
    event = WebhookEvent.objects.get()
    assert "not confirmed" in event.execution_reason
    assert BotOrder.objects.get().status == "PENDING_SUBMIT"

    settings.EXCHANGE_ORDER_GRACE_SECONDS = 0
    assert exchange_orders_reconcile(older_than=_no_wait()) == 1
    order = BotOrder.objects.get()
    assert order.status == "REJECTED" and "grace window" in order.message
    assert fake_exchange.create_requests() == []


def test_a_worker_lost_after_the_send_adopts_the_order_on_redelivery(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks, monkeypatch
):
    _bot, secrets = testnet_bot
    send(client, secrets.token, django_capture_on_commit_callbacks)
    event_id = queued[0]
    lose_worker_in(monkeypatch, "exchange_order_record", event_id)
    assert BotOrder.objects.get().status == "PENDING_SUBMIT"
    assert run_queued([event_id, event_id]) == ["sent", "skipped"]
    order = BotOrder.objects.get()
    assert order.status == "FILLED" and BotFill.objects.filter(order=order).exists()
    assert len(fake_exchange.create_requests(order.client_order_id)) == 1


def test_the_reconcile_adopts_an_unknown_order_the_exchange_holds(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks, settings
):
    _bot, secrets = testnet_bot
    settings.EXCHANGE_TIMEOUT_MS = 500
    settings.EXCHANGE_ORDER_LOOKUP_SECONDS = 0
    fake_exchange.hide_new_orders_s = 3600  # the create's reply is lost and the order hidden
    fake_exchange.fault("drop")
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["sent"]
    order = BotOrder.objects.get()
    assert order.status == "UNKNOWN"
    assert not BotFill.objects.exists()

    fake_exchange.hide_new_orders_s = 0
    assert exchange_orders_reconcile(older_than=_no_wait()) == 1
    order.refresh_from_db()
    assert order.status == "FILLED" and BotFill.objects.filter(order=order).count() == 1
    assert len(fake_exchange.create_requests(order.client_order_id)) == 1


def test_a_symbol_the_exchange_does_not_list_is_rejected_without_a_send(
    client, alice, testnet_account, fake_exchange, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = make_testnet_signal_bot(
        alice, testnet_account, symbols=("SOL/USDT",), size_mode="quote", size_value=100
    )
    send(client, secrets.token, django_capture_on_commit_callbacks, ticker="BINANCE:SOLUSDT")
    assert run_queued(queued) == ["failed"]
    order = BotOrder.objects.get()
    assert order.status == "REJECTED" and "does not list SOL/USDT" in order.message
    assert "does not list" in WebhookEvent.objects.get().execution_reason
    assert fake_exchange.create_requests() == []


def test_a_live_account_is_refused_until_live_trading_is_enabled(
    client, alice, fake_exchange, queued, django_capture_on_commit_callbacks
):
    account = exchange_account_create(
        owner=alice, exchange="binance", label="Binance live", mode="live",
        api_key="live-key-0000aaaa", api_secret="live-secret-0000bbbb",
    )  # fmt: skip
    fake_exchange.price_set("BTCUSDT", "30000")
    with pytest.raises(InputInvalid) as refused:
        make_testnet_signal_bot(alice, account, size_mode="quote", size_value=100)
    assert refused.value.field == "account" and "live trading" in refused.value.message
    # A bot moved onto a live account behind the services' back still never trades.
    bot, secrets = make_signal_bot(alice, name="Moved", size_mode="quote", size_value=100)
    Bot.objects.filter(pk=bot.pk).update(account=account)
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["failed"]
    assert "live trading is not enabled" in WebhookEvent.objects.get().execution_reason
    assert not BotOrder.objects.exists() and fake_exchange.create_requests() == []


def test_keys_never_reach_logs_audit_or_events(
    client, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks, caplog
):
    _bot, secrets = testnet_bot
    logging.getLogger("ccxt").setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    send(client, secrets.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["sent"]
    fake_exchange.fail_auth = True  # the next alert's calls are refused: errors are recorded
    send(client, secrets.token, django_capture_on_commit_callbacks, id="2", price="30001")
    assert run_queued(queued) == ["failed"]
    records = [
        caplog.text,
        *map(str, AuditEvent.objects.values_list("data", flat=True)),
        *WebhookEvent.objects.values_list("execution_reason", flat=True),
        *BotLog.objects.values_list("message", flat=True),
        *BotOrder.objects.values_list("message", flat=True),
    ]
    for secret in (TESTNET_KEY, TESTNET_SECRET):
        assert not any(secret in text for text in records)
    # Our own words with ccxt's class name, never ccxt's message (URLs, signed queries).
    reason = WebhookEvent.objects.get(execution="failed").execution_reason
    assert reason.startswith("The exchange") and "http" not in reason


def _no_wait():
    from datetime import timedelta

    return timedelta(0)


def test_a_worker_warms_the_brokers_of_running_signal_bots_and_loads_markets_once(
    client, alice, testnet_bot, fake_exchange, queued, django_capture_on_commit_callbacks
):
    from apps.bots.exchange_orders import exchange_brokers_forget

    other = exchange_account_create(
        owner=alice,
        exchange="binance",
        label="second testnet",
        mode="testnet",
        api_key="second-key-0123456789",
        api_secret="second-secret-0123456789",
    )
    _second_bot, second = make_testnet_signal_bot(alice, other, name="second", size_value=50)
    exchange_brokers_forget()  # a new worker process: nothing built yet
    fake_exchange.requests.clear()

    assert execute.signal_brokers_warm() == 2
    assert fake_exchange.paths().count("/api/v3/exchangeInfo") == 1

    _bot, first = testnet_bot
    send(client, first.token, django_capture_on_commit_callbacks)
    send(client, second.token, django_capture_on_commit_callbacks)
    assert run_queued(queued) == ["sent", "sent"]
    # The alerts found their brokers built: no more market loads, one create each.
    assert fake_exchange.paths().count("/api/v3/exchangeInfo") == 1
    assert len(fake_exchange.create_requests()) == 2
