"""`CcxtBroker`: the Broker protocol on a real exchange API, through a ccxt client.

Exactly once (reliability.md §3, ORD-1..6):
- every create carries the request's client order id (ccxt's `clientOrderId` param:
  Binance newClientOrderId, Bybit orderLinkId), and an id is sent at most once: an id
  this broker sent, or was told of with `remember`, is never sent again (ORD-4; Binance
  takes a reused id once the first order has closed);
- a create without a definite answer (timeout, dropped connection, 5xx, 418/429, a
  duplicate-id refusal) is resolved by looking the id up, never by re-sending (ORD-2);
- "not found" right after a create proves nothing (Binance hides new orders for seconds
  to minutes), so that look-up is retried with back-off for `LookupPolicy.window_s`;
  still nothing, and the order comes back UNKNOWN for the reconciler (ORD-3);
- a cancel returns the order as the exchange finally has it: a fill that won the race
  is kept (ORD-6).

ccxt floats become `Decimal(str(x))` here, and ccxt's messages never leave this module
(they carry URLs, signed queries and response bodies); only ccxt class names do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from apps.engine.brokers.base import BrokerRejection
from apps.engine.brokers.ccxt_live import (
    ExchangeUnavailableError,
    broker_error,
    exchange_call,
    retry_after,
)
from apps.engine.brokers.ccxt_live import close as client_close
from apps.engine.clock import Clock
from apps.engine.types import (
    ZERO,
    Balance,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    TradingValueError,
    split_symbol,
)

RawOrder = Mapping[str, Any]

# Definite refusals: the exchange answered and placed nothing (reliability.md §2.1).
_REFUSALS = (
    ccxt.InsufficientFunds,
    ccxt.BadSymbol,
    ccxt.BadRequest,
    ccxt.InvalidOrder,
    ccxt.AuthenticationError,
    ccxt.OperationRejected,
    ccxt.NotSupported,
    ccxt.ArgumentsRequired,
)
# ccxt raises InvalidOrder for these "already exists" answers; they mean: look it up.
_DUPLICATE_MARKERS = ("Duplicate order sent", "OrderLinkedID is duplicate", "110072", "-4116")
_STATUSES = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


@dataclass(frozen=True)
class LookupPolicy:
    """How long an order that cannot be seen yet is looked for, and how often.

    Binance has hidden existing orders for 22-62 s (freqtrade #4403/#4991), so the
    default window is two minutes; delays double from `first_delay_s` up to `max_delay_s`.
    """

    window_s: float = 120.0
    first_delay_s: float = 0.5
    max_delay_s: float = 15.0

    def __post_init__(self) -> None:
        # A zero delay would never use up the window: the look-up would spin forever.
        if not (self.window_s >= 0 and 0 < self.first_delay_s <= self.max_delay_s):
            raise TradingValueError(
                "the look-up needs window_s >= 0 and 0 < first_delay_s <= max_delay_s",
                "first_delay_s",
            )


class CcxtBroker:
    """The Broker protocol for one account on one exchange, through `client`.

    `client` comes from `ccxt_live.client_build` (no ccxt retries). `clock` stamps orders
    whose time the exchange did not report; `sleep` waits between look-ups (tests pass the
    fake exchange's clock). One broker serves one worker; it is not thread-safe.
    """

    def __init__(
        self,
        client: Any,
        *,
        clock: Clock,
        lookup: LookupPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._clock = clock
        self._lookup = lookup or LookupPolicy()
        self._sleep = sleep
        self._symbols: dict[str, str] = {}
        self._requests: dict[str, OrderRequest] = {}
        self._refused: dict[str, Order] = {}
        # Fills an order's create answer listed in full (Binance FULL responses), so
        # `fills` needs no trade-list call for an order that filled at once.
        self._answered_fills: dict[str, tuple[Fill, ...]] = {}
        self._markets_loaded = False
        client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False

    def close(self) -> None:
        """Release the client's HTTP session."""
        client_close(self._client)

    # --- the Broker protocol -------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Order:
        """Send `request` once; an id this broker knows is looked up, never re-sent.

        Raises `BrokerRejection` (with the field at fault) when the exchange refused the
        order outright; returns an UNKNOWN order when it could not be found in time."""
        cid = request.client_order_id
        if cid in self._symbols:
            return self.resolve_order(cid)
        amounts = self._rounded(request)
        self._symbols[cid] = request.symbol
        self._requests[cid] = request
        try:
            raw: RawOrder | None = self._create(request, amounts)
        except _REFUSALS as exc:
            if not _is_duplicate(exc):
                raise self._refusal(request, exc) from None
            raw = None  # an order with this id exists already
        except Exception:  # the send may have landed: look it up, never re-send
            raw = None
        if raw is None:
            return self.resolve_order(cid)
        return self._accepted(request, raw)

    def cancel_order(self, client_order_id: str) -> Order:
        """Ask for a cancel, then return the order as the exchange now has it (filled,
        partly filled or canceled). An id this broker does not know is a rejection."""
        if client_order_id in self._refused:
            return self._refused[client_order_id]
        symbol = self._symbol_of(client_order_id)
        try:
            self._client.cancel_order(None, symbol, self._id_params(client_order_id))
        except Exception as exc:  # already final, not visible yet, or lost: the look-up tells
            if isinstance(exc, ccxt.AuthenticationError):
                raise BrokerRejection("The exchange refused the API key.") from None
        return self.resolve_order(client_order_id)

    def get_order(self, client_order_id: str) -> Order | None:
        """The order as the exchange has it now, or None when this broker never sent or
        remembered the id, or the exchange does not know it (yet)."""
        if client_order_id in self._refused:
            return self._refused[client_order_id]
        symbol = self._symbols.get(client_order_id)
        if symbol is None:
            return None
        raw = self._look_up(client_order_id, symbol, patient=False)
        return None if raw is None else self._order(client_order_id, raw)

    def open_orders(self, symbol: str | None = None) -> tuple[Order, ...]:
        self._load_markets()
        orders = []
        for raw in exchange_call(lambda: self._client.fetch_open_orders(symbol)):
            cid = str(raw.get("clientOrderId") or raw["id"])
            self.remember(cid, str(raw["symbol"]))  # the exchange shows it: it may be cancelled
            orders.append(self._order(cid, raw))
        return tuple(sorted(orders, key=lambda order: order.placed_at))

    def balances(self) -> dict[str, Balance]:
        raw = exchange_call(self._client.fetch_balance)
        used = raw.get("used") or {}
        return {
            asset: Balance(asset, Decimal(str(total)), _decimal(used.get(asset)) or ZERO)
            for asset, total in (raw.get("total") or {}).items()
            if total
        }

    # --- beyond the protocol -------------------------------------------------------------

    def remember(self, client_order_id: str, symbol: str) -> None:
        """Take an id sent by an earlier process (an Order row) as known: `get_order`,
        `cancel_order` and `fills` can find it, and `place_order` never re-sends it."""
        self._symbols.setdefault(client_order_id, symbol)

    def resolve_order(self, client_order_id: str) -> Order:
        """Look the id up until found or the look-up window ends; UNKNOWN if not found."""
        if client_order_id in self._refused:
            return self._refused[client_order_id]
        symbol = self._symbol_of(client_order_id)
        raw = self._look_up(client_order_id, symbol, patient=True)
        if raw is not None:
            return self._order(client_order_id, raw)
        return self._unknown(client_order_id, symbol)

    def fills(self, client_order_id: str) -> tuple[Fill, ...]:
        """The order's executions from the exchange's trade list, one per trade id, in
        the order they happened. An order the exchange cannot show yet has none."""
        if client_order_id in self._answered_fills:
            return self._answered_fills[client_order_id]
        symbol = self._symbol_of(client_order_id)
        raw = self._look_up(client_order_id, symbol, patient=False)
        if raw is None:
            return ()
        order_id = str(raw["id"])
        trades = exchange_call(
            lambda: self._client.fetch_my_trades(symbol, None, None, {"orderId": order_id})
        )
        unique = {str(t["id"]): t for t in trades if str(t.get("order")) == order_id}
        fills = [_fill(client_order_id, symbol, trade) for trade in unique.values()]
        return tuple(sorted(fills, key=lambda fill: fill.sort_key))

    # --- sending -------------------------------------------------------------------------

    def _rounded(self, request: OrderRequest) -> dict[str, str | None]:
        """Amounts on the market's grid, as the strings ccxt sends; nothing sent yet."""
        if request.type not in ("market", "limit"):
            raise BrokerRejection(
                f"{self._client.id} orders of type {request.type} are not supported yet.", "type"
            )
        self._load_markets()
        if request.symbol not in self._client.markets:
            raise BrokerRejection(f"{self._client.id} does not list {request.symbol}.", "symbol")
        rounded: dict[str, str | None] = {}
        for name, value, rounder in (
            ("qty", request.qty, self._client.amount_to_precision),
            ("limit_price", request.limit_price, self._client.price_to_precision),
            ("quote_qty", request.quote_qty, self._client.cost_to_precision),
        ):
            try:
                rounded[name] = None if value is None else rounder(request.symbol, str(value))
            except ccxt.BaseError:
                raise BrokerRejection(
                    f"{name} {value} is below the market's precision.", name
                ) from None
            if rounded[name] is not None and Decimal(str(rounded[name])) <= 0:
                raise BrokerRejection(f"{name} {value} rounds to zero on this market.", name)
        return rounded

    def _create(self, request: OrderRequest, amounts: Mapping[str, str | None]) -> RawOrder:
        params = {"clientOrderId": request.client_order_id}
        if request.quote_qty is not None:
            create = self._client.create_market_buy_order_with_cost
            return create(request.symbol, amounts["quote_qty"], params)  # type: ignore[no-any-return]
        return self._client.create_order(  # type: ignore[no-any-return]
            request.symbol,
            request.type,
            request.side,
            amounts["qty"],
            amounts["limit_price"],
            params,
        )

    def _accepted(self, request: OrderRequest, raw: RawOrder) -> Order:
        # Bybit acknowledges with ids only; one look-up fills in the rest when it can.
        cid = request.client_order_id
        if raw.get("status") is None:
            found = self._look_up(cid, request.symbol, patient=False, quiet=True)
            return self._order(cid, found) if found else Order.accepted(request, self._clock.now())
        order = self._order(cid, raw)
        self._answered_fills_keep(request, raw, order)
        return order

    def _answered_fills_keep(self, request: OrderRequest, raw: RawOrder, order: Order) -> None:
        """Keep the create answer's trades when they are the whole of a filled order."""
        trades = raw.get("trades") or ()
        if order.status is not OrderStatus.FILLED or not trades:
            return
        if not all(t.get("id") and t.get("amount") and t.get("price") for t in trades):
            return
        at = raw.get("timestamp")
        fills = tuple(
            _fill(
                request.client_order_id,
                request.symbol,
                {**t, "side": t.get("side") or request.side, "timestamp": t.get("timestamp") or at},
            )
            for t in trades
        )
        if at is not None and sum((f.qty for f in fills), ZERO) == order.filled_qty:
            self._answered_fills[request.client_order_id] = fills

    def _refusal(self, request: OrderRequest, exc: Exception) -> BrokerRejection:
        reason, field = _refusal_words(exc, request)
        message = f"{self._client.id} refused the order: {reason} ({type(exc).__name__})."
        self._refused[request.client_order_id] = Order.accepted(request, self._clock.now()).closed(
            OrderStatus.REJECTED, message
        )
        return BrokerRejection(message, field)

    # --- looking up ----------------------------------------------------------------------

    def _look_up(
        self, cid: str, symbol: str, *, patient: bool, quiet: bool = False
    ) -> RawOrder | None:
        """The exchange's order with this client id, retried with back-off.

        Transient failures (network, 5xx, 418/429, honouring Retry-After) are retried
        within the window; so is "not found" when `patient`. `quiet` gives up at once."""
        waited, delay = 0.0, self._lookup.first_delay_s
        while True:
            pause = delay
            try:
                found = self._look_up_once(cid, symbol)
            except ccxt.OperationFailed as exc:
                pause = max(delay, retry_after(self._client, exc) or 0.0)
                if quiet:
                    return None
            else:
                if found is not None or not patient:
                    return found
            if waited >= self._lookup.window_s:
                if patient:
                    return None
                raise ExchangeUnavailableError(
                    f"{self._client.id} could not be asked about order {cid}. Try again later."
                )
            self._sleep(pause)
            waited += pause
            delay = min(delay * 2, self._lookup.max_delay_s)

    def _look_up_once(self, cid: str, symbol: str) -> RawOrder | None:
        client = self._client
        try:
            if client.id == "bybit":
                # Bybit's fetch_order needs the exchange's id; open, then closed, by link id.
                params = self._id_params(cid)
                found = client.fetch_open_orders(symbol, None, None, params)
                found = found or client.fetch_canceled_and_closed_orders(symbol, None, None, params)
            else:
                found = [client.fetch_order(None, symbol, self._id_params(cid))]
        except ccxt.OrderNotFound:
            return None
        except ccxt.OperationFailed:
            raise  # transient (network, 5xx, 418/429): `_look_up` retries it
        except ccxt.BaseError as exc:
            # A refused key or request: our error tree only, never ccxt's text.
            raise broker_error(exc) from None
        return next((raw for raw in found if raw.get("clientOrderId") == cid), None)

    def _id_params(self, cid: str) -> dict[str, str]:
        name = {"binance": "origClientOrderId", "bybit": "orderLinkId"}.get(
            self._client.id, "clientOrderId"
        )
        return {name: cid}

    # --- mapping -------------------------------------------------------------------------

    def _order(self, cid: str, raw: RawOrder) -> Order:
        request = self._requests.get(cid)
        filled = _decimal(raw.get("filled")) or ZERO
        status = _STATUSES.get(str(raw.get("status")), OrderStatus.OPEN)
        if status is OrderStatus.OPEN and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        amount = _decimal(raw.get("amount"))
        timestamp = raw.get("timestamp")
        return Order(
            client_order_id=cid,
            symbol=str(raw.get("symbol") or self._symbols.get(cid)),
            side=request.side if request else raw["side"],
            type=request.type if request else raw.get("type") or "market",
            status=status,
            qty=amount if amount else (request.qty if request else None),
            placed_at=_utc(timestamp) if timestamp else self._clock.now(),
            quote_qty=request.quote_qty if request else None,
            limit_price=_decimal(raw.get("price")) if raw.get("type") == "limit" else None,
            filled_qty=filled,
            filled_quote=_decimal(raw.get("cost")) or ZERO,
            fills=len(raw.get("trades") or ()),
            tag=request.tag if request else "",
            reason=request.reason if request else "signal",
        )

    def _unknown(self, cid: str, symbol: str) -> Order:
        request = self._requests.get(cid)
        message = (
            f"{self._client.id} did not show order {cid} within "
            f"{self._lookup.window_s:g} s; it may still exist. The reconciler looks again."
        )
        if request is not None:
            return Order.accepted(request, self._clock.now()).closed(OrderStatus.UNKNOWN, message)
        return Order(cid, symbol, "buy", "market", OrderStatus.UNKNOWN, None, self._clock.now(),
                     message=message)  # fmt: skip

    def _symbol_of(self, cid: str) -> str:
        symbol = self._symbols.get(cid)
        if symbol is None:
            raise BrokerRejection(
                f"No order {cid} was sent through this broker.", "client_order_id"
            )
        return symbol

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            exchange_call(self._client.load_markets)
            self._markets_loaded = True


def _is_duplicate(exc: Exception) -> bool:
    if isinstance(exc, ccxt.DuplicateOrderId):
        return True
    return isinstance(exc, ccxt.InvalidOrder) and any(m in str(exc) for m in _DUPLICATE_MARKERS)


def _refusal_words(exc: Exception, request: OrderRequest) -> tuple[str, str | None]:
    size_field = "quote_qty" if request.quote_qty is not None else "qty"
    if isinstance(exc, ccxt.InsufficientFunds):
        return "insufficient funds", size_field
    if isinstance(exc, ccxt.BadSymbol):
        return "unknown symbol", "symbol"
    if isinstance(exc, ccxt.AuthenticationError):
        return "the API key was refused", None
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadRequest)):
        return "the size or price breaks the market's filters", size_field
    return "the request was refused", None


def _fill(cid: str, symbol: str, trade: Mapping[str, Any]) -> Fill:
    base, quote = split_symbol(symbol)
    fee = trade.get("fee") or {}
    fee_asset = fee.get("currency") or quote
    fee_cost = _decimal(fee.get("cost")) or ZERO
    if fee_asset not in (base, quote):
        # A fee paid in a third asset (BNB discounts) is not carried by a Fill yet.
        fee_asset, fee_cost = quote, ZERO
    trade_id = str(trade["id"])
    return Fill(
        fill_id=trade_id,
        client_order_id=cid,
        symbol=symbol,
        side=trade["side"],
        qty=Decimal(str(trade["amount"])),
        price=Decimal(str(trade["price"])),
        fee=fee_cost,
        fee_asset=fee_asset,
        liquidity="maker" if trade.get("takerOrMaker") == "maker" else "taker",
        time=_utc(trade["timestamp"]),
        seq=int(trade_id) if trade_id.isdigit() else 0,
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _utc(milliseconds: Any) -> datetime:
    return datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC)
