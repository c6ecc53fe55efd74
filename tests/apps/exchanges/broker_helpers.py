"""Building `CcxtBroker`s on the real ccxt client against the loopback fake."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from apps.engine.brokers import ccxt_live
from apps.engine.brokers.ccxt_live import ClientSpec
from apps.engine.brokers.ccxt_orders import CcxtBroker, LookupPolicy
from apps.engine.clock import FixedClock
from apps.engine.types import OrderRequest

API_KEY = "broker-key-AKIA4242"
API_SECRET = "broker-secret-S3CR3T4242"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
VENUES = ["binance", "bybit"]
_ids = itertools.count(1)


def make_broker(fake, venue: str, *, timeout_ms: int = 5_000, window_s: float = 120.0):
    spec = ClientSpec(venue, API_KEY, API_SECRET, None, "live", fake.base_url, timeout_ms)
    client = ccxt_live.client_build(spec)
    # ccxt spaces calls 20-50 ms apart per instance; the local fake needs no throttle.
    client.enableRateLimit = False
    # The broker's back-off moves the fake's clock instead of waiting.
    return CcxtBroker(
        client, clock=FixedClock(NOW), sleep=fake.advance, lookup=LookupPolicy(window_s=window_s)
    )


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{next(_ids)}"


def market_buy(qty: str = "0.01", cid: str | None = None) -> OrderRequest:
    return OrderRequest(cid or new_id(), "BTC/USDT", "buy", "market", qty=Decimal(qty))


def limit_buy(qty: str = "0.01", price: str = "29000", cid: str | None = None) -> OrderRequest:
    return OrderRequest(
        cid or new_id(), "BTC/USDT", "buy", "limit", qty=Decimal(qty), limit_price=Decimal(price)
    )


def sent_params(fake, cid: str) -> dict[str, str]:
    """The parameters of the one create request the fake received for `cid`."""
    (request,) = fake.create_requests(cid)
    return request.params()
