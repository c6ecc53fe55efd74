"""Round trips from fills: the trade rows a bot page shows and a backtest prints.

Matching is the ledger's FIFO: a sell closes the oldest lots first, and each lot (or part
of one) it closes is one round trip, as in the event-path backtest. A trip's fee is its
pro-rata share of the entry fill's fee plus its share of the exit fill's fee (a base fee
valued at its fill price; a sell's base-fee units are costed at their lots' prices), so
over closed trips `sum(pnl)` equals the ledger's realized P&L. Lots still held come last
as open trips (no exit), valued at `marks` when given (as a backtest values its open
trade at the last close).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from apps.engine.types import DECIMAL_CONTEXT, ZERO, Fill, split_symbol


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    entry_time: datetime
    entry_price: Decimal
    qty: Decimal
    fee: Decimal
    pnl: Decimal
    exit_time: datetime | None = None
    exit_price: Decimal | None = None


@dataclass
class _OpenLot:
    time: datetime
    price: Decimal
    qty: Decimal
    fee: Decimal  # the part of the entry fee these units still carry, in quote


def round_trips(
    fills: Iterable[Fill], marks: Mapping[str, Decimal] | None = None
) -> list[RoundTrip]:
    """Closed round trips in exit order, then open lots by entry, from any fill order."""
    with localcontext(DECIMAL_CONTEXT):
        lots: dict[str, list[_OpenLot]] = {}
        trips: list[RoundTrip] = []
        for fill in sorted(fills, key=lambda f: f.sort_key):
            held = lots.setdefault(fill.symbol, [])
            if fill.side == "buy":
                held.append(_buy_lot(fill))
            else:
                trips.extend(_sell(fill, held))
        for symbol, held in lots.items():
            mark = None if marks is None else marks.get(symbol)
            for lot in held:
                value = ZERO if mark is None else lot.qty * (mark - lot.price)
                trips.append(
                    RoundTrip(symbol, lot.time, lot.price, lot.qty, lot.fee, value - lot.fee)
                )
        return trips


def _fee_value(fill: Fill) -> Decimal:
    return fill.fee if fill.fee_asset == split_symbol(fill.symbol)[1] else fill.fee * fill.price


def _buy_lot(fill: Fill) -> _OpenLot:
    base_fee = ZERO if fill.fee_asset == split_symbol(fill.symbol)[1] else fill.fee
    return _OpenLot(fill.time, fill.price, fill.qty - base_fee, _fee_value(fill))


def _sell(fill: Fill, held: list[_OpenLot]) -> list[RoundTrip]:
    base_fee = ZERO if fill.fee_asset == split_symbol(fill.symbol)[1] else fill.fee
    exit_fee = fill.fee if base_fee == ZERO else ZERO
    trips: list[RoundTrip] = []
    for qty, lot in _take(held, fill.qty):
        entry_fee = lot.fee if qty == lot.qty else lot.fee * qty / lot.qty
        fee = entry_fee + exit_fee * qty / fill.qty
        pnl = qty * (fill.price - lot.price) - fee
        trips.append(
            RoundTrip(fill.symbol, lot.time, lot.price, qty, fee, pnl, fill.time, fill.price)
        )
        _shrink(held, lot, qty, entry_fee)
    fee_cost = ZERO
    for qty, lot in _take(held, base_fee):
        fee_cost += qty * lot.price
        _shrink(held, lot, qty, ZERO)
    if trips and fee_cost:
        last = trips[-1]
        trips[-1] = RoundTrip(
            last.symbol,
            last.entry_time,
            last.entry_price,
            last.qty,
            last.fee + fee_cost,
            last.pnl - fee_cost,
            last.exit_time,
            last.exit_price,
        )
    return trips


def _take(held: list[_OpenLot], qty: Decimal) -> list[tuple[Decimal, _OpenLot]]:
    parts, left = [], qty
    for lot in held:
        if left <= 0:
            break
        taken = min(left, lot.qty)
        parts.append((taken, lot))
        left -= taken
    return parts


def _shrink(held: list[_OpenLot], lot: _OpenLot, qty: Decimal, fee: Decimal) -> None:
    lot.qty -= qty
    lot.fee -= fee
    if lot.qty <= 0:
        held.remove(lot)
