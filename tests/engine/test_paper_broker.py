"""The paper broker's fill rules (PAPER-1), its restart behaviour, and its refusals."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.engine.brokers.base import BrokerRejection
from apps.engine.brokers.paper import PaperBroker, PaperConfig
from apps.engine.clock import FixedClock
from apps.engine.ledger import Adjustment, Ledger
from apps.engine.types import Candle, Instrument, OrderRequest, OrderStatus

D = Decimal
T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SYMBOL = "BTC/USDT"
BTC = Instrument(SYMBOL, tick_size=D("0.01"), step_size=D("0.001"), min_notional=D(5))
CONFIG = PaperConfig(maker_fee=D("0.001"), taker_fee=D("0.002"), slippage=D("0.01"))


def broker_with(
    usdt: str = "10000", btc: str = "0", config: PaperConfig = CONFIG, at: datetime = T0
) -> PaperBroker:
    ledger = Ledger("USDT")
    ledger.adjust(Adjustment("usdt", "USDT", D(usdt), T0 - HOUR))
    if D(btc):
        ledger.adjust(Adjustment("btc", "BTC", D(btc), T0 - HOUR, price=D(90)))
    return PaperBroker(
        ledger=ledger, instruments={SYMBOL: BTC}, config=config, clock=FixedClock(at)
    )


def candle(at: datetime, o: str, h: str, low: str, c: str, v: str = "1000") -> Candle:
    return Candle(at, D(o), D(h), D(low), D(c), D(v))


# One candle after the order was placed: opens 100, trades 95..105, closes 102.
BAR = candle(T0, "100", "105", "95", "102")

# PAPER-1: (side, type, price, filled?, fill price, liquidity). Limits touch at the
# extreme, open-through limits fill at the open, stops fill at the stop or the open, with
# slippage; market orders at the open with slippage.
PAPER_1 = [
    ("buy", "limit", "96", True, "96", "maker"),
    ("buy", "limit", "95", True, "95", "maker"),
    ("buy", "limit", "94.99", False, None, None),
    ("buy", "limit", "101", True, "100", "maker"),
    ("sell", "limit", "104", True, "104", "maker"),
    ("sell", "limit", "105", True, "105", "maker"),
    ("sell", "limit", "105.01", False, None, None),
    ("sell", "limit", "99", True, "100", "maker"),
    ("buy", "market", None, True, "101.00", "taker"),
    ("sell", "market", None, True, "99.00", "taker"),
    ("sell", "stop_market", "97", True, "96.03", "taker"),
    ("sell", "stop_market", "101", True, "99.00", "taker"),
    ("sell", "stop_market", "94.99", False, None, None),
    ("buy", "stop_market", "103", True, "104.03", "taker"),
    ("buy", "stop_market", "105.01", False, None, None),
]


def request(side: str, kind: str, price: str | None, qty: str = "1", cid: str = "o-1"):
    return OrderRequest(
        cid,
        SYMBOL,
        side,  # type: ignore[arg-type]
        kind,  # type: ignore[arg-type]
        qty=D(qty),
        limit_price=D(price) if kind == "limit" and price else None,
        stop_price=D(price) if kind == "stop_market" and price else None,
    )


@pytest.mark.parametrize(("side", "kind", "price", "filled", "at", "liquidity"), PAPER_1)
def test_paper_1_fill_table(side, kind, price, filled, at, liquidity) -> None:
    broker = broker_with(btc="2")
    broker.place_order(request(side, kind, price))
    fills = broker.on_candle(SYMBOL, BAR)
    order = broker.get_order("o-1")
    assert order is not None
    if not filled:
        assert fills == ()
        assert order.status is OrderStatus.OPEN
        return
    (fill,) = fills
    assert (fill.price, fill.liquidity, fill.qty) == (D(at), liquidity, D(1))
    rate = CONFIG.maker_fee if liquidity == "maker" else CONFIG.taker_fee
    assert fill.fee == D(at) * rate
    assert fill.fee_asset == "USDT"
    assert fill.time == BAR.time
    assert order.status is OrderStatus.FILLED and order.filled_qty == D(1)


def test_an_order_never_fills_on_a_candle_that_opened_before_it_was_placed() -> None:
    broker = broker_with(at=T0 + HOUR)
    broker.place_order(request("buy", "limit", "96"))
    assert broker.on_candle(SYMBOL, BAR) == ()  # BAR opened at T0, before the order
    (fill,) = broker.on_candle(SYMBOL, candle(T0 + HOUR, "97", "98", "95.5", "96"))
    assert fill.price == D(96)


def test_a_market_buy_by_quote_amount_spends_at_most_it_fee_included() -> None:
    broker = broker_with()
    broker.place_order(OrderRequest("q-1", SYMBOL, "buy", quote_qty=D("1000")))
    (fill,) = broker.on_candle(SYMBOL, BAR)
    spent = fill.qty * fill.price + fill.fee
    assert spent <= D(1000) < spent + BTC.step_size * fill.price * D("1.002")
    order = broker.get_order("q-1")
    assert order is not None and order.status is OrderStatus.FILLED and order.qty == fill.qty


def test_resting_orders_fill_on_the_candles_replayed_after_a_restart() -> None:
    broker = broker_with()
    broker.place_order(request("buy", "limit", "90"))
    broker.on_candle(SYMBOL, candle(T0, "100", "101", "95", "99"))
    snapshot = json.loads(json.dumps(broker.to_dict()))
    # Down for three bars; the second dipped through the limit. PAPER-1: re-evaluated,
    # not assumed unfilled.
    restarted = PaperBroker.from_dict(
        snapshot, instruments={SYMBOL: BTC}, config=CONFIG, clock=FixedClock(T0 + 4 * HOUR)
    )
    missed = [
        candle(T0 + HOUR, "99", "100", "92", "93"),
        candle(T0 + 2 * HOUR, "93", "94", "89", "91"),
        candle(T0 + 3 * HOUR, "91", "92", "85", "86"),
    ]
    fills = [f for c in missed for f in restarted.on_candle(SYMBOL, c)]
    assert [(f.time, f.price) for f in fills] == [(T0 + 2 * HOUR, D(90))]
    assert restarted.ledger.balance("BTC") == D(1)


def test_a_replayed_candle_or_an_old_snapshot_never_repeats_a_fill() -> None:
    broker = broker_with()
    broker.place_order(request("buy", "market", None))
    snapshot = json.loads(json.dumps(broker.to_dict()))
    (first,) = broker.on_candle(SYMBOL, BAR)
    assert broker.on_candle(SYMBOL, BAR) == ()  # the same candle again
    assert broker.on_candle(SYMBOL, candle(T0 - HOUR, "1", "1", "1", "1")) == ()
    # A crash before the new state was saved: the old snapshot replays the candle and
    # produces the same fill id, so the stored fill is recognised downstream.
    old = PaperBroker.from_dict(
        snapshot, instruments={SYMBOL: BTC}, config=CONFIG, clock=FixedClock(T0)
    )
    (again,) = old.on_candle(SYMBOL, BAR)
    assert again == first
    downstream = Ledger("USDT")
    downstream.adjust(Adjustment("usdt", "USDT", D(10000), T0 - HOUR))
    assert [downstream.apply_fill(f) for f in (first, again)] == ["applied", "duplicate"]


def test_placing_a_known_client_order_id_returns_the_order_and_places_nothing() -> None:
    broker = broker_with()
    first = broker.place_order(request("buy", "limit", "96"))
    assert broker.place_order(request("buy", "limit", "96")) == first
    assert len(broker.open_orders()) == 1
    assert len(broker.on_candle(SYMBOL, BAR)) == 1


def test_a_cancel_that_loses_the_race_to_a_fill_returns_the_filled_order() -> None:
    broker = broker_with()
    broker.place_order(request("buy", "limit", "96"))
    broker.on_candle(SYMBOL, BAR)
    order = broker.cancel_order("o-1")
    assert order.status is OrderStatus.FILLED and order.filled_qty == D(1)


def test_volume_caps_make_partial_fills_and_a_cancel_keeps_the_filled_part() -> None:
    config = PaperConfig(maker_fee=D("0.001"), max_volume_share=D("0.1"))
    broker = broker_with(config=config)
    broker.place_order(request("buy", "limit", "96", qty="5"))
    (fill,) = broker.on_candle(SYMBOL, candle(T0, "100", "105", "95", "102", v="20"))
    assert fill.qty == D(2)
    order = broker.get_order("o-1")
    assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
    assert broker.balances()["USDT"].locked == D(3) * D(96) * D("1.001")
    canceled = broker.cancel_order("o-1")
    assert (canceled.status, canceled.filled_qty, canceled.qty) == (
        OrderStatus.CANCELED,
        D(2),
        D(5),
    )
    assert broker.balances()["USDT"].locked == 0
    assert broker.on_candle(SYMBOL, candle(T0 + HOUR, "96", "97", "90", "91")) == ()


def test_open_orders_stay_oldest_first_when_one_of_them_fills_in_part() -> None:
    broker = broker_with(config=PaperConfig(max_volume_share=D("0.1")))
    broker.place_order(request("buy", "limit", "96", qty="5", cid="o-1"))
    broker.place_order(request("buy", "limit", "90", qty="5", cid="o-2"))
    (fill,) = broker.on_candle(SYMBOL, candle(T0, "100", "105", "95", "102", v="20"))
    assert fill.client_order_id == "o-1"
    assert [order.client_order_id for order in broker.open_orders()] == ["o-1", "o-2"]


def test_a_market_buy_larger_than_the_cash_fills_what_it_can_and_expires() -> None:
    broker = broker_with(usdt="250")
    broker.place_order(request("buy", "market", None, qty="3"))
    (fill,) = broker.on_candle(SYMBOL, BAR)
    order = broker.get_order("o-1")
    assert order is not None and order.status is OrderStatus.EXPIRED
    assert fill.qty == D("2.470") and "not enough" in order.message
    assert broker.ledger.balance("USDT") >= 0


def test_binance_style_fees_are_paid_in_the_asset_received() -> None:
    config = PaperConfig(maker_fee=D("0.001"), taker_fee=D("0.001"), fee_mode="received")
    broker = broker_with(config=config)
    broker.place_order(request("buy", "market", None, qty="2"))
    (buy,) = broker.on_candle(SYMBOL, BAR)
    assert (buy.fee_asset, buy.fee) == ("BTC", D("0.002"))
    assert broker.ledger.balance("BTC") == D("1.998")
    broker.clock = FixedClock(T0 + HOUR)
    broker.place_order(request("sell", "market", None, qty="1.998", cid="o-2"))
    (sell,) = broker.on_candle(SYMBOL, candle(T0 + HOUR, "110", "111", "109", "110"))
    assert sell.fee_asset == "USDT"


def test_open_orders_lock_what_they_may_spend() -> None:
    broker = broker_with(btc="2")
    broker.place_order(request("buy", "limit", "90", qty="10"))
    broker.place_order(request("sell", "limit", "120", qty="1.5", cid="o-2"))
    balances = broker.balances()
    assert balances["USDT"].locked == D(900) * D("1.001")
    assert (balances["BTC"].locked, balances["BTC"].free) == (D("1.5"), D("0.5"))


@pytest.mark.parametrize(
    ("req", "field", "words"),
    [
        (request("buy", "limit", "96", qty="1000"), "qty", "insufficient USDT"),
        (request("sell", "limit", "96", qty="1"), "qty", "insufficient BTC"),
        (request("buy", "limit", "96", qty="0.0005"), "qty", "multiple of 0.001"),
        (request("buy", "limit", "96.001"), "limit_price", "multiple of 0.01"),
        (request("buy", "limit", "1", qty="0.001"), "qty", "minimum notional"),
        (
            OrderRequest("o-1", "DOGE/USDT", "buy", qty=D(1)),
            "symbol",
            "not traded here",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_field_and_place_nothing(req, field, words) -> None:
    broker = broker_with()
    with pytest.raises(BrokerRejection, match=words) as caught:
        broker.place_order(req)
    assert caught.value.field == field
    assert broker.open_orders() == () and broker.get_order("o-1") is None
