"""ORD-1..4 and ORD-6 (reliability.md §0): one intent is one order on the exchange.

The real ccxt client talks to the loopback fake, which accepts orders and then drops the
reply, hides new orders from look-ups, fails with 5xx, and fills an order while its cancel
is in flight. The broker's back-off moves the fake's clock, so no test waits for real
except the one true client timeout.

ORD-1 runs 100 intents per venue in CI; TRADELOOP_ORD1_INTENTS=1000 runs the full size.
ORD-4 runs 50 scenarios per venue; TRADELOOP_ORD4_SCENARIOS=500 runs the full size.
"""

import os
from collections import Counter
from decimal import Decimal

import pytest

from apps.engine.types import OrderStatus
from tests.apps.exchanges.broker_helpers import (
    VENUES,
    limit_buy,
    make_broker,
    market_buy,
    new_id,
)

ORD1_INTENTS = int(os.environ.get("TRADELOOP_ORD1_INTENTS", "100"))
ORD4_SCENARIOS = int(os.environ.get("TRADELOOP_ORD4_SCENARIOS", "50"))
SETTLED = (OrderStatus.OPEN, OrderStatus.FILLED)


@pytest.fixture(params=VENUES)
def venue(request):
    return request.param


@pytest.fixture
def priced(fake_exchange):
    fake_exchange.price_set("BTCUSDT", "30000")
    fake_exchange.balances = {"USDT": Decimal("100000000"), "BTC": Decimal("0")}
    return fake_exchange


def _creates_per_id(fake) -> Counter:
    return Counter(order.client_id for order in fake.book.orders)


def test_ord1_each_intent_retried_three_times_through_timeouts_is_one_order(priced, venue):
    fake = priced
    first = make_broker(fake, venue)
    intents = [market_buy("0.001", new_id("ord1")) for _ in range(ORD1_INTENTS)]

    for number, intent in enumerate(intents):
        fake.fault("drop" if number % 2 else "5xx_after_accept")  # every create is ambiguous
        first.place_order(intent)
        # Three retries: the same worker, then two new processes that know the id from the DB.
        first.place_order(intent)
        for _ in range(2):
            retry = make_broker(fake, venue)
            retry.remember(intent.client_order_id, intent.symbol)
            assert retry.place_order(intent).status is OrderStatus.FILLED

    per_id = _creates_per_id(fake)
    assert len(fake.book.orders) == ORD1_INTENTS
    assert set(per_id.values()) == {1}
    assert len(fake.create_requests()) == ORD1_INTENTS


@pytest.mark.parametrize("fault", ["drop", "5xx_after_accept"])
def test_ord2_an_accepted_order_whose_reply_is_lost_is_found_by_client_id(priced, venue, fault):
    fake = priced
    broker = make_broker(fake, venue)
    requests = [limit_buy("0.01", "29000") if n % 2 else market_buy("0.01") for n in range(20)]

    fake.fault(fault, times=len(requests))
    orders = [broker.place_order(request) for request in requests]

    assert [o.status for o in orders] == [
        OrderStatus.OPEN if r.type == "limit" else OrderStatus.FILLED for r in requests
    ]
    assert [o.client_order_id for o in orders] == [r.client_order_id for r in requests]
    assert len(fake.create_requests()) == len(requests)  # 0 re-sends
    assert set(_creates_per_id(fake).values()) == {1}


def test_ord2_a_true_client_timeout_is_resolved_without_a_resend(priced, venue):
    fake = priced
    broker = make_broker(fake, venue, timeout_ms=300)
    fake.drop_delay_s = 0.6  # the reply never comes within ccxt's timeout
    fake.fault("drop")
    request = market_buy("0.01")

    order = broker.place_order(request)

    assert order.status is OrderStatus.FILLED
    assert len(fake.create_requests(request.client_order_id)) == 1


def test_ord3_an_order_hidden_for_30s_after_a_lost_reply_is_found_not_resent(priced, venue):
    fake = priced
    fake.hide_new_orders_s = 30
    broker = make_broker(fake, venue, window_s=120)
    requests = [market_buy("0.01") for _ in range(5)]
    fake.fault("drop", times=len(requests))
    start = fake.clock_offset_s

    orders = [broker.place_order(request) for request in requests]

    assert {o.status for o in orders} == {OrderStatus.FILLED}
    assert fake.clock_offset_s - start >= 30  # it kept looking through the lag
    assert len(fake.book.orders) == len(requests)
    assert len(fake.create_requests()) == len(requests)


def test_ord3_an_order_never_seen_ends_unknown_not_rejected_and_is_not_resent(priced, venue):
    fake = priced
    broker = make_broker(fake, venue, window_s=60)
    request = market_buy("0.01")
    fake.fault("5xx")  # refused before the book saw it; the broker cannot know that

    order = broker.place_order(request)

    assert order.status is OrderStatus.UNKNOWN
    assert order.message  # why, for the bot log
    assert fake.book.orders == []
    # Asked again, it looks again; it never sends the id a second time.
    assert broker.place_order(request).status is OrderStatus.UNKNOWN
    assert len(fake.create_requests(request.client_order_id)) == 1


def test_ord4_the_binance_fake_would_accept_a_reused_id_after_a_fill(priced):
    # The fake is faithful: only the broker stands between a retry and a second order.
    fake = priced
    broker = make_broker(fake, "binance")
    request = market_buy("0.01")
    broker.place_order(request)
    client = broker._client  # the raw ccxt client, bypassing the broker on purpose

    client.create_order(
        "BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": request.client_order_id}
    )

    assert len(fake.orders_for(request.client_order_id)) == 2


def test_ord4_a_known_client_id_is_never_sent_twice(priced, venue):
    fake = priced
    broker = make_broker(fake, venue)

    for number in range(ORD4_SCENARIOS):
        request = market_buy("0.001", new_id("ord4"))
        assert broker.place_order(request).status is OrderStatus.FILLED
        if number % 2:
            fake.fault("drop", "lookup")  # the retry's look-up fails too
        again = broker.place_order(request)
        restarted = make_broker(fake, venue)
        restarted.remember(request.client_order_id, request.symbol)
        after_restart = restarted.place_order(request)
        assert again.status is after_restart.status is OrderStatus.FILLED

    assert set(_creates_per_id(fake).values()) == {1}
    assert len(fake.create_requests()) == ORD4_SCENARIOS


def test_ord6_a_fill_that_wins_the_cancel_race_is_kept(priced, venue):
    fake = priced
    broker = make_broker(fake, venue)
    request = limit_buy("0.01", "29000")
    broker.place_order(request)
    fake.fill_on_cancel = True

    order = broker.cancel_order(request.client_order_id)

    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == Decimal("0.01")
    assert [f.qty for f in broker.fills(request.client_order_id)] == [Decimal("0.01")]
    assert len(fake.book.orders) == 1  # nothing placed to replace it


def test_ord6_a_partial_fill_before_the_cancel_is_reported_with_its_quantity(priced, venue):
    fake = priced
    broker = make_broker(fake, venue)
    request = limit_buy("0.01", "29000")
    broker.place_order(request)
    (resting,) = fake.orders_for(request.client_order_id)
    with fake.lock:
        fake.book.fill(resting, Decimal("0.004"), Decimal("29000"), fake.now_ms())

    order = broker.cancel_order(request.client_order_id)

    assert order.status is OrderStatus.CANCELED
    assert order.filled_qty == Decimal("0.004")
    fills = broker.fills(request.client_order_id)
    assert [f.qty for f in fills] == [Decimal("0.004")]
    assert len({f.fill_id for f in fills}) == len(fills)


def test_ord6_a_cancel_whose_reply_is_lost_still_reports_the_final_state(priced, venue):
    fake = priced
    broker = make_broker(fake, venue)
    request = limit_buy("0.01", "29000")
    broker.place_order(request)
    fake.fault("drop", "cancel")

    order = broker.cancel_order(request.client_order_id)

    assert order.status is OrderStatus.CANCELED
