"""The fake's state: balances, key permissions, candles, orders, faults, recorded requests."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

from tests.fakes.exchange.orders import FakeOrder, FakeTrade, OrderBook, OrderRefused

# (HTTP status, JSON body) or (HTTP status, JSON body, extra headers), or DROP_REPLY.
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[["FakeExchange", "RecordedRequest"], Reply]
# A handler returns this to close the connection without an answer (the order stands).
DROP_REPLY: Reply = (0, None)

# One served candle: (open time in ms, open, high, low, close, volume) as the CSV's text.
Kline = tuple[int, str, str, str, str, str]

# Interval names per exchange for the timeframes the shipped CSVs use.
BINANCE_INTERVALS = {"5m": "5m", "1h": "1h", "1d": "1d"}
BYBIT_INTERVALS = {"5m": "5", "1h": "60", "1d": "D"}
TIMEFRAME_MS = {"5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
KLINE_PATHS = ("/api/v3/klines", "/v5/market/kline")

Endpoint = Literal["create", "lookup", "cancel", "trades"]
FaultKind = Literal["drop", "5xx", "5xx_after_accept", "429"]


@dataclass
class FakeKeyPermissions:
    can_withdraw: bool = False
    ip_restricted: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str

    def params(self) -> dict[str, str]:
        """Query, form body and JSON body merged into one flat dict of strings."""
        merged = {name: values[0] for name, values in self.query.items()}
        if self.body.startswith("{"):
            merged.update({name: str(value) for name, value in json.loads(self.body).items()})
        elif self.body:
            merged.update({name: values[0] for name, values in parse_qs(self.body).items()})
        return merged


@dataclass
class Fault:
    """The next `times` calls to `endpoint` fail as `kind` says.

    drop: the order is accepted, then the connection closes with no answer (after
    `FakeExchange.drop_delay_s`; set it past the client timeout for a true timeout).
    5xx: HTTP 503 before anything happens. 5xx_after_accept: accepted, then 503.
    429: refused with HTTP 429 and Retry-After.
    """

    kind: FaultKind
    endpoint: Endpoint = "create"
    times: int = 1


@dataclass
class FakeExchange:
    book: OrderBook = field(
        default_factory=lambda: OrderBook(
            balances={"USDT": Decimal("10000"), "BTC": Decimal("0.5")}
        )
    )
    key_permissions: FakeKeyPermissions = field(default_factory=FakeKeyPermissions)
    fail_auth: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    base_url: str = ""
    klines: dict[str, list[Kline]] = field(default_factory=dict)
    klines_timeframe: str = "1h"
    kline_rate_limit: int = 0
    kline_retry_after: int = 1
    kline_gap: tuple[int, int] | None = None
    kline_fail_after: int | None = None
    kline_pages_served: int = 0
    # Orders younger than this are invisible to every lookup (Binance -2013, freqtrade #4403).
    hide_new_orders_s: float = 0.0
    # A cancel arriving for an open order finds it filled first (ORD-6's race).
    fill_on_cancel: bool = False
    faults: list[Fault] = field(default_factory=list)
    drop_delay_s: float = 0.0
    retry_after_s: int = 1
    # Added to the wall clock: `advance` moves the fake's time without waiting.
    clock_offset_s: float = 0.0
    # Starting balances for every API key: each key then holds its own (see `keyed`).
    balances_per_key: dict[str, Decimal] | None = None
    key_balances: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def balances(self) -> dict[str, Decimal]:
        """Asset -> total held; what open orders lock is reported apart."""
        return self.book.balances

    @balances.setter
    def balances(self, value: dict[str, Decimal]) -> None:
        self.book.balances = value

    def now_ms(self) -> int:
        return int((time.time() + self.clock_offset_s) * 1000)

    @contextmanager
    def keyed(self, api_key: str) -> Iterator[None]:
        """A signed call on `api_key`'s own balances when `balances_per_key` is set, so
        accounts sharing the fake do not trade each other's funds. Orders stay on one book:
        a resting limit filled later by `price_set` moves the shared balances."""
        if self.balances_per_key is None:
            yield
            return
        with self.lock:
            shared = self.book.balances
            own = self.key_balances.setdefault(api_key, dict(self.balances_per_key))
            self.book.balances = own
            try:
                yield
            finally:
                self.book.balances = shared

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on; a broker's injected `sleep` in tests."""
        with self.lock:
            self.clock_offset_s += seconds

    def price_set(self, symbol: str, price: Decimal | str) -> list[FakeTrade]:
        """Set the market price of `symbol` ("BTCUSDT"), filling resting limits it reaches."""
        with self.lock:
            return self.book.price_set(symbol, Decimal(price), self.now_ms())

    def fault(self, kind: FaultKind, endpoint: Endpoint = "create", times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(kind, endpoint, times))

    def fault_take(self, endpoint: Endpoint) -> FaultKind | None:
        """Consume one pending fault for `endpoint`, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.endpoint == endpoint and fault.times > 0:
                    fault.times -= 1
                    return fault.kind
            return None

    def visible(self, order: FakeOrder | None) -> FakeOrder | None:
        """`order`, unless it is too new to be seen (hide_new_orders_s)."""
        if order is None or self.now_ms() - order.created_ms < self.hide_new_orders_s * 1000:
            return None
        return order

    def order_find(self, params: dict[str, str], client_id_param: str) -> FakeOrder | None:
        """The order a request names by exchange id ("orderId") or by client id."""
        order_id = params.get("orderId")
        return self.book.find(
            params.get("symbol", ""),
            client_id=params.get(client_id_param),
            order_id=int(order_id) if order_id else None,
        )

    def order_cancel(self, order: FakeOrder | None) -> FakeOrder:
        """Cancel `order`; `OrderRefused("not_found")` when it is unknown or closed.

        With `fill_on_cancel` the order fills completely first, and the cancel fails."""
        if order is None:
            raise OrderRefused("not_found")
        if self.fill_on_cancel and order.is_open:
            self.book.fill(order, order.remaining, order.price or Decimal(0), self.now_ms())
        return self.book.cancel(order, self.now_ms())

    def orders_for(self, client_id: str) -> list[FakeOrder]:
        """Every order the fake holds with this client id (ORD-1: exactly one)."""
        with self.lock:
            return [order for order in self.book.orders if order.client_id == client_id]

    def create_requests(self, client_id: str | None = None) -> list[RecordedRequest]:
        """Order-create requests received (both venues), optionally for one client id."""
        with self.lock:
            creates = [r for r in self.requests if r.path in ("/api/v3/order", "/v5/order/create")]
            creates = [r for r in creates if r.method == "POST"]
        if client_id is None:
            return creates
        return [
            r for r in creates
            if client_id in (r.params().get("newClientOrderId"), r.params().get("orderLinkId"))
        ]  # fmt: skip

    def klines_load(self, symbol: str, path: str | Path, timeframe: str) -> None:
        """Serve the candles of a `timestamp,open,high,low,close,volume` CSV for `symbol`."""
        rows: list[Kline] = []
        with Path(path).open(newline="") as handle:
            for row in csv.DictReader(handle):
                opened = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
                rows.append(
                    (
                        int(opened.timestamp() * 1000),
                        row["open"],
                        row["high"],
                        row["low"],
                        row["close"],
                        row["volume"],
                    )
                )
        self.klines[symbol] = rows
        self.klines_timeframe = timeframe

    def kline_requests(self) -> list[RecordedRequest]:
        """Kline requests received so far (both exchanges), in order."""
        with self.lock:
            return [request for request in self.requests if request.path in KLINE_PATHS]

    def klines_select(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[Kline] | None:
        """Candles to serve, oldest first; None when the knobs say to fail instead."""
        with self.lock:
            if self.kline_fail_after is not None and self.kline_pages_served >= (
                self.kline_fail_after
            ):
                return None
            self.kline_pages_served += 1
        if interval != self.klines_timeframe:
            return []
        rows = [
            row
            for row in self.klines.get(symbol, [])
            if (start is None or row[0] >= start)
            and (end is None or row[0] <= end)
            and not (self.kline_gap and self.kline_gap[0] <= row[0] <= self.kline_gap[1])
        ]
        return rows[:limit]

    def kline_throttled(self) -> bool:
        with self.lock:
            if self.kline_rate_limit > 0:
                self.kline_rate_limit -= 1
                return True
            return False

    def paths(self) -> list[str]:
        """Paths requested so far, in order."""
        with self.lock:
            return [request.path for request in self.requests]

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)


def now_ms() -> int:
    return int(time.time() * 1000)


def query_int(request: RecordedRequest, name: str) -> int | None:
    value = request.params().get(name, "")
    return int(value) if value else None


def interval_of(table: dict[str, str], value: str) -> str:
    return next((code for code, name in table.items() if name == value), "?" + value)


def faulty(endpoint: Endpoint, handler: Handler, server_error: Any, rate_limited: Any) -> Handler:
    """`handler` behind the fake's fault knobs, with the venue's error bodies.

    A fault applies to the next matching request; the lock makes a create and its
    fault one step, so concurrent clients cannot slip between them."""

    def reply(fake: FakeExchange, request: RecordedRequest) -> Reply:
        with fake.lock:
            kind = fake.fault_take(endpoint)
            if kind == "5xx":
                return 503, server_error
            if kind == "429":
                return 429, rate_limited, {"Retry-After": str(fake.retry_after_s)}
            answer = handler(fake, request)
        if kind == "drop":
            return DROP_REPLY
        if kind == "5xx_after_accept":
            return 503, server_error
        return answer

    return reply
