"""The ledger: FIFO realized P&L, fees, equity, idempotent and order-free fill booking."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.engine.ledger import Adjustment, Ledger, LedgerError
from apps.engine.round_trips import round_trips
from apps.engine.types import Fill, TradingValueError

D = Decimal
T0 = datetime(2024, 5, 1, tzinfo=UTC)
SYMBOL = "BTC/USDT"


def fill(n: int, side: str, qty: str, price: str, fee: str = "0", fee_asset: str = "USDT") -> Fill:
    return Fill(
        f"f{n}",
        f"o{n}",
        SYMBOL,
        side,  # type: ignore[arg-type]
        D(qty),
        D(price),
        D(fee),
        fee_asset,
        "taker",
        T0 + timedelta(minutes=n),
        n,
    )


def funded(usdt: str = "10000", **kwargs: int) -> Ledger:
    ledger = Ledger("USDT", **kwargs)
    ledger.adjust(Adjustment("deposit", "USDT", D(usdt), T0 - timedelta(days=1)))
    return ledger


def identity_holds(ledger: Ledger, mark: str) -> bool:
    marks = {SYMBOL: D(mark)}
    return ledger.realized + ledger.unrealized(marks) == ledger.equity(marks) - ledger.net_deposits


def test_a_sell_closes_the_oldest_lot_first() -> None:
    ledger = funded()
    for f in (fill(1, "buy", "1", "100"), fill(2, "buy", "1", "200"), fill(3, "sell", "1", "150")):
        assert ledger.apply_fill(f) == "applied"
    assert ledger.realized == D(50)  # sold the 100 lot, not the average 150
    assert [(lot.qty, lot.price) for lot in ledger.lots(SYMBOL)] == [(D(1), D(200))]
    assert ledger.holding(SYMBOL).avg_price == D(200)
    assert ledger.unrealized({SYMBOL: D(210)}) == D(10)
    assert identity_holds(ledger, "210")


def test_every_fee_is_expensed_and_a_base_fee_leaves_the_position() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, "buy", "2", "100", fee="0.002", fee_asset="BTC"))
    assert ledger.balance("BTC") == D("1.998")
    assert ledger.realized == D("-0.2")  # 0.002 BTC at the fill price
    ledger.apply_fill(fill(2, "sell", "1", "110", fee="0.11"))
    assert ledger.realized == D("-0.2") + D(10) - D("0.11")
    assert ledger.balance("USDT") == D(10000) - D(200) + D(110) - D("0.11")
    assert ledger.fees_paid() == {"BTC": D("0.002"), "USDT": D("0.11")}
    assert identity_holds(ledger, "95")


def test_a_base_fee_on_a_sell_costs_the_next_units_at_their_lot_price() -> None:
    ledger = funded()
    fills = [
        fill(1, "buy", "1", "100"),
        fill(2, "buy", "1", "110"),
        fill(3, "sell", "1", "120", fee="0.5", fee_asset="BTC"),
    ]
    for f in fills:
        ledger.apply_fill(f)
    assert sum(t.pnl for t in round_trips(fills)) == ledger.realized
    assert ledger.balance("BTC") == D("0.5")
    assert ledger.realized == D(20) - D("0.5") * D(110)
    assert [(lot.qty, lot.price) for lot in ledger.lots(SYMBOL)] == [(D("0.5"), D(110))]
    assert identity_holds(ledger, "100")


def test_the_same_fill_twice_is_booked_once() -> None:
    ledger = funded()
    buy = fill(1, "buy", "1", "100", fee="0.1")
    assert [ledger.apply_fill(buy), ledger.apply_fill(buy)] == ["applied", "duplicate"]
    assert ledger.balance("USDT") == D("9899.9")


def test_a_fill_id_reused_with_other_values_is_an_error() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, "buy", "1", "100"))
    with pytest.raises(LedgerError, match="f1 was booked before"):
        ledger.apply_fill(fill(1, "buy", "2", "100"))
    assert ledger.balance("BTC") == D(1)


def test_fills_arriving_out_of_order_give_the_books_of_the_true_order() -> None:
    fills = [
        fill(1, "buy", "1", "100", fee="0.1"),
        fill(2, "buy", "1", "200", fee="0.2"),
        fill(3, "sell", "1.5", "150", fee="0.225"),
        fill(4, "buy", "0.5", "120", fee="0.06"),
    ]
    in_order, shuffled = funded(), funded()
    for f in fills:
        in_order.apply_fill(f)
    for f in (fills[3], fills[2], fills[0], fills[1]):
        shuffled.apply_fill(f)
    assert shuffled.books == in_order.books
    assert shuffled.parked_ids == frozenset()


def test_a_sell_that_arrives_before_its_buy_waits_instead_of_going_negative() -> None:
    ledger = funded()
    assert ledger.apply_fill(fill(2, "sell", "1", "150")) == "parked"
    assert ledger.balance("BTC") == 0 and ledger.balance("USDT") == D(10000)
    assert ledger.apply_fill(fill(1, "buy", "1", "100")) == "applied"
    assert ledger.parked_ids == frozenset()
    assert ledger.realized == D(50)


def test_a_buy_beyond_the_cash_is_parked() -> None:
    ledger = funded("100")
    assert ledger.apply_fill(fill(1, "buy", "1", "150")) == "parked"
    assert ledger.balances() == {"USDT": D(100)}


def test_old_events_fold_out_of_the_journal_but_stay_known() -> None:
    ledger = funded(horizon=2)
    fills = [fill(n, "buy" if n % 2 else "sell", "1", str(100 + n)) for n in range(1, 12)]
    for f in fills:
        ledger.apply_fill(f)
    assert len(ledger.journal) <= 4
    assert ledger.apply_fill(fills[0]) == "duplicate"
    with pytest.raises(LedgerError, match="rebuild the ledger"):
        ledger.apply_fill(fill(0, "buy", "1", "1"))
    rebuilt = Ledger.replay("USDT", [*reversed(fills), *ledger_deposit()])
    assert rebuilt.books == ledger.books


def ledger_deposit() -> list[Adjustment]:
    return [Adjustment("deposit", "USDT", D(10000), T0 - timedelta(days=1))]


def test_the_ledger_survives_a_json_round_trip() -> None:
    ledger = funded(horizon=3)
    for n in range(1, 9):
        ledger.apply_fill(fill(n, "buy" if n % 3 else "sell", "0.5", str(100 + n), fee="0.01"))
    ledger.apply_fill(fill(20, "sell", "50", "1"))  # parked
    restored = Ledger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert restored.books == ledger.books
    assert restored.parked_ids == ledger.parked_ids == {"f20"}
    assert restored.apply_fill(fill(8, "buy", "0.5", "108", fee="0.01")) == "duplicate"
    assert restored.apply_fill(fill(1, "buy", "0.5", "101", fee="0.01")) == "duplicate"


def test_deposits_and_withdrawals_are_idempotent_and_never_overdraw() -> None:
    ledger = funded()
    withdrawal = Adjustment("w1", "USDT", D(-4000), T0)
    assert [ledger.adjust(withdrawal), ledger.adjust(withdrawal)] == ["applied", "duplicate"]
    assert ledger.net_deposits == D(6000)
    assert ledger.adjust(Adjustment("w2", "USDT", D(-7000), T0 + timedelta(hours=1))) == "parked"
    assert ledger.balance("USDT") == D(6000)


def test_a_deposited_position_opens_a_lot_at_its_cost_price() -> None:
    ledger = funded()
    ledger.adjust(Adjustment("btc-in", "BTC", D(2), T0, price=D(100)))
    assert ledger.net_deposits == D(10200)
    ledger.apply_fill(fill(1, "sell", "1", "130"))
    assert ledger.realized == D(30)
    assert identity_holds(ledger, "90")
    with pytest.raises(LedgerError, match="cost price"):
        ledger.adjust(Adjustment("eth-in", "ETH", D(1), T0))


def test_fills_in_another_quote_currency_are_refused() -> None:
    ledger = funded()
    eth_btc = Fill("x", "o", "ETH/BTC", "buy", D(1), D("0.05"), D(0), "BTC", "taker", T0)
    with pytest.raises(LedgerError, match="not quoted in USDT"):
        ledger.apply_fill(eth_btc)


def test_equity_needs_a_mark_for_every_position() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, "buy", "1", "100"))
    with pytest.raises(TradingValueError, match="no mark price for BTC/USDT") as caught:
        ledger.equity({})
    assert caught.value.field == "marks"


def test_round_trips_add_up_to_the_realized_pnl() -> None:
    fills = [
        fill(1, "buy", "1", "100", fee="0.1"),
        fill(2, "buy", "2", "90", fee="0.002", fee_asset="BTC"),
        fill(3, "sell", "1.5", "120", fee="0.18"),
        fill(4, "sell", "1.498", "80", fee="0.12"),
    ]
    ledger = funded()
    for f in fills:
        ledger.apply_fill(f)
    trips = round_trips(reversed(fills))
    assert [t.qty for t in trips] == [D(1), D("0.5"), D("1.498")]
    assert sum(t.pnl for t in trips) == ledger.realized
    assert ledger.balance("BTC") == 0
