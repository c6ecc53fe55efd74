"""The `Broker` protocol: what a bot tick needs from an exchange, paper or live.

A tick (DESIGN.md §4) writes each `OrderRequest` as an Order row in PENDING_SUBMIT with
its `client_order_id`, commits, then calls `place_order` once. Brokers are idempotent by
client order id: placing an id they already know returns that order and places nothing,
so a retried tick never doubles an order (ORD-1, ORD-4). Fills are unique by `fill_id`;
`Ledger.apply_fill` ignores a fill it has seen (PROP-1).

`PaperBroker` (brokers/paper.py) implements this protocol plus `MarketDriven`: it is the
exchange, so the caller feeds it each closed candle and it answers with the fills that
candle caused. A live broker learns its fills from the exchange instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from apps.engine.types import Balance, Candle, Fill, Order, OrderRequest


class BrokerRejection(Exception):
    """The broker refused a request outright; the message says why, for the bot log.

    `field` names the request field at fault when there is one. Nothing was placed.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Broker(Protocol):
    def place_order(self, request: OrderRequest) -> Order:
        """Place `request` once and return the order as the broker now sees it.

        A client order id seen before returns the known order unchanged (no second
        order). Raises `BrokerRejection` for a request the broker cannot take (unknown
        symbol, precision, insufficient funds); an accepted order that cannot execute
        later ends REJECTED or EXPIRED with a `message`.
        """
        ...

    def cancel_order(self, client_order_id: str) -> Order:
        """Cancel an open order and return it. An order that is already final (a fill won
        the race) comes back unchanged: the caller reads its status, never assumes."""
        ...

    def get_order(self, client_order_id: str) -> Order | None:
        """The order with this client id, or None when the broker has never seen it."""
        ...

    def open_orders(self, symbol: str | None = None) -> tuple[Order, ...]:
        """Orders still OPEN or PARTIALLY_FILLED, oldest first."""
        ...

    def balances(self) -> Mapping[str, Balance]:
        """Every asset held, with what open orders have locked."""
        ...


class MarketDriven(Protocol):
    def on_candle(self, symbol: str, candle: Candle) -> tuple[Fill, ...]:
        """Execute what `candle` triggers and return the new fills in execution order.

        A candle at or before the last one seen for `symbol` does nothing and returns ()
        (replays after a restart are harmless)."""
        ...
