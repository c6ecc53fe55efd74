"""CcxtBroker against the real ccxt client and the loopback Binance/Bybit fake.

Orders, cancels, fills, balances and refusals as a bot sees them through the Broker
protocol. The exactly-once targets (ORD-1..4, ORD-6) are in test_ccxt_broker_exactly_once.py.
"""

import logging
from decimal import Decimal

import ccxt
import pytest

from apps.engine.brokers.base import BrokerRejection
from apps.engine.brokers.ccxt_orders import LookupPolicy
from apps.engine.types import Fill, OrderRequest, OrderStatus, TradingValueError
from tests.apps.exchanges.broker_helpers import (
    API_KEY,
    API_SECRET,
    VENUES,
    limit_buy,
    make_broker,
    market_buy,
    new_id,
    sent_params,
)

CLIENT_ID_PARAM = {"binance": "newClientOrderId", "bybit": "orderLinkId"}


@pytest.fixture(params=VENUES)
def venue(request):
    return request.param


@pytest.fixture
def broker(fake_exchange, venue):
    fake_exchange.price_set("BTCUSDT", "30000")
    return make_broker(fake_exchange, venue)


def test_a_market_order_fills_at_the_price_and_carries_the_client_id(broker, fake_exchange, venue):
    request = market_buy("0.01")

    order = broker.place_order(request)

    assert order.status is OrderStatus.FILLED
    assert (order.client_order_id, order.qty, order.filled_qty) == (
        request.client_order_id, Decimal("0.01"), Decimal("0.01"),
    )  # fmt: skip
    assert order.filled_quote == Decimal("300")
    assert all(type(v) is Decimal for v in (order.qty, order.filled_qty, order.filled_quote))
    assert sent_params(fake_exchange, request.client_order_id)[CLIENT_ID_PARAM[venue]] == (
        request.client_order_id
    )


def test_a_limit_order_rests_then_fills_when_the_price_reaches_it(broker, fake_exchange):
    request = limit_buy("0.01", "29000")

    placed = broker.place_order(request)
    resting = broker.open_orders("BTC/USDT")
    fake_exchange.price_set("BTCUSDT", "28950")

    assert placed.status is OrderStatus.OPEN
    assert placed.limit_price == Decimal("29000")
    assert [o.client_order_id for o in resting] == [request.client_order_id]
    filled = broker.get_order(request.client_order_id)
    assert filled.status is OrderStatus.FILLED
    assert filled.average_price == Decimal("29000")
    assert broker.open_orders() == ()
    (fill,) = broker.fills(request.client_order_id)
    assert isinstance(fill, Fill)
    assert (fill.qty, fill.price, fill.liquidity) == (Decimal("0.01"), Decimal("29000"), "maker")
    # Binance's default: a buy pays its fee in the asset it receives.
    assert (fill.fee, fill.fee_asset) == (Decimal("0.00001"), "BTC")


def test_amounts_are_truncated_and_prices_rounded_to_the_market_grid(broker, fake_exchange, venue):
    # BTCUSDT: step 0.00001, tick 0.01.
    request = limit_buy("0.0123456", "29000.123")

    order = broker.place_order(request)

    sent = sent_params(fake_exchange, request.client_order_id)
    quantity = sent["quantity"] if venue == "binance" else sent["qty"]
    assert (Decimal(quantity), Decimal(sent["price"])) == (Decimal("0.01234"), Decimal("29000.12"))
    assert order.qty == Decimal("0.01234")
    assert fake_exchange.orders_for(request.client_order_id)[0].qty == Decimal("0.01234")


def test_a_market_buy_for_a_quote_amount_spends_at_most_that(broker, fake_exchange):
    request = OrderRequest(new_id(), "BTC/USDT", "buy", "market", quote_qty=Decimal("100"))

    order = broker.place_order(request)

    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == Decimal("0.00333")
    assert order.filled_quote <= Decimal("100")


def test_cancel_returns_the_canceled_order_and_frees_the_funds(broker, fake_exchange):
    request = limit_buy("0.01", "29000")
    broker.place_order(request)
    assert broker.balances()["USDT"].locked == Decimal("290")

    canceled = broker.cancel_order(request.client_order_id)

    assert canceled.status is OrderStatus.CANCELED
    assert canceled.filled_qty == 0
    assert broker.open_orders("BTC/USDT") == ()
    assert broker.balances()["USDT"].locked == 0
    # A second cancel finds the order final and says so, unchanged.
    assert broker.cancel_order(request.client_order_id).status is OrderStatus.CANCELED


def test_balances_follow_the_fills(broker, fake_exchange):
    broker.place_order(market_buy("0.01"))
    broker.place_order(limit_buy("0.01", "29000"))

    balances = broker.balances()

    # 0.01 BTC bought at 30000 with a 0.1% fee in BTC; 290 USDT locked by the resting buy.
    assert balances["BTC"].total == Decimal("0.50999")
    assert balances["USDT"].total == Decimal("9700")
    assert (balances["USDT"].locked, balances["USDT"].free) == (Decimal("290"), Decimal("9410"))
    assert all(type(b.total) is Decimal and type(b.locked) is Decimal for b in balances.values())


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (market_buy("5"), "qty"),  # 150,000 USDT: insufficient funds
        (limit_buy("0.0001", "29000"), "qty"),  # 2.9 USDT: below the minimum notional
    ],
    ids=["insufficient-funds", "min-notional"],
)
def test_an_order_the_exchange_refuses_is_a_rejection_naming_the_field(
    broker, fake_exchange, request_, field
):
    with pytest.raises(BrokerRejection) as raised:
        broker.place_order(request_)

    assert raised.value.field == field
    assert raised.value.__cause__ is None
    message = str(raised.value)
    assert "http" not in message and API_KEY not in message and API_SECRET not in message
    assert fake_exchange.orders_for(request_.client_order_id) == []
    # The refused id stays refused: asking again sends nothing and says REJECTED.
    again = broker.place_order(request_)
    assert again.status is OrderStatus.REJECTED
    assert broker.cancel_order(request_.client_order_id).status is OrderStatus.REJECTED
    assert len(fake_exchange.create_requests(request_.client_order_id)) == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (OrderRequest("t-sym", "DOGE/USDT", "buy", "market", qty=Decimal("1")), "symbol"),
        (market_buy("0.000001"), "qty"),  # under one step of 0.00001
        (
            OrderRequest(
                "t-stop", "BTC/USDT", "sell", "stop_market", qty=Decimal("1"),
                stop_price=Decimal("1"),
            ),
            "type",
        ),
    ],
    ids=["unknown-symbol", "rounds-to-zero", "stop-order"],
)  # fmt: skip
def test_a_request_the_market_cannot_take_is_refused_before_sending(
    broker, fake_exchange, request_, field
):
    with pytest.raises(BrokerRejection) as raised:
        broker.place_order(request_)

    assert raised.value.field == field
    assert fake_exchange.create_requests() == []


def test_an_id_the_broker_never_saw_has_no_order(broker):
    assert broker.get_order("never-sent") is None
    with pytest.raises(BrokerRejection) as raised:
        broker.cancel_order("never-sent")
    assert raised.value.field == "client_order_id"


def test_rate_limits_on_look_ups_are_waited_out(broker, fake_exchange, venue):
    request = limit_buy()
    broker.place_order(request)
    fake_exchange.retry_after_s = 7
    fake_exchange.fault("429", "lookup", times=2)
    before = fake_exchange.clock_offset_s

    order = broker.get_order(request.client_order_id)

    assert order.status is OrderStatus.OPEN
    # Binance sends Retry-After, and the broker waited at least that long each time.
    if venue == "binance":
        assert fake_exchange.clock_offset_s - before >= 14


def test_the_classifier_relies_on_cctxs_exception_tree():
    # CCXT-1: pinned ccxt facts the create/lookup classification depends on.
    assert issubclass(ccxt.RateLimitExceeded, ccxt.OperationFailed)
    assert issubclass(ccxt.DDoSProtection, ccxt.OperationFailed)
    assert issubclass(ccxt.RequestTimeout, ccxt.NetworkError)
    assert issubclass(ccxt.NetworkError, ccxt.OperationFailed)
    assert issubclass(ccxt.OrderNotFound, ccxt.InvalidOrder)
    assert issubclass(ccxt.DuplicateOrderId, ccxt.InvalidOrder)
    assert not issubclass(ccxt.InsufficientFunds, ccxt.OperationFailed)
    assert not issubclass(ccxt.BadRequest, ccxt.OperationFailed)


def test_a_restarted_broker_finds_open_orders_and_can_cancel_them(broker, fake_exchange, venue):
    request = limit_buy("0.01", "29000")
    broker.place_order(request)
    restarted = make_broker(fake_exchange, venue)

    (seen,) = restarted.open_orders()
    canceled = restarted.cancel_order(request.client_order_id)

    assert (seen.client_order_id, seen.side, seen.qty) == (
        request.client_order_id,
        "buy",
        Decimal("0.01"),
    )
    assert canceled.status is OrderStatus.CANCELED


def test_a_look_up_policy_that_could_spin_forever_is_refused():
    with pytest.raises(TradingValueError) as raised:
        LookupPolicy(first_delay_s=0)
    assert raised.value.field == "first_delay_s"


def test_keys_stay_out_of_the_log_even_with_ccxt_at_debug(broker, fake_exchange, venue, caplog):
    # CCXT-4: ccxt logs request headers (the key) at DEBUG; the record factory masks them.
    caplog.set_level(logging.DEBUG, logger="ccxt")
    caplog.set_level(logging.DEBUG, logger="ccxt.base.exchange")
    fake_exchange.fault("drop")
    request = limit_buy()

    broker.place_order(request)
    broker.cancel_order(request.client_order_id)

    assert "/order" in caplog.text  # ccxt did log the signed calls
    assert API_KEY not in caplog.text and API_SECRET not in caplog.text


def test_a_refused_look_up_raises_our_error_without_cctxs_text(broker, fake_exchange):
    from apps.engine.brokers.ccxt_live import BrokerError

    order = broker.place_order(limit_buy())
    fake_exchange.fail_auth = True  # the key is revoked after the order was placed
    with pytest.raises(BrokerError) as raised:
        broker.get_order(order.client_order_id)
    message = str(raised.value)
    assert not isinstance(raised.value, ccxt.BaseError)
    assert "http" not in message and fake_exchange.base_url not in message
    assert "Invalid API-key" not in message and API_KEY not in message


def test_fills_of_an_order_that_filled_at_once_match_the_trade_list(broker, fake_exchange, venue):
    order = broker.place_order(market_buy("0.02"))
    calls = len(fake_exchange.requests)
    fills = broker.fills(order.client_order_id)
    trades = [t for t in fake_exchange.book.trades if t.client_id == order.client_order_id]
    assert [(f.fill_id, f.qty, f.price, f.fee) for f in fills] == [
        (str(t.trade_id), t.qty, t.price, t.fee) for t in trades
    ]
    assert all(f.side == "buy" and f.time.tzinfo is not None for f in fills)
    if venue == "binance":  # its FULL create answer lists the fills: no trade-list call
        assert len(fake_exchange.requests) == calls
