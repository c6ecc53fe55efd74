"""Decimal value types for trading: instruments, order requests, orders, fills, balances.

`strategies/base.py` holds the strategy side (floats: `OrderIntent`, `Position`); this
module holds the broker and ledger side, where every price, quantity and amount is a
`Decimal`. Floats cross over once, as `Decimal(str(x))` (`to_decimal`).

Symbols are ccxt's "BASE/QUOTE" (`BTC/USDT`). Times are tz-aware UTC.
Every type is frozen; the `to_dict`/`from_dict` pairs give plain JSON values (Decimals and
datetimes as strings) so the app can persist them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import (
    ROUND_DOWN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from enum import StrEnum
from typing import Any, Literal

from apps.engine.candles import CandleArrays
from apps.engine.clock import to_datetime
from apps.engine.plain import from_plain, to_plain

Price = Decimal
Quantity = Decimal
Money = Decimal
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop_market"]
Liquidity = Literal["maker", "taker"]
# Why an order exists; the strategy's reasons plus the kill switch's own flatten orders.
OrderReason = Literal[
    "signal", "take_profit", "stop_loss", "trailing_stop", "max_drawdown", "kill_switch"
]

# Enough digits for 10^12 quote units at 10^-18 resolution times a fee rate, so products
# of quantised prices, quantities and rates are exact; traps make NaN/inf/x/0 raise.
DECIMAL_CONTEXT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
ZERO = Decimal(0)
OHLCV = ("open", "high", "low", "close", "volume")
# Binance's newClientOrderId rule; Bybit's orderLinkId allows the same characters.
CLIENT_ORDER_ID = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")


class TradingValueError(ValueError):
    """A trading value is malformed; `field` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def to_decimal(value: float | int | str | Decimal, field: str = "value") -> Decimal:
    """Return `value` as a finite Decimal; a float goes through its shortest repr."""
    if isinstance(value, bool):
        raise TradingValueError(f"{field} must be a number", field)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise TradingValueError(f"{field} must be a number, got {value!r}", field) from None
    if not number.is_finite():
        raise TradingValueError(f"{field} must be finite, got {value!r}", field)
    return number


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return (base, quote) of a "BASE/QUOTE" symbol."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise TradingValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}", "symbol")
    return base, quote


class OrderStatus(StrEnum):
    """Where an order is. PENDING_SUBMIT and UNKNOWN are the app's (DESIGN.md §4): written
    before the send, and after an ambiguous reply. A broker answers with the others."""

    PENDING_SUBMIT = "PENDING_SUBMIT"
    UNKNOWN = "UNKNOWN"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)

    @property
    def is_final(self) -> bool:
        return self in (self.FILLED, self.CANCELED, self.REJECTED, self.EXPIRED)


@dataclass(frozen=True)
class Candle:
    """One closed candle; `time` is its UTC open time, prices and volume are Decimals."""

    time: datetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity = ZERO

    @classmethod
    def at(cls, candles: CandleArrays, index: int) -> Candle:
        """Candle `index` of a float series, each number as `Decimal(str(x))`."""
        return cls(
            to_datetime(candles.time[index]),
            *(Decimal(str(float(candles.field(name)[index]))) for name in OHLCV),
        )

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise TradingValueError("candle time must be tz-aware UTC", "time")
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise TradingValueError("candle prices must satisfy low <= open, close <= high")


@dataclass(frozen=True)
class Instrument:
    """A spot market's trading rules.

    `tick_size` is the price increment, `step_size` the quantity increment, `min_qty` and
    `min_notional` (qty x price, in quote) the smallest order; `quote_precision` is the
    increment of quote amounts (fees and balances), `base_precision` of base fees.
    """

    symbol: str
    tick_size: Price
    step_size: Quantity
    min_notional: Money = ZERO
    min_qty: Quantity = ZERO
    quote_precision: Money = Decimal("0.00000001")
    base_precision: Quantity | None = None

    def __post_init__(self) -> None:
        split_symbol(self.symbol)
        for name in ("tick_size", "step_size", "quote_precision"):
            if not getattr(self, name) > 0:
                raise TradingValueError(f"{name} must be positive", name)
        if self.min_notional < 0 or self.min_qty < 0:
            raise TradingValueError("minimums cannot be negative", "min_notional")

    @property
    def base(self) -> str:
        return split_symbol(self.symbol)[0]

    @property
    def quote(self) -> str:
        return split_symbol(self.symbol)[1]

    @property
    def base_fee_precision(self) -> Quantity:
        return self.step_size if self.base_precision is None else self.base_precision

    def floor_qty(self, qty: Quantity) -> Quantity:
        """`qty` rounded down to the step size (never more than asked)."""
        return (qty / self.step_size).to_integral_value(ROUND_DOWN) * self.step_size

    def fee_amount(self, amount: Decimal, asset: str) -> Decimal:
        """A fee rounded up to its asset's precision (a fee is never under-charged)."""
        quantum = self.quote_precision if asset == self.quote else self.base_fee_precision
        return (amount / quantum).to_integral_value(ROUND_UP) * quantum

    def check_request(self, request: OrderRequest) -> None:
        """Raise `TradingValueError` naming the field when `request` breaks a rule."""
        if request.symbol != self.symbol:
            raise TradingValueError(f"order is for {request.symbol}, not {self.symbol}", "symbol")
        for name, value, step in (
            ("qty", request.qty, self.step_size),
            ("limit_price", request.limit_price, self.tick_size),
            ("stop_price", request.stop_price, self.tick_size),
        ):
            if value is not None and value % step != 0:
                raise TradingValueError(f"{name} {value} is not a multiple of {step}", name)
        if request.qty is not None and request.qty < self.min_qty:
            raise TradingValueError(f"qty {request.qty} is below the minimum {self.min_qty}", "qty")
        price = request.limit_price or request.stop_price
        notional = request.quote_qty
        if notional is None and request.qty is not None and price is not None:
            notional = request.qty * price
        if notional is not None and notional < self.min_notional:
            raise TradingValueError(
                f"order value {notional} is below the minimum notional {self.min_notional}",
                "qty",
            )


@dataclass(frozen=True)
class OrderRequest:
    """What is sent to a broker: one order, named by a unique `client_order_id`.

    Give `qty` (base units) or, for market buys only, `quote_qty`: spend at most this much
    quote, fee included (Binance's quoteOrderQty). `limit_price` is required for limit
    orders and `stop_price` for stop orders. `tag` is the strategy's order tag (cancels
    name it); `reason` says why the order exists.
    """

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType = "market"
    qty: Quantity | None = None
    quote_qty: Money | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    tag: str = ""
    reason: OrderReason = "signal"

    def __post_init__(self) -> None:
        if not CLIENT_ORDER_ID.match(self.client_order_id):
            raise TradingValueError(
                "client_order_id must be 1-36 characters of letters, digits and .:/_-",
                "client_order_id",
            )
        split_symbol(self.symbol)
        if self.side not in ("buy", "sell"):
            raise TradingValueError(f"side must be buy or sell, got {self.side!r}", "side")
        if self.type not in ("market", "limit", "stop_market"):
            raise TradingValueError(f"unknown order type {self.type!r}", "type")
        if (self.qty is None) == (self.quote_qty is None):
            raise TradingValueError("give exactly one of qty and quote_qty", "qty")
        if self.quote_qty is not None and (self.type != "market" or self.side != "buy"):
            raise TradingValueError("quote_qty is only for market buys", "quote_qty")
        for name in ("qty", "quote_qty", "limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None and not (value.is_finite() and value > 0):
                raise TradingValueError(f"{name} must be a positive number", name)
        if (self.type == "limit") != (self.limit_price is not None):
            raise TradingValueError("limit_price is required for limit orders only", "limit_price")
        if (self.type == "stop_market") != (self.stop_price is not None):
            raise TradingValueError("stop_price is required for stop orders only", "stop_price")


@dataclass(frozen=True)
class Fill:
    """One execution of an order, unique by `fill_id` (the exchange's trade id).

    `seq` orders fills that share a timestamp (a paper broker's or exchange's trade
    sequence). `fee` is charged in `fee_asset`: the quote, or the base (which then comes
    out of the position).
    """

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Quantity
    price: Price
    fee: Money
    fee_asset: str
    liquidity: Liquidity
    time: datetime
    seq: int = 0

    def __post_init__(self) -> None:
        base, quote = split_symbol(self.symbol)
        if not self.fill_id:
            raise TradingValueError("fill_id is required", "fill_id")
        if not (self.qty > 0 and self.price > 0 and self.fee >= 0):
            raise TradingValueError("a fill needs qty > 0, price > 0 and fee >= 0", "qty")
        if self.fee_asset not in (base, quote):
            raise TradingValueError(f"fee asset must be {base} or {quote}", "fee_asset")
        if self.time.tzinfo is None:
            raise TradingValueError("fill time must be tz-aware UTC", "time")

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        """The order fills happened in, whatever order they arrive in."""
        return (self.time, self.seq, self.fill_id)

    @property
    def notional(self) -> Money:
        return self.qty * self.price

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fill:
        return from_plain(cls, data)


@dataclass(frozen=True)
class Order:
    """A broker's view of one order. `filled_qty` is the sum of its fills and
    `filled_quote` the sum of their qty x price, so both are independent of the order the
    fills arrive in. A quote_qty order learns its `qty` when it fills."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    qty: Quantity | None
    placed_at: datetime
    quote_qty: Money | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    filled_qty: Quantity = ZERO
    filled_quote: Money = ZERO
    fills: int = 0
    tag: str = ""
    reason: OrderReason = "signal"
    # Why the broker refused, expired or cut the order, in words for the bot log.
    message: str = ""

    @classmethod
    def accepted(cls, request: OrderRequest, placed_at: datetime) -> Order:
        return cls(
            request.client_order_id,
            request.symbol,
            request.side,
            request.type,
            OrderStatus.OPEN,
            request.qty,
            placed_at,
            quote_qty=request.quote_qty,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            tag=request.tag,
            reason=request.reason,
        )

    @property
    def remaining(self) -> Quantity | None:
        return None if self.qty is None else self.qty - self.filled_qty

    @property
    def average_price(self) -> Price | None:
        return self.filled_quote / self.filled_qty if self.filled_qty > 0 else None

    def with_fill(self, fill: Fill, *, final: bool = False) -> Order:
        """The order after `fill`; `final` closes a quote_qty order at what it got."""
        filled = self.filled_qty + fill.qty
        qty = filled if self.qty is None and final else self.qty
        if qty is not None and filled > qty:
            raise TradingValueError(f"fill {fill.fill_id} overfills {self.client_order_id}")
        done = qty is not None and filled == qty
        return replace(
            self,
            qty=qty,
            filled_qty=filled,
            filled_quote=self.filled_quote + fill.notional,
            fills=self.fills + 1,
            status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
        )

    def closed(self, status: OrderStatus, message: str = "") -> Order:
        return replace(self, status=status, message=message)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        return from_plain(cls, data)


@dataclass(frozen=True)
class Balance:
    """One asset's balance: `total` held, of which `locked` is reserved by open orders."""

    asset: str
    total: Money
    locked: Money = ZERO

    @property
    def free(self) -> Money:
        return self.total - self.locked
