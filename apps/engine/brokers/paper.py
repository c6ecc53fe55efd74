"""The paper broker: an exchange simulated on closed candles, with the backtest's fill model.

The rules are simulator.py's and event_book.py's (DESIGN.md §3), in Decimals:
- an order placed at time T can fill from the first candle opening at or after T; a tick
  on bar t's close places at t+1's open time, so its market orders fill at t+1's open,
  buys at open x (1 + slippage), sells at open x (1 - slippage), with the taker fee;
- a slipped price is rounded to the tick against the trader (buys up, sells down), so
  every amount stays on the market's grid;
- a resting limit buy fills when a candle's low touches it, a sell when the high does, at
  the limit, or at the open when the candle opens through it; maker fee, no slippage;
- a stop_market sell triggers when the low reaches the stop, a buy when the high does,
  and fills at the stop (or the open when it gaps through) with slippage and taker fee;
- within a candle: market sells, market buys, limit buys, stops, limit sells;
- a buy never spends more than the free quote, a sell never sells more than it reserved;
- fees are a rate of the notional, rounded up to the fee asset's precision, charged in
  the quote (`fee_mode="quote"`, the backtest's way) or in the asset received
  (`"received"`, Binance's default: a buy pays in base);
- `max_volume_share` optionally caps each order at a share of the candle's volume; the
  rest stays open for the next candle (partial fills).
A quote_qty market buy spends at most quote_qty, fee included, at the fill price, exactly
as the backtest sizes an entry.

Restarts (PAPER-1): `to_dict`/`from_dict` keep open orders, the ledger and the last candle
per symbol. Feed the candles that closed while it was down to `on_candle`: resting orders
are re-evaluated on each and never assumed unfilled. A candle at or before the last one
seen does nothing, and fill ids are `{client_order_id}-{n}`, so a replay from an older
snapshot produces the same ids again and a fill never repeats downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Any, Literal

from apps.engine.brokers.base import BrokerRejection
from apps.engine.clock import Clock
from apps.engine.ledger import Ledger
from apps.engine.types import (
    DECIMAL_CONTEXT,
    ZERO,
    Balance,
    Candle,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderRequest,
    OrderStatus,
    TradingValueError,
    to_decimal,
)

FeeMode = Literal["quote", "received"]
ONE = Decimal(1)


@dataclass(frozen=True)
class PaperConfig:
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO
    slippage: Decimal = ZERO
    fee_mode: FeeMode = "quote"
    max_volume_share: Decimal | None = None
    # Final orders kept so a repeated client order id is still recognised; the app's
    # unique Order rows guard older ids.
    keep_closed: int = 500

    def __post_init__(self) -> None:
        for name in ("maker_fee", "taker_fee", "slippage"):
            if not ZERO <= getattr(self, name) < Decimal("0.1"):
                raise TradingValueError(f"{name} must be a fraction between 0 and 0.1", name)
        share = self.max_volume_share
        if share is not None and not ZERO < share <= 1:
            raise TradingValueError("max_volume_share must be in (0, 1]", "max_volume_share")
        if self.fee_mode not in ("quote", "received"):
            raise TradingValueError("fee_mode must be quote or received", "fee_mode")

    @classmethod
    def of(
        cls, *, fee: float, slippage: float = 0.0, maker_fee: float | None = None, **more: Any
    ) -> PaperConfig:
        """From a backtest's float settings (maker defaults to the single `fee`)."""
        return cls(
            maker_fee=to_decimal(fee if maker_fee is None else maker_fee, "maker_fee"),
            taker_fee=to_decimal(fee, "taker_fee"),
            slippage=to_decimal(slippage, "slippage"),
            **more,
        )


class PaperBroker:
    """A `Broker` and `MarketDriven` over one account's `Ledger` (module docstring)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        instruments: Mapping[str, Instrument],
        config: PaperConfig,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.instruments = dict(instruments)
        self.config = config
        self.clock = clock
        self.orders: dict[str, Order] = {}
        self.last_candle: dict[str, datetime] = {}
        self.seq = 0

    # -- Broker -------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> Order:
        known = self.orders.get(request.client_order_id)
        if known is not None:
            return known
        instrument = self.instruments.get(request.symbol)
        if instrument is None:
            raise BrokerRejection(f"{request.symbol} is not traded here", "symbol")
        if instrument.quote != self.ledger.quote:
            raise BrokerRejection(f"this account holds {self.ledger.quote}", "symbol")
        try:
            instrument.check_request(request)
        except TradingValueError as exc:
            raise BrokerRejection(str(exc), exc.field) from None
        with localcontext(DECIMAL_CONTEXT):
            order = Order.accepted(request, self.clock.now())
            asset, needed = self._reservation(order, instrument)
            free = self.free(asset)
            if needed > free:
                raise BrokerRejection(f"insufficient {asset}: needs {needed}, {free} free", "qty")
        self._store(order)
        return order

    def cancel_order(self, client_order_id: str) -> Order:
        order = self.orders.get(client_order_id)
        if order is None:
            raise BrokerRejection(f"no order {client_order_id}", "client_order_id")
        if not order.status.is_open:
            return order
        order = order.closed(OrderStatus.CANCELED)
        self._store(order)
        return order

    def get_order(self, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    def open_orders(self, symbol: str | None = None) -> tuple[Order, ...]:
        return tuple(
            o
            for o in self.orders.values()
            if o.status.is_open and (symbol is None or o.symbol == symbol)
        )

    def balances(self) -> dict[str, Balance]:
        with localcontext(DECIMAL_CONTEXT):
            locked: dict[str, Decimal] = {}
            for order in self.open_orders():
                asset, amount = self._reservation(order, self.instruments[order.symbol])
                locked[asset] = locked.get(asset, ZERO) + amount
            assets = set(self.ledger.balances()) | set(locked)
            return {
                asset: Balance(asset, self.ledger.balance(asset), locked.get(asset, ZERO))
                for asset in sorted(assets)
            }

    def free(self, asset: str) -> Decimal:
        """What `asset` has left after the open orders' reservations."""
        balance = self.balances().get(asset)
        return ZERO if balance is None else balance.free

    def _reservation(self, order: Order, instrument: Instrument) -> tuple[str, Decimal]:
        # What an open order holds back: a sell its base units, a limit buy its cost at the
        # limit (fee included when paid in quote), a quote_qty buy its budget. Market and
        # stop buys by qty reserve nothing: their price is unknown, the fill caps them.
        if order.side == "sell":
            return instrument.base, order.remaining or ZERO
        if order.quote_qty is not None:
            return instrument.quote, order.quote_qty
        if order.type == "limit" and order.limit_price is not None:
            remaining = order.remaining or ZERO
            rate = self.config.maker_fee if self.config.fee_mode == "quote" else ZERO
            return instrument.quote, remaining * order.limit_price * (ONE + rate)
        return instrument.quote, ZERO

    def _store(self, order: Order) -> None:
        # Assigning an existing key keeps its place, so orders stay oldest first.
        self.orders[order.client_order_id] = order
        if not order.status.is_final or len(self.orders) <= self.config.keep_closed:
            return
        final = [cid for cid, o in self.orders.items() if o.status.is_final]
        for cid in final[: max(0, len(final) - self.config.keep_closed)]:
            del self.orders[cid]

    # -- MarketDriven -------------------------------------------------------------------
    def on_candle(self, symbol: str, candle: Candle) -> tuple[Fill, ...]:
        if symbol not in self.instruments:
            raise BrokerRejection(f"{symbol} is not traded here", "symbol")
        last = self.last_candle.get(symbol)
        if last is not None and candle.time <= last:
            return ()
        self.last_candle[symbol] = candle.time
        with localcontext(DECIMAL_CONTEXT):
            run = _CandleRun(self, self.instruments[symbol], candle)
            return run.execute()

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "orders": [order.to_dict() for order in self.orders.values()],
            "last_candle": {s: t.isoformat() for s, t in self.last_candle.items()},
            "seq": self.seq,
            "ledger": self.ledger.to_dict(),
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        instruments: Mapping[str, Instrument],
        config: PaperConfig,
        clock: Clock,
    ) -> PaperBroker:
        if data.get("version") != 1:
            raise TradingValueError(f"unknown paper broker format {data.get('version')!r}")
        broker = cls(
            ledger=Ledger.from_dict(data["ledger"]),
            instruments=instruments,
            config=config,
            clock=clock,
        )
        for raw in data["orders"]:
            order = Order.from_dict(raw)
            broker.orders[order.client_order_id] = order
        broker.last_candle = {s: datetime.fromisoformat(t) for s, t in data["last_candle"].items()}
        broker.seq = int(data["seq"])
        return broker


class _CandleRun:
    """One candle's executions for one symbol, in the fill model's order."""

    def __init__(self, broker: PaperBroker, instrument: Instrument, candle: Candle) -> None:
        self.broker, self.instrument, self.candle = broker, instrument, candle
        self.config = broker.config
        self.fills: list[Fill] = []

    def execute(self) -> tuple[Fill, ...]:
        due = [
            o
            for o in self.broker.open_orders(self.instrument.symbol)
            if o.placed_at <= self.candle.time
        ]

        def of(kind: str, side: str) -> list[Order]:
            return [o for o in due if o.type == kind and o.side == side]

        for order in of("market", "sell") + of("market", "buy"):
            self.market(order)
        for order in of("limit", "buy"):
            self.limit(order)
        for order in of("stop_market", "sell") + of("stop_market", "buy"):
            self.stop(order)
        for order in of("limit", "sell"):
            self.limit(order)
        return tuple(self.fills)

    def market(self, order: Order) -> None:
        self.fill(order, self._slipped(order.side, self.candle.open), "taker")

    def limit(self, order: Order) -> None:
        limit, c = order.limit_price, self.candle
        assert limit is not None
        if order.side == "buy" and c.low <= limit:
            self.fill(order, min(c.open, limit), "maker")
        elif order.side == "sell" and c.high >= limit:
            self.fill(order, max(c.open, limit), "maker")

    def stop(self, order: Order) -> None:
        stop, c = order.stop_price, self.candle
        assert stop is not None
        if order.side == "sell" and c.low <= stop:
            self.fill(order, self._slipped("sell", min(c.open, stop)), "taker")
        elif order.side == "buy" and c.high >= stop:
            self.fill(order, self._slipped("buy", max(c.open, stop)), "taker")

    def _slipped(self, side: str, price: Decimal) -> Decimal:
        slip, tick = self.config.slippage, self.instrument.tick_size
        if side == "buy":
            return ((price * (ONE + slip)) / tick).to_integral_value(ROUND_UP) * tick
        return ((price * (ONE - slip)) / tick).to_integral_value(ROUND_DOWN) * tick

    def fill(self, order: Order, price: Decimal, liquidity: Liquidity) -> None:
        rate = self.config.maker_fee if liquidity == "maker" else self.config.taker_fee
        qty, starved = self._qty(order, price, rate)
        if qty <= 0:
            if order.type != "limit":
                self._close(order, OrderStatus.EXPIRED, self._why_nothing(order))
            return
        fee_asset, fee = self._fee(order.side, qty, price, rate)
        broker = self.broker
        broker.seq += 1
        fill = Fill(
            f"{order.client_order_id}-{order.fills + 1}",
            order.client_order_id,
            order.symbol,
            order.side,
            qty,
            price,
            fee,
            fee_asset,
            liquidity,
            self.candle.time,
            broker.seq,
        )
        applied = broker.ledger.apply_fill(fill)
        assert applied == "applied", f"the paper ledger refused its own fill: {applied}"
        self.fills.append(fill)
        updated = order.with_fill(fill, final=order.quote_qty is not None)
        if starved and updated.status.is_open:
            message = f"filled {updated.filled_qty} of {order.qty}: not enough {fee_asset}"
            updated = updated.closed(OrderStatus.EXPIRED, message)
        broker._store(updated)

    def _qty(self, order: Order, price: Decimal, rate: Decimal) -> tuple[Decimal, bool]:
        """The quantity this candle fills, and whether funds (not volume) cut it short."""
        instrument = self.instrument
        wanted = order.remaining
        share = self.config.max_volume_share
        cap = None if share is None else instrument.floor_qty(self.candle.volume * share)
        if cap is not None:
            wanted = cap if wanted is None else min(wanted, cap)
        if order.side == "sell":
            assert wanted is not None  # sells always have a qty
            return wanted, False
        reserved = self.broker._reservation(order, instrument)[1]
        free = self.broker.free(instrument.quote) + reserved
        budget = free if order.quote_qty is None else min(order.quote_qty, free)
        quote_rate = rate if self._fee_in_quote("buy") else ZERO
        affordable = instrument.floor_qty(budget / (price * (ONE + quote_rate)))
        # The fee rounds up, so step down until the whole cost fits the budget.
        while affordable > 0 and self._cost(affordable, price, rate) > budget:
            affordable -= instrument.step_size
        if wanted is None or affordable < wanted:
            return affordable, order.quote_qty is None
        return wanted, False

    def _cost(self, qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
        asset, fee = self._fee("buy", qty, price, rate)
        return qty * price + (fee if asset == self.instrument.quote else ZERO)

    def _fee_in_quote(self, side: str) -> bool:
        return self.config.fee_mode == "quote" or side == "sell"

    def _fee(self, side: str, qty: Decimal, price: Decimal, rate: Decimal) -> tuple[str, Decimal]:
        instrument = self.instrument
        if self._fee_in_quote(side):
            return instrument.quote, instrument.fee_amount(qty * price * rate, instrument.quote)
        return instrument.base, instrument.fee_amount(qty * rate, instrument.base)

    def _why_nothing(self, order: Order) -> str:
        if self.config.max_volume_share is not None and self.candle.volume == 0:
            return "the candle traded no volume"
        return f"not enough {self.instrument.quote} to buy one {self.instrument.step_size} step"

    def _close(self, order: Order, status: OrderStatus, message: str) -> None:
        self.broker._store(order.closed(status, message))
