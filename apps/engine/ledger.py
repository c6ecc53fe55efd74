"""An account's books: balances per asset, positions as FIFO lots, realized P&L, equity.

The one P&L method is FIFO: a sell closes the oldest lots first, and realized P&L is
    sum over sells of qty_i x (sell price - lot price_i)  -  every fee,
with every fee expensed when paid. A quote fee is its amount; a base fee takes its units
out of the position (a buy's from the lot it opens, a sell's after the units sold) and
costs their lot price. Unrealized P&L is sum of lot qty x (mark - lot price), so
    realized + unrealized == equity - net deposits
holds exactly (Decimal products of quantised values are exact in `DECIMAL_CONTEXT`).

Fills are applied in the order they happened (`Fill.sort_key`), whatever order they
arrive in: a fill that sorts before the last one applied triggers a replay of the
journal, so the books depend only on the set of fills. `apply_fill` is idempotent by
`fill_id`. A fill that would take a balance below zero (its funding fill has not arrived
yet) is parked, not applied, and every replay tries it again. The journal keeps the last
`horizon` events; older ones are folded into a base state. A fill older than the fold
cannot be placed any more: rebuild with `Ledger.replay` from the stored fills.

`to_dict`/`from_dict` give plain JSON values so the app can persist the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any, Literal

from apps.engine.plain import from_plain, to_plain
from apps.engine.types import (
    DECIMAL_CONTEXT,
    ZERO,
    Fill,
    TradingValueError,
    split_symbol,
)

ApplyResult = Literal["applied", "duplicate", "parked"]
DEFAULT_HORIZON = 256


class LedgerError(TradingValueError):
    """An event contradicts the ledger (a reused id, a fill too old to place)."""


@dataclass(frozen=True)
class Adjustment:
    """A deposit (amount > 0) or withdrawal (amount < 0) of one asset, unique by id.

    A base asset needs `price`, its cost basis in quote: a deposited position opens a lot
    at that price and counts as a deposit of qty x price."""

    adjustment_id: str
    asset: str
    amount: Decimal
    time: datetime
    price: Decimal | None = None

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.time, -1, self.adjustment_id)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Adjustment:
        return from_plain(cls, data)


Event = Fill | Adjustment


def event_id(event: Event) -> str:
    return event.fill_id if isinstance(event, Fill) else event.adjustment_id


@dataclass(frozen=True)
class Lot:
    """Units bought together and still held: `qty` at `price`, opened by `fill_id`."""

    qty: Decimal
    price: Decimal
    time: datetime
    fill_id: str


@dataclass(frozen=True)
class Holding:
    """A symbol's position: base units held through lots, their cost and mean price."""

    symbol: str
    qty: Decimal
    cost: Decimal

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.qty if self.qty > 0 else ZERO

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.qty * mark - self.cost


@dataclass
class Books:
    """The mutable state one replay builds. Only `Ledger` changes it."""

    balances: dict[str, Decimal] = field(default_factory=dict)
    lots: dict[str, list[Lot]] = field(default_factory=dict)
    realized: Decimal = ZERO
    fees: dict[str, Decimal] = field(default_factory=dict)
    net_deposits: Decimal = ZERO

    def copy(self) -> Books:
        lots = {symbol: list(held) for symbol, held in self.lots.items()}
        return Books(dict(self.balances), lots, self.realized, dict(self.fees), self.net_deposits)

    def apply(self, event: Event, quote: str) -> bool:
        """Book `event`; False (and no change) when a balance would go below zero."""
        if isinstance(event, Adjustment):
            return self._adjust(event, quote)
        base, fill_quote = split_symbol(event.symbol)
        if fill_quote != quote:
            raise LedgerError(f"{event.symbol} is not quoted in {quote}", "symbol")
        base_fee = event.fee if event.fee_asset == base else ZERO
        quote_fee = event.fee - base_fee
        held = self.balances.get(base, ZERO)
        cash = self.balances.get(quote, ZERO)
        if event.side == "buy":
            if base_fee > event.qty:
                raise LedgerError(f"fill {event.fill_id} charges more fee than it buys", "fee")
            cash -= event.notional + quote_fee
            held += event.qty - base_fee
        else:
            cash += event.notional - quote_fee
            held -= event.qty + base_fee
        if cash < 0 or held < 0:
            return False
        self.balances[quote], self.balances[base] = cash, held
        lots = self.lots.setdefault(event.symbol, [])
        if event.side == "buy":
            lots.append(Lot(event.qty - base_fee, event.price, event.time, event.fill_id))
            self.realized -= base_fee * event.price
        else:
            self.realized += event.qty * event.price - take_fifo(lots, event.qty)
            self.realized -= take_fifo(lots, base_fee)
        self.realized -= quote_fee
        if event.fee:
            self.fees[event.fee_asset] = self.fees.get(event.fee_asset, ZERO) + event.fee
        return True

    def _adjust(self, event: Adjustment, quote: str) -> bool:
        balance = self.balances.get(event.asset, ZERO) + event.amount
        if balance < 0:
            return False
        if event.asset == quote:
            self.net_deposits += event.amount
        else:
            if event.price is None or event.price <= 0:
                raise LedgerError(f"a {event.asset} adjustment needs its cost price", "price")
            symbol = f"{event.asset}/{quote}"
            lots = self.lots.setdefault(symbol, [])
            if event.amount > 0:
                lots.append(Lot(event.amount, event.price, event.time, event.adjustment_id))
                self.net_deposits += event.amount * event.price
            else:
                self.net_deposits -= take_fifo(lots, -event.amount)
        self.balances[event.asset] = balance
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "balances": _strs(self.balances),
            "lots": {
                symbol: [[str(x.qty), str(x.price), x.time.isoformat(), x.fill_id] for x in held]
                for symbol, held in self.lots.items()
            },
            "realized": str(self.realized),
            "fees": _strs(self.fees),
            "net_deposits": str(self.net_deposits),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Books:
        lots = {
            symbol: [
                Lot(Decimal(q), Decimal(p), datetime.fromisoformat(t), i) for q, p, t, i in held
            ]
            for symbol, held in data["lots"].items()
        }
        return cls(
            _decimals(data["balances"]),
            lots,
            Decimal(data["realized"]),
            _decimals(data["fees"]),
            Decimal(data["net_deposits"]),
        )


def take_fifo(lots: list[Lot], qty: Decimal) -> Decimal:
    """Remove `qty` units from the oldest lots and return their cost (callers checked the
    balance, and the lots always sum to it)."""
    cost = ZERO
    while qty > 0:
        lot = lots[0]
        taken = min(qty, lot.qty)
        cost += taken * lot.price
        qty -= taken
        if taken == lot.qty:
            lots.pop(0)
        else:
            lots[0] = replace(lot, qty=lot.qty - taken)
    return cost


class Ledger:
    """One account's books in one quote currency (module docstring has the rules)."""

    def __init__(self, quote: str, *, horizon: int = DEFAULT_HORIZON) -> None:
        if horizon < 1:
            raise TradingValueError("horizon must be at least 1", "horizon")
        self.quote = quote
        self.horizon = horizon
        self.base = Books()
        self.books = Books()
        self.journal: list[Event] = []
        self.index: dict[str, Event] = {}
        self.parked: set[str] = set()
        # Ids folded out of the journal, so a late duplicate is still known as one.
        self.folded: set[str] = set()
        self.watermark: tuple[datetime, int, str] | None = None

    # -- events ---------------------------------------------------------------------------
    def apply_fill(self, fill: Fill) -> ApplyResult:
        """Book `fill` once; a fill id seen before changes nothing ("duplicate")."""
        return self._record(fill)

    def adjust(self, adjustment: Adjustment) -> ApplyResult:
        """Book a deposit or withdrawal once, idempotent by `adjustment_id`."""
        return self._record(adjustment)

    def _record(self, event: Event) -> ApplyResult:
        with localcontext(DECIMAL_CONTEXT):
            known = self._known(event)
            if known is not None:
                return known
            if self.watermark is not None and event.sort_key <= self.watermark:
                raise LedgerError(
                    f"{event_id(event)} is older than the ledger's journal; "
                    "rebuild the ledger with Ledger.replay from every stored fill"
                )
            self.index[event_id(event)] = event
            if not self.journal or event.sort_key > self.journal[-1].sort_key:
                self.journal.append(event)
                if not self.books.apply(event, self.quote):
                    self.parked.add(event_id(event))
            else:
                self.journal.append(event)
                self.journal.sort(key=lambda e: e.sort_key)
                self._rebuild()
            self._fold()
        return "parked" if event_id(event) in self.parked else "applied"

    def _known(self, event: Event) -> ApplyResult | None:
        ident = event_id(event)
        if ident in self.folded:
            return "duplicate"
        seen = self.index.get(ident)
        if seen is None:
            return None
        if seen != event:
            raise LedgerError(f"{ident} was booked before with other values")
        return "duplicate"

    def _rebuild(self) -> None:
        self.books, self.parked = self.base.copy(), set()
        for event in self.journal:
            if not self.books.apply(event, self.quote):
                self.parked.add(event_id(event))

    def _fold(self) -> None:
        if len(self.journal) <= 2 * self.horizon:
            return
        cut = len(self.journal) - self.horizon
        for k, event in enumerate(self.journal[:cut]):
            if event_id(event) in self.parked:
                cut = k
                break
        for event in self.journal[:cut]:
            self.base.apply(event, self.quote)
            self.folded.add(event_id(event))
            del self.index[event_id(event)]
        if cut:
            self.watermark = self.journal[cut - 1].sort_key
            del self.journal[:cut]

    # -- reading --------------------------------------------------------------------------
    def balance(self, asset: str) -> Decimal:
        return self.books.balances.get(asset, ZERO)

    def balances(self) -> dict[str, Decimal]:
        return {asset: value for asset, value in self.books.balances.items() if value}

    def holding(self, symbol: str) -> Holding:
        lots = self.books.lots.get(symbol, [])
        with localcontext(DECIMAL_CONTEXT):
            qty = sum((lot.qty for lot in lots), ZERO)
            cost = sum((lot.qty * lot.price for lot in lots), ZERO)
        return Holding(symbol, qty, cost)

    def holdings(self) -> list[Holding]:
        return [self.holding(s) for s, lots in sorted(self.books.lots.items()) if lots]

    def lots(self, symbol: str) -> tuple[Lot, ...]:
        return tuple(self.books.lots.get(symbol, ()))

    @property
    def realized(self) -> Decimal:
        return self.books.realized

    @property
    def net_deposits(self) -> Decimal:
        return self.books.net_deposits

    def fees_paid(self) -> dict[str, Decimal]:
        return dict(self.books.fees)

    @property
    def parked_ids(self) -> frozenset[str]:
        return frozenset(self.parked)

    def unrealized(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Sum of qty x (mark - lot price) over the lots; `marks` maps symbol to price."""
        with localcontext(DECIMAL_CONTEXT):
            return sum((h.unrealized(self._mark(marks, h.symbol)) for h in self.holdings()), ZERO)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """The quote balance plus every base balance at its symbol's mark."""
        with localcontext(DECIMAL_CONTEXT):
            total = self.balance(self.quote)
            for asset, amount in self.books.balances.items():
                if asset != self.quote and amount:
                    total += amount * self._mark(marks, f"{asset}/{self.quote}")
            return total

    def _mark(self, marks: Mapping[str, Decimal], symbol: str) -> Decimal:
        if symbol not in marks:
            raise TradingValueError(f"no mark price for {symbol}", "marks")
        return marks[symbol]

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "quote": self.quote,
            "horizon": self.horizon,
            "base": self.base.to_dict(),
            "books": self.books.to_dict(),
            "journal": [_event_dict(e) for e in self.journal],
            "parked": sorted(self.parked),
            "folded": sorted(self.folded),
            "watermark": None
            if self.watermark is None
            else [self.watermark[0].isoformat(), self.watermark[1], self.watermark[2]],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ledger:
        if data.get("version") != 1:
            raise LedgerError(f"unknown ledger format {data.get('version')!r}")
        ledger = cls(data["quote"], horizon=int(data["horizon"]))
        ledger.base = Books.from_dict(data["base"])
        ledger.books = Books.from_dict(data["books"])
        ledger.journal = [_event_from(e) for e in data["journal"]]
        ledger.index = {event_id(e): e for e in ledger.journal}
        ledger.parked = set(data["parked"])
        ledger.folded = set(data["folded"])
        mark = data["watermark"]
        ledger.watermark = None if mark is None else (datetime.fromisoformat(mark[0]), *mark[1:])
        return ledger

    @classmethod
    def replay(
        cls, quote: str, events: Iterable[Event], *, horizon: int = DEFAULT_HORIZON
    ) -> Ledger:
        """A ledger rebuilt from every stored event (fills and adjustments, any order)."""
        ledger = cls(quote, horizon=horizon)
        for event in sorted(events, key=lambda e: e.sort_key):
            ledger._record(event)
        return ledger


def _event_dict(event: Event) -> dict[str, Any]:
    kind = "fill" if isinstance(event, Fill) else "adjustment"
    return {"kind": kind, **event.to_dict()}


def _event_from(data: Mapping[str, Any]) -> Event:
    body = {k: v for k, v in data.items() if k != "kind"}
    return Fill.from_dict(body) if data["kind"] == "fill" else Adjustment.from_dict(body)


def _strs(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def _decimals(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}
