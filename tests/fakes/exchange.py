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

Later fakes (orders, fills, rate limits, faults) extend `_routes()` with more handlers.

    with run_fake_exchange() as fake:
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (HTTP status, JSON body)
Reply = tuple[int, Any]

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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


def _routes() -> dict[tuple[str, str], Callable[[FakeExchange, RecordedRequest], Reply]]:
    return {
        ("GET", "/api/v3/ping"): lambda fake, request: (200, {}),
        ("GET", "/api/v3/time"): lambda fake, request: (200, {"serverTime": _now_ms()}),
        ("GET", "/api/v3/exchangeInfo"): _binance_exchange_info,
        ("GET", "/api/v3/account"): _binance_signed(_binance_account),
        ("GET", "/sapi/v1/account/apiRestrictions"): _binance_signed(_binance_api_restrictions),
        ("GET", "/v5/market/time"): _bybit_time,
        ("GET", "/v5/market/instruments-info"): _bybit_instruments,
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
        status, body = fake.answer(self.command, url.path, request)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
