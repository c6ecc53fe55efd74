"""A loopback fake of the Binance and Bybit REST APIs, for the REAL ccxt client.

Start it, point ccxt's `urls["api"]` at `fake.base_url` (the app does that when
`settings.EXCHANGE_BASE_URL_OVERRIDE` is set), and ccxt talks HTTP to 127.0.0.1 only.
Both exchanges share one server: Binance paths start with /api or /sapi, Bybit's with /v5.

Knobs (plain attributes, change them at any time from the test):

- `balances`: asset -> Decimal, what both balance endpoints report.
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

Later fakes (orders, fills, rate limits, faults) extend `_routes()` with more handlers.

    with run_fake_exchange() as fake:
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
"""

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (HTTP status, JSON body) or (HTTP status, JSON body, extra headers)
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]

# One served candle: (open time in ms, open, high, low, close, volume) as the CSV's text.
Kline = tuple[int, str, str, str, str, str]

# Interval names per exchange for the timeframes the shipped CSVs use.
BINANCE_INTERVALS = {"5m": "5m", "1h": "1h", "1d": "1d"}
BYBIT_INTERVALS = {"5m": "5", "1h": "60", "1d": "D"}
TIMEFRAME_MS = {"5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
KLINE_PATHS = ("/api/v3/klines", "/v5/market/kline")

# Spot symbols both exchanges list: (symbol, base, quote, tick size, step size).
SPOT_SYMBOLS = [
    ("BTCUSDT", "BTC", "USDT", "0.01", "0.00001"),
    ("ETHUSDT", "ETH", "USDT", "0.01", "0.0001"),
    ("BNBUSDT", "BNB", "USDT", "0.1", "0.001"),
]

BINANCE_INVALID_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
BYBIT_INVALID_KEY_CODE = 10003


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


@dataclass
class FakeExchange:
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {"USDT": Decimal("10000"), "BTC": Decimal("0.5")}
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        with self._lock:
            return [request for request in self.requests if request.path in KLINE_PATHS]

    def klines_select(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[Kline] | None:
        """Candles to serve, oldest first; None when the knobs say to fail instead."""
        with self._lock:
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
        with self._lock:
            if self.kline_rate_limit > 0:
                self.kline_rate_limit -= 1
                return True
            return False

    def paths(self) -> list[str]:
        """Paths requested so far, in order."""
        with self._lock:
            return [request.path for request in self.requests]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def answer(self, method: str, path: str, request: RecordedRequest) -> Reply:
        handler = _routes().get((method, path))
        if handler is None:
            return 404, {"code": -1, "msg": f"fake exchange has no {method} {path}"}
        return handler(self, request)


# --- Binance ---------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _binance_symbol(symbol: str, base: str, quote: str, tick: str, step: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "1000000",
                "tickSize": tick,
            },
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000", "stepSize": step},
            {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "9000000"},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


def _binance_signed(handler: Callable[[FakeExchange], Any]) -> Callable[..., Reply]:
    def reply(fake: FakeExchange, request: RecordedRequest) -> Reply:
        if fake.fail_auth or "x-mbx-apikey" not in request.headers:
            return 401, BINANCE_INVALID_KEY
        if "signature" not in request.query:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
        return 200, handler(fake)

    return reply


def _binance_exchange_info(fake: FakeExchange, request: RecordedRequest) -> Reply:
    symbols = [_binance_symbol(*row) for row in SPOT_SYMBOLS]
    body = {"timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [], "symbols": symbols}
    return 200, body


def _binance_account(fake: FakeExchange) -> dict[str, Any]:
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "canTrade": True,
        "canWithdraw": fake.key_permissions.can_withdraw,
        "canDeposit": True,
        "updateTime": _now_ms(),
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": str(amount), "locked": "0.00000000"}
            for asset, amount in fake.balances.items()
        ],
        "permissions": ["SPOT"],
    }


def _binance_api_restrictions(fake: FakeExchange) -> dict[str, Any]:
    return {
        "ipRestrict": fake.key_permissions.ip_restricted,
        "createTime": _now_ms(),
        "enableReading": True,
        "enableSpotAndMarginTrading": True,
        "enableWithdrawals": fake.key_permissions.can_withdraw,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enablePortfolioMarginTrading": False,
    }


def _query_int(request: RecordedRequest, name: str) -> int | None:
    value = request.query.get(name, [""])[0]
    return int(value) if value else None


def _interval(table: dict[str, str], value: str) -> str:
    return next((code for code, name in table.items() if name == value), "?" + value)


def _binance_klines(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if fake.kline_throttled():
        body = {"code": -1003, "msg": "Too many requests; current limit is 6000 weight."}
        return 429, body, {"Retry-After": str(fake.kline_retry_after)}
    limit = min(_query_int(request, "limit") or 500, 1000)
    rows = fake.klines_select(
        request.query.get("symbol", [""])[0],
        _interval(BINANCE_INTERVALS, request.query.get("interval", [""])[0]),
        _query_int(request, "startTime"),
        _query_int(request, "endTime"),
        limit,
    )
    if rows is None:
        return 503, {"code": -1001, "msg": "Internal error; unable to process your request."}
    step = TIMEFRAME_MS.get(fake.klines_timeframe, 0)
    body = [[t, o, h, lo, c, v, t + step - 1, "0", 1, "0", "0", "0"] for t, o, h, lo, c, v in rows]
    return 200, body


# --- Bybit -----------------------------------------------------------------------------


def _bybit_ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now_ms()}


def _bybit_signed(handler: Callable[[FakeExchange, RecordedRequest], Any]) -> Callable[..., Reply]:
    def reply(fake: FakeExchange, request: RecordedRequest) -> Reply:
        if fake.fail_auth or "x-bapi-api-key" not in request.headers:
            error = {
                "retCode": BYBIT_INVALID_KEY_CODE,
                "retMsg": "API key is invalid.",
                "result": {},
                "retExtInfo": {},
                "time": _now_ms(),
            }
            return 200, error
        return 200, _bybit_ok(handler(fake, request))

    return reply


def _bybit_time(fake: FakeExchange, request: RecordedRequest) -> Reply:
    now = time.time()
    return 200, _bybit_ok({"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))})


def _bybit_instruments(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if request.query.get("category", [""])[0] != "spot":
        return 200, _bybit_ok({"category": request.query.get("category"), "list": []})
    instruments = [
        {
            "symbol": symbol,
            "baseCoin": base,
            "quoteCoin": quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "none",
            "lotSizeFilter": {
                "basePrecision": step,
                "quotePrecision": "0.00000001",
                "minOrderQty": step,
                "maxOrderQty": "9000",
                "minOrderAmt": "5",
                "maxOrderAmt": "9000000",
            },
            "priceFilter": {"tickSize": tick},
        }
        for symbol, base, quote, tick, step in SPOT_SYMBOLS
    ]
    return 200, _bybit_ok({"category": "spot", "list": instruments, "nextPageCursor": ""})


def _bybit_query_api(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
    wallet = ["AccountTransfer", "SubMemberTransfer"]
    if fake.key_permissions.can_withdraw:
        wallet.append("Withdraw")
    return {
        "id": "1",
        "note": "fake",
        "apiKey": request.headers.get("x-bapi-api-key", ""),
        "readOnly": 0,
        "secret": "",
        "permissions": {"Spot": ["SpotTrade"], "Wallet": wallet, "ContractTrade": []},
        "ips": ["203.0.113.7"] if fake.key_permissions.ip_restricted else ["*"],
        "type": 1,
        "unified": 1,
        "uta": 1,
        "userID": 1,
        "isMaster": True,
    }


def _bybit_account_info(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
    # 6 = unified trading account 2.0, what new Bybit accounts get.
    return {"unifiedMarginStatus": 6, "marginMode": "REGULAR_MARGIN", "updatedTime": "0"}


def _bybit_wallet_balance(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
    coins = [
        {
            "coin": asset,
            "walletBalance": str(amount),
            "equity": str(amount),
            "locked": "0",
            "borrowAmount": "0",
            "totalOrderIM": "0",
            "totalPositionIM": "0",
        }
        for asset, amount in fake.balances.items()
    ]
    account = {"accountType": "UNIFIED", "totalEquity": "0", "coin": coins}
    return {"list": [account]}


def _bybit_kline(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if fake.kline_throttled():
        body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "time": _now_ms()}
        return 429, body, {"Retry-After": str(fake.kline_retry_after)}
    limit = min(_query_int(request, "limit") or 200, 1000)
    symbol = request.query.get("symbol", [""])[0]
    rows = fake.klines_select(
        symbol,
        _interval(BYBIT_INTERVALS, request.query.get("interval", [""])[0]),
        _query_int(request, "start"),
        _query_int(request, "end"),
        limit,
    )
    if rows is None:
        # A gateway error page: no Bybit envelope, so only the HTTP status speaks.
        return 503, "<html><body>503 Service Temporarily Unavailable</body></html>"
    # Bybit lists the newest candle first, each as strings with turnover last.
    listed = [[str(t), o, h, lo, c, v, "0"] for t, o, h, lo, c, v in reversed(rows)]
    result = {"category": request.query.get("category", [""])[0], "symbol": symbol}
    return 200, _bybit_ok({**result, "list": listed})


def _routes() -> dict[tuple[str, str], Callable[[FakeExchange, RecordedRequest], Reply]]:
    return {
        ("GET", "/api/v3/ping"): lambda fake, request: (200, {}),
        ("GET", "/api/v3/time"): lambda fake, request: (200, {"serverTime": _now_ms()}),
        ("GET", "/api/v3/exchangeInfo"): _binance_exchange_info,
        ("GET", "/api/v3/klines"): _binance_klines,
        ("GET", "/api/v3/account"): _binance_signed(_binance_account),
        ("GET", "/sapi/v1/account/apiRestrictions"): _binance_signed(_binance_api_restrictions),
        ("GET", "/v5/market/time"): _bybit_time,
        ("GET", "/v5/market/instruments-info"): _bybit_instruments,
        ("GET", "/v5/market/kline"): _bybit_kline,
        ("GET", "/v5/user/query-api"): _bybit_signed(_bybit_query_api),
        ("GET", "/v5/account/info"): _bybit_signed(_bybit_account_info),
        ("GET", "/v5/account/wallet-balance"): _bybit_signed(_bybit_wallet_balance),
    }


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length).decode() if length else "",
        )
        fake = self.server.fake
        fake.record(request)
        reply = fake.answer(self.command, url.path, request)
        status, body = reply[0], reply[1]
        headers: dict[str, str] = reply[2] if len(reply) > 2 else {}  # type: ignore[misc]
        # A str body is sent as it is (an HTML error page); anything else as JSON.
        text = isinstance(body, str)
        payload = body.encode() if text else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html" if text else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the default writes every request line to stderr.
        pass


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeExchange) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def run_fake_exchange() -> Iterator[FakeExchange]:
    """Serve a fresh FakeExchange on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeExchange()
    server = _FakeServer(fake)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-exchange", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
