"""The fake's order book: spot orders, trades and balances, shared by both venues.

One book serves Binance and Bybit alike; only the wire formats differ (binance.py,
bybit.py). Everything here runs under the FakeExchange lock.

- MARKET orders fill at once, as taker, at `prices[symbol]` (set by the test); with no
  price set they expire unfilled, as an order with no liquidity does.
- LIMIT orders rest and lock funds. `price_set` moves the price and fills every resting
  order it crosses (buys at or above it, sells at or below) as maker, at the limit.
  A limit that crosses when placed fills at once as taker at the current price.
- Fees are `fee_rate` of the trade, in what the trader receives (Binance's default):
  a buy pays in the base asset, a sell in the quote.
- `dup_rule`: "binance" accepts a client id again once every earlier order with it is
  closed; "bybit" never accepts one twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Literal

# Spot symbols both exchanges list: (symbol, base, quote, tick size, step size).
SPOT_SYMBOLS = [
    ("BTCUSDT", "BTC", "USDT", "0.01", "0.00001"),
    ("ETHUSDT", "ETH", "USDT", "0.01", "0.0001"),
    ("BNBUSDT", "BNB", "USDT", "0.1", "0.001"),
]
ASSETS = {symbol: (base, quote) for symbol, base, quote, _, _ in SPOT_SYMBOLS}
MIN_NOTIONAL = Decimal("5")
FEE_QUANTUM = Decimal("0.00000001")

Status = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"]
Refusal = Literal["duplicate", "insufficient", "notional", "precision", "symbol", "not_found"]


class OrderRefused(Exception):
    """The book refuses a request; `reason` picks the venue's error code."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FakeOrder:
    order_id: int
    client_id: str
    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"]
    qty: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    created_ms: int
    status: Status = "NEW"
    updated_ms: int = 0
    filled_qty: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return (self.qty or Decimal(0)) - self.filled_qty

    @property
    def average_price(self) -> Decimal:
        return self.filled_quote / self.filled_qty if self.filled_qty else Decimal(0)


@dataclass(frozen=True)
class FakeTrade:
    trade_id: int
    order_id: int
    client_id: str
    symbol: str
    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    time_ms: int

    @property
    def quote(self) -> Decimal:
        return self.price * self.qty


@dataclass
class OrderBook:
    balances: dict[str, Decimal]
    prices: dict[str, Decimal] = field(default_factory=dict)
    fee_rate: Decimal = Decimal("0.001")
    orders: list[FakeOrder] = field(default_factory=list)
    trades: list[FakeTrade] = field(default_factory=list)
    _next_order_id: int = 1000
    _next_trade_id: int = 5000

    # --- queries -----------------------------------------------------------------------

    def find(
        self, symbol: str, *, client_id: str | None = None, order_id: int | None = None
    ) -> FakeOrder | None:
        """The newest order on `symbol` with that client id or order id."""
        for order in reversed(self.orders):
            if order.symbol == symbol and (
                (client_id is not None and order.client_id == client_id)
                or (order_id is not None and order.order_id == order_id)
            ):
                return order
        return None

    def open_orders(self, symbol: str | None = None) -> list[FakeOrder]:
        return [o for o in self.orders if o.is_open and symbol in (None, o.symbol)]

    def locked(self) -> dict[str, Decimal]:
        """What resting orders reserve: the quote of limit buys, the base of sells."""
        locked: dict[str, Decimal] = {}
        for order in self.open_orders():
            base, quote = ASSETS[order.symbol]
            asset, amount = (
                (quote, order.remaining * (order.price or 0))
                if order.side == "buy"
                else (base, order.remaining)
            )
            locked[asset] = locked.get(asset, Decimal(0)) + amount
        return locked

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0)) - self.locked().get(asset, Decimal(0))

    # --- changes -----------------------------------------------------------------------

    def create(self, order: FakeOrder, dup_rule: str) -> FakeOrder:
        """Accept `order` (its order_id is assigned here) and fill what fills at once."""
        if order.symbol not in ASSETS:
            raise OrderRefused("symbol")
        same_id = [o for o in self.orders if o.client_id == order.client_id]
        if same_id and (dup_rule == "bybit" or any(o.is_open for o in same_id)):
            raise OrderRefused("duplicate")
        self._check_grid(order)
        price = order.price if order.type == "limit" else self.prices.get(order.symbol)
        self._check_funds(order, price)
        order.order_id = self._next_order_id
        self._next_order_id += 1
        order.updated_ms = order.created_ms
        self.orders.append(order)
        market = self.prices.get(order.symbol)
        if order.type == "market":
            if market is None:
                order.status = "EXPIRED"
            else:
                self._fill_all(order, market, is_maker=False, now_ms=order.created_ms)
        elif market is not None and self._crosses(order, market):
            self._fill_all(order, market, is_maker=False, now_ms=order.created_ms)
        return order

    def cancel(self, order: FakeOrder, now_ms: int) -> FakeOrder:
        if not order.is_open:
            raise OrderRefused("not_found")
        order.status = "CANCELED"
        order.updated_ms = now_ms
        return order

    def price_set(self, symbol: str, price: Decimal, now_ms: int) -> list[FakeTrade]:
        """Move the market and fill every resting limit the new price reaches."""
        self.prices[symbol] = price
        before = len(self.trades)
        for order in self.open_orders(symbol):
            if order.type == "limit" and self._crosses(order, price):
                self._fill_all(order, order.price or price, is_maker=True, now_ms=now_ms)
        return self.trades[before:]

    def fill(self, order: FakeOrder, qty: Decimal, price: Decimal, now_ms: int) -> FakeTrade:
        """Fill `qty` of `order` at `price` (a test's partial fill)."""
        trade = self._trade(order, qty, price, is_maker=order.type == "limit", now_ms=now_ms)
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        return trade

    def _fill_all(self, order: FakeOrder, price: Decimal, *, is_maker: bool, now_ms: int) -> None:
        if order.qty is None:  # a market buy for a quote amount: as much base as it buys
            step = _step(order.symbol)
            order.qty = ((order.quote_qty or 0) / price / step).to_integral_value(ROUND_DOWN) * step
        self._trade(order, order.remaining, price, is_maker=is_maker, now_ms=now_ms)
        order.status = "FILLED"

    def _trade(
        self, order: FakeOrder, qty: Decimal, price: Decimal, *, is_maker: bool, now_ms: int
    ) -> FakeTrade:
        base, quote = ASSETS[order.symbol]
        received, fee_asset = (qty, base) if order.side == "buy" else (qty * price, quote)
        fee = (received * self.fee_rate).quantize(FEE_QUANTUM)
        sign = 1 if order.side == "buy" else -1
        self._credit(base, sign * qty - (fee if order.side == "buy" else 0))
        self._credit(quote, -sign * qty * price - (fee if order.side == "sell" else 0))
        trade = FakeTrade(
            self._next_trade_id, order.order_id, order.client_id, order.symbol, order.side,
            price, qty, fee, fee_asset, is_maker, now_ms,
        )  # fmt: skip
        self._next_trade_id += 1
        self.trades.append(trade)
        order.filled_qty += qty
        order.filled_quote += qty * price
        order.fee += fee
        order.updated_ms = now_ms
        return trade

    def _credit(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balances.get(asset, Decimal(0)) + amount

    def _check_funds(self, order: FakeOrder, price: Decimal | None) -> None:
        base, quote = ASSETS[order.symbol]
        if order.quote_qty is not None:
            needed, asset = order.quote_qty, quote
        elif order.side == "sell":
            needed, asset = order.qty or Decimal(0), base
        else:
            needed, asset = (order.qty or Decimal(0)) * (price or 0), quote
        notional = order.quote_qty or ((order.qty or 0) * price if price else None)
        if notional is not None and notional < MIN_NOTIONAL:
            raise OrderRefused("notional")
        if needed > self.free(asset):
            raise OrderRefused("insufficient")

    @staticmethod
    def _check_grid(order: FakeOrder) -> None:
        _, _, _, tick, step = next(row for row in SPOT_SYMBOLS if row[0] == order.symbol)
        off_grid = (order.qty is not None and order.qty % Decimal(step) != 0) or (
            order.price is not None and order.price % Decimal(tick) != 0
        )
        if off_grid or (order.type == "limit" and (order.qty is None or order.price is None)):
            raise OrderRefused("precision")

    @staticmethod
    def _crosses(order: FakeOrder, price: Decimal) -> bool:
        limit = order.price or Decimal(0)
        return price <= limit if order.side == "buy" else price >= limit


def _step(symbol: str) -> Decimal:
    return next(Decimal(step) for name, _, _, _, step in SPOT_SYMBOLS if name == symbol)
