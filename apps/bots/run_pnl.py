"""A run's own P&L: the fills of its own orders since it started, never the other bots'.

Bots share their paper account's positions (the PaperBook ledger), so the account's realized
and unrealized P&L mix every bot on it. A run keeps its own FIFO lots in
`BotRun.risk_state["books"]`, fed with its orders' fills in fill order, and counts realized
P&L the way the account's `Ledger` does (fees included), so a bot alone on its account
shows exactly the ledger's figures. Units the run sells beyond its own lots (a holding it
was told to assume at start) have no known cost here: they count at the sale price, with
no P&L.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.bots.models import BotFill, BotRun
from apps.engine.types import ZERO, split_symbol

BOOKS_KEY = "books"


@dataclass(frozen=True)
class RunFill:
    """One fill of the run's orders, as the tick reads it (BotFill fields)."""

    id: int
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str


@dataclass(frozen=True)
class PositionChange:
    """What one fill did to the run's position in `symbol` (the loss streak reads it)."""

    symbol: str
    realized_before: Decimal
    flat_before: bool
    flat_after: bool


def run_fills_seen(run: BotRun) -> int:
    """The id of the last fill already in the run's books (fill ids only grow)."""
    return int(((run.risk_state or {}).get(BOOKS_KEY) or {}).get("seen", 0))


def run_fills_unbooked(runs: Iterable[BotRun]) -> dict[int, list[RunFill]]:
    """Every fill of the runs' orders not in their books yet (one query), by run id."""
    seen = {run.pk: run_fills_seen(run) for run in runs}
    if not seen:
        return {}
    rows = (
        BotFill.objects.filter(order__run_id__in=list(seen), pk__gt=min(seen.values()))
        .order_by("pk")
        .values_list("pk", "order__run_id", "symbol", "side", "qty", "price", "fee", "fee_asset")
    )
    fills: dict[int, list[RunFill]] = {}
    for pk, run_id, *fields in rows:
        if pk > seen[run_id]:
            fills.setdefault(run_id, []).append(RunFill(pk, *fields))
    return fills


def run_fills_apply(run: BotRun, fills: Iterable[RunFill]) -> list[PositionChange]:
    """Book `fills` (ascending ids; ones seen before are skipped) into the run's lots and
    `realized_pnl`; returns what each did to the position."""
    if BOOKS_KEY not in (run.risk_state or {}):
        # Books start empty and take every fill of the run (fills with ids above 0): a run
        # started before runs kept their own books gets its P&L rebuilt, not added twice.
        run.realized_pnl = ZERO
    data = dict((run.risk_state or {}).get(BOOKS_KEY) or {})
    seen = int(data.get("seen", 0))
    lots: dict[str, list[list[str]]] = {s: list(v) for s, v in (data.get("lots") or {}).items()}
    changes = []
    for fill in fills:
        if fill.id <= seen:
            continue
        held = _lots(lots.get(fill.symbol, []))
        flat_before, realized_before = _qty(held) == 0, run.realized_pnl
        run.realized_pnl += _book(held, fill)
        lots[fill.symbol] = [[str(q), str(p)] for q, p in held]
        changes.append(PositionChange(fill.symbol, realized_before, flat_before, _qty(held) == 0))
        seen = fill.id
    data["seen"], data["lots"] = seen, {s: v for s, v in lots.items() if v}
    run.risk_state = {**(run.risk_state or {}), BOOKS_KEY: data}
    return changes


def run_unrealized(run: BotRun, marks: Mapping[str, Decimal]) -> Decimal:
    """Unrealized P&L of the run's own lots at `marks` (a symbol without a mark: none)."""
    total = ZERO
    for symbol, raw in _stored_lots(run).items():
        mark = marks.get(symbol)
        if mark is not None:
            total += sum((qty * (mark - price) for qty, price in _lots(raw)), ZERO)
    return total


def run_position(run: BotRun, symbol: str) -> Decimal:
    return _qty(_lots(_stored_lots(run).get(symbol, [])))


def _stored_lots(run: BotRun) -> dict[str, Any]:
    return dict(((run.risk_state or {}).get(BOOKS_KEY) or {}).get("lots") or {})


def _lots(raw: Iterable[Any]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(qty), Decimal(price)) for qty, price in raw]


def _qty(lots: list[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((qty for qty, _price in lots), ZERO)


def _book(lots: list[tuple[Decimal, Decimal]], fill: RunFill) -> Decimal:
    """Apply `fill` to `lots` in place; the realized P&L it makes (as `Ledger` counts it)."""
    base = split_symbol(fill.symbol)[0]
    base_fee = fill.fee if fill.fee_asset == base else ZERO
    quote_fee = fill.fee - base_fee
    if fill.side == "buy":
        lots.append((fill.qty - base_fee, fill.price))
        realized = -base_fee * fill.price
    else:
        realized = fill.qty * fill.price - _take(lots, fill.qty, fill.price)
        realized -= _take(lots, base_fee, fill.price)
    return realized - quote_fee


def _take(lots: list[tuple[Decimal, Decimal]], qty: Decimal, price: Decimal) -> Decimal:
    """Remove `qty` from the oldest lots; their cost (units beyond the lots at `price`)."""
    cost = ZERO
    while qty > 0 and lots:
        lot_qty, lot_price = lots[0]
        taken = min(qty, lot_qty)
        cost += taken * lot_price
        qty -= taken
        if taken == lot_qty:
            lots.pop(0)
        else:
            lots[0] = (lot_qty - taken, lot_price)
    return cost + qty * price
