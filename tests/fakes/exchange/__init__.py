"""A loopback fake of the Binance and Bybit REST APIs, for the REAL ccxt client.

Start it, point ccxt's `urls["api"]` at `fake.base_url` (the app does that when
`settings.EXCHANGE_BASE_URL_OVERRIDE` is set), and ccxt talks HTTP to 127.0.0.1 only.
Both exchanges share one server: Binance paths start with /api or /sapi, Bybit's with /v5.

Knobs (plain attributes, change them at any time from the test):

- `balances`: asset -> Decimal, what both balance endpoints report.
- `balances_per_key`: starting balances; once set, each API key trades on its own copy
  (`key_balances[key]`), as separate exchange accounts do.
- `key_permissions`: `FakeKeyPermissions(can_withdraw, ip_restricted)`, reported by Binance
  `GET /sapi/v1/account/apiRestrictions` and Bybit `GET /v5/user/query-api`.
- `fail_auth`: signed endpoints answer as the exchange does for an invalid key
  (Binance: HTTP 401 code -2015; Bybit: retCode 10003).
- `requests`: every request received, as `RecordedRequest` (method, path, query, headers,
  body), for assertions.
- `klines`: symbol ("BTCUSDT") -> candles served by Binance `GET /api/v3/klines` and Bybit
  `GET /v5/market/kline`; `klines_load(symbol, csv)` fills it from a shipped CSV. Only the
  timeframe of the CSV is served (a request for another interval gets an empty list).
  Requests honour since (startTime / start), end (endTime / end, inclusive) and limit.
- `kline_rate_limit`: the next N kline calls answer HTTP 429 with `Retry-After`
  (`kline_retry_after` seconds), as both exchanges do when a client goes too fast.
- `kline_gap`: (first, last) open times in ms: candles in that range are never served.
- `kline_fail_after`: after N successful kline pages every kline call answers HTTP 503.

Orders (orders.py holds the book; binance.py and bybit.py the wire formats): Binance
`POST/GET/DELETE /api/v3/order`, `GET /api/v3/openOrders`, `GET /api/v3/myTrades`; Bybit
`POST /v5/order/create`, `POST /v5/order/cancel`, `GET /v5/order/realtime` (and
`/history`), `GET /v5/execution/list`. Balances move with every fill; open limits lock.

- `price_set("BTCUSDT", "30000")`: market orders fill at this price; resting limits the
  new price reaches fill at their limit.
- `book.fill(order, qty, price, now_ms)`: a partial fill chosen by the test.
- `fault(kind, endpoint, times)`: the next `times` calls to create / lookup / cancel /
  trades fail: "drop" (accepted, then no answer; `drop_delay_s` before the close),
  "5xx" (refused with 503), "5xx_after_accept" (accepted, then 503), "429" (refused with
  Retry-After `retry_after_s`).
- `hide_new_orders_s`: lookups miss orders younger than this (Binance -2013, Bybit an
  empty list), on the fake's clock; `advance(seconds)` moves that clock without waiting.
- `fill_on_cancel`: a cancel finds its open order filled first (the cancel/fill race).
- `orders_for(client_id)`, `create_requests(client_id)`: what the fake holds and received.

    with run_fake_exchange() as fake:
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
"""

from tests.fakes.exchange.core import (
    FakeExchange,
    FakeKeyPermissions,
    Fault,
    RecordedRequest,
)
from tests.fakes.exchange.orders import SPOT_SYMBOLS, FakeOrder, FakeTrade
from tests.fakes.exchange.server import run_fake_exchange

__all__ = [
    "SPOT_SYMBOLS",
    "FakeExchange",
    "FakeKeyPermissions",
    "FakeOrder",
    "FakeTrade",
    "Fault",
    "RecordedRequest",
    "run_fake_exchange",
]
