"""The account's paper book, orders written and placed once, fills recorded once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.bots.execution import account_broker, fills_record, orders_place
from apps.bots.models import Bot, BotFill, BotLog, BotOrder, PaperBook
from apps.common.errors import ApplicationError
from apps.engine.clock import FixedClock
from apps.engine.types import Candle, OrderRequest
from apps.exchanges.services import exchange_account_create
from apps.strategies.services import strategy_create

T0 = datetime(2021, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def bot(alice):
    account = exchange_account_create(
        owner=alice,
        exchange="binance",
        label="Paper",
        mode="paper",
        initial_balances={"USDT": Decimal(1000)},
    )
    _strategy, version = strategy_create(
        owner=alice,
        name="SMA",
        kind="template",
        template="sma_cross",
        params={"fast": 10, "slow": 30},
    )
    return Bot.objects.create(
        owner=alice, name="b", strategy_version=version, account=account, symbols=["BTC/USDT"]
    )


def candle(t: datetime, price: str) -> Candle:
    p = Decimal(price)
    return Candle(t, p, p, p, p, Decimal(100))


def buy(client_id: str, quote: str) -> OrderRequest:
    return OrderRequest(client_id, "BTC/USDT", "buy", quote_qty=Decimal(quote))


def place(bot, *requests):
    with (
        transaction.atomic(),
        account_broker(account=bot.account, clock=FixedClock(T0), quote="USDT") as broker,
    ):
        return orders_place(bot=bot, run=None, broker=broker, requests=list(requests))


def feed(bot, at: datetime, price: str):
    with (
        transaction.atomic(),
        account_broker(account=bot.account, clock=FixedClock(at), quote="USDT") as broker,
    ):
        fills = broker.on_candle("BTC/USDT", candle(at, price))
        return fills_record(account=bot.account, broker=broker, fills=fills)


def test_an_order_fills_on_the_next_candle_and_the_balances_follow(bot):
    [order] = place(bot, buy("b1-1", "500"))
    assert order.status == "OPEN"
    [fill] = feed(bot, T0, "100")
    order.refresh_from_db()
    assert order.status == "FILLED"
    # 500 spent fee included at 0.1 %: qty = 500 / (100 x 1.001)
    assert fill.price == Decimal(100)
    assert fill.qty == (Decimal(500) / Decimal("100.1")).quantize(Decimal("1e-12"), "ROUND_DOWN")
    balances = dict(bot.account.paper_balances.values_list("asset", "amount"))
    assert balances["BTC"] == fill.qty
    assert balances["USDT"] == Decimal(1000) - fill.qty * 100 - fill.fee
    assert PaperBook.objects.get(account=bot.account).quote == "USDT"


def test_a_known_client_order_id_is_never_placed_twice(bot):
    place(bot, buy("b1-1", "500"))
    assert place(bot, buy("b1-1", "500")) == []
    feed(bot, T0, "100")
    assert feed(bot, T0, "100") == []  # the same candle again changes nothing
    assert BotOrder.objects.count() == 1
    assert BotFill.objects.count() == 1


def test_a_refused_order_is_rejected_logged_and_audited(bot):
    [order] = place(bot, buy("b1-1", "5000"))
    assert order.status == "REJECTED"
    assert "insufficient USDT" in order.message
    log = BotLog.objects.get(bot=bot)
    assert log.source == "broker" and "b1-1" in log.message
    event = AuditEvent.objects.get(event_type="bot.order.placed")
    assert event.data["status"] == "REJECTED"
    assert feed(bot, T0, "100") == []


def test_a_failed_transaction_leaves_neither_order_nor_book_change(bot):
    clock = FixedClock(T0)
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
        account_broker(account=bot.account, clock=clock, quote="USDT") as broker,
    ):
        orders_place(bot=bot, run=None, broker=broker, requests=[buy("b1-1", "500")])
        raise RuntimeError("tick crashed")
    assert BotOrder.objects.count() == 0
    assert feed(bot, T0, "100") == []


def test_live_accounts_are_refused_for_now(bot):
    bot.account.mode = "live"
    clock = FixedClock(T0)
    with (
        pytest.raises(ApplicationError) as excinfo,
        transaction.atomic(),
        account_broker(account=bot.account, clock=clock, quote="USDT"),
    ):
        pass
    assert excinfo.value.field == "account"
