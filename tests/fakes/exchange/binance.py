"""The fake's Binance spot REST API (paths under /api/v3 and /sapi/v1).

Orders follow Binance's rules: `newClientOrderId` is unique only among open orders
(-2010 "Duplicate order sent." while the first is open, accepted again once it is
closed); a lookup of an unknown or not-yet-visible order is -2013; cancelling an order
that is unknown or already closed is -2011; filter failures are -1013.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.fakes.exchange.core import (
    BINANCE_INTERVALS,
    TIMEFRAME_MS,
    FakeExchange,
    Handler,
    RecordedRequest,
    Reply,
    faulty,
    interval_of,
    now_ms,
    query_int,
)
from tests.fakes.exchange.orders import SPOT_SYMBOLS, FakeOrder, FakeTrade, OrderRefused

INVALID_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
SERVER_ERROR = {"code": -1001, "msg": "Internal error; unable to process your request."}
RATE_LIMITED = {"code": -1003, "msg": "Too many requests; current limit is 6000 weight."}
NO_SUCH_ORDER = {"code": -2013, "msg": "Order does not exist."}
REFUSALS = {
    "duplicate": {"code": -2010, "msg": "Duplicate order sent."},
    "insufficient": {
        "code": -2010,
        "msg": "Account has insufficient balance for requested action.",
    },
    "notional": {"code": -1013, "msg": "Filter failure: NOTIONAL"},
    "precision": {"code": -1013, "msg": "Filter failure: LOT_SIZE"},
    "symbol": {"code": -1121, "msg": "Invalid symbol."},
    "not_found": {"code": -2011, "msg": "Unknown order sent."},
}


def _symbol_info(symbol: str, base: str, quote: str, tick: str, step: str) -> dict[str, Any]:
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


def _signed(handler: Handler) -> Handler:
    def reply(fake: FakeExchange, request: RecordedRequest) -> Reply:
        if fake.fail_auth or "x-mbx-apikey" not in request.headers:
            return 401, INVALID_KEY
        if "signature" not in request.params():
            return 400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
        with fake.keyed(request.headers["x-mbx-apikey"]):
            return handler(fake, request)

    return reply


def _body(read: Callable[[FakeExchange], Any]) -> Handler:
    return lambda fake, request: (200, read(fake))


def _exchange_info(fake: FakeExchange, request: RecordedRequest) -> Reply:
    symbols = [_symbol_info(*row) for row in SPOT_SYMBOLS]
    body = {"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [], "symbols": symbols}
    return 200, body


def _account(fake: FakeExchange) -> dict[str, Any]:
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "canTrade": True,
        "canWithdraw": fake.key_permissions.can_withdraw,
        "canDeposit": True,
        "updateTime": now_ms(),
        "accountType": "SPOT",
        "balances": _balances(fake),
        "permissions": ["SPOT"],
    }


def _api_restrictions(fake: FakeExchange) -> dict[str, Any]:
    return {
        "ipRestrict": fake.key_permissions.ip_restricted,
        "createTime": now_ms(),
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


def _klines(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if fake.kline_throttled():
        body = {"code": -1003, "msg": "Too many requests; current limit is 6000 weight."}
        return 429, body, {"Retry-After": str(fake.kline_retry_after)}
    limit = min(query_int(request, "limit") or 500, 1000)
    rows = fake.klines_select(
        request.query.get("symbol", [""])[0],
        interval_of(BINANCE_INTERVALS, request.query.get("interval", [""])[0]),
        query_int(request, "startTime"),
        query_int(request, "endTime"),
        limit,
    )
    if rows is None:
        return 503, {"code": -1001, "msg": "Internal error; unable to process your request."}
    step = TIMEFRAME_MS.get(fake.klines_timeframe, 0)
    body = [[t, o, h, lo, c, v, t + step - 1, "0", 1, "0", "0", "0"] for t, o, h, lo, c, v in rows]
    return 200, body


def _balances(fake: FakeExchange) -> list[dict[str, str]]:
    locked = fake.book.locked()
    return [
        {
            "asset": asset,
            "free": str(amount - locked.get(asset, Decimal(0))),
            "locked": str(locked.get(asset, Decimal(0))),
        }
        for asset, amount in fake.balances.items()
    ]


def order_json(order: FakeOrder) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "price": str(order.price or "0.00000000"),
        "origQty": str(order.qty or "0.00000000"),
        "executedQty": str(order.filled_qty),
        "cummulativeQuoteQty": str(order.filled_quote),
        "status": order.status,
        "timeInForce": "GTC",
        "type": order.type.upper(),
        "side": order.side.upper(),
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": True,
        "workingTime": order.created_ms,
        "origQuoteOrderQty": str(order.quote_qty or "0.00000000"),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _trade_json(trade: FakeTrade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": str(trade.price),
        "qty": str(trade.qty),
        "quoteQty": str(trade.quote),
        "commission": str(trade.fee),
        "commissionAsset": trade.fee_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side == "buy",
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def _order_create(fake: FakeExchange, request: RecordedRequest) -> Reply:
    params = request.params()
    order_type = params.get("type", "").lower()
    if order_type not in ("market", "limit"):
        return 400, {"code": -1116, "msg": "Invalid orderType."}
    order = FakeOrder(
        order_id=0,
        client_id=params.get("newClientOrderId") or f"fake-{len(fake.book.orders)}",
        symbol=params.get("symbol", ""),
        side="buy" if params.get("side") == "BUY" else "sell",
        type=order_type,  # type: ignore[arg-type]
        qty=_decimal(params.get("quantity")),
        quote_qty=_decimal(params.get("quoteOrderQty")),
        price=_decimal(params.get("price")),
        created_ms=fake.now_ms(),
    )
    try:
        fake.book.create(order, dup_rule="binance")
    except OrderRefused as refused:
        return 400, REFUSALS[refused.reason]
    trades = [t for t in fake.book.trades if t.order_id == order.order_id]
    fills = [
        {
            "price": str(t.price),
            "qty": str(t.qty),
            "commission": str(t.fee),
            "commissionAsset": t.fee_asset,
            "tradeId": t.trade_id,
        }
        for t in trades
    ]
    return 200, {**order_json(order), "transactTime": order.created_ms, "fills": fills}


def _order_get(fake: FakeExchange, request: RecordedRequest) -> Reply:
    order = fake.visible(fake.order_find(request.params(), "origClientOrderId"))
    return (400, NO_SUCH_ORDER) if order is None else (200, order_json(order))


def _order_cancel(fake: FakeExchange, request: RecordedRequest) -> Reply:
    try:
        order = fake.order_cancel(fake.order_find(request.params(), "origClientOrderId"))
    except OrderRefused:
        return 400, REFUSALS["not_found"]
    cancel_id = request.params().get("newClientOrderId") or f"cancel-{order.order_id}"
    body = {**order_json(order), "origClientOrderId": order.client_id}
    return 200, {**body, "clientOrderId": cancel_id}


def _open_orders(fake: FakeExchange, request: RecordedRequest) -> Reply:
    symbol = request.params().get("symbol")
    orders = [o for o in fake.book.open_orders(symbol) if fake.visible(o)]
    return 200, [order_json(order) for order in orders]


def _my_trades(fake: FakeExchange, request: RecordedRequest) -> Reply:
    params = request.params()
    order_id, from_id = query_int(request, "orderId"), query_int(request, "fromId") or 0
    start, end = query_int(request, "startTime") or 0, query_int(request, "endTime")
    trades = [
        t for t in fake.book.trades
        if t.symbol == params.get("symbol")
        and order_id in (None, t.order_id)
        and t.trade_id >= from_id
        and start <= t.time_ms <= (end or t.time_ms)
    ]  # fmt: skip
    limit = min(query_int(request, "limit") or 500, 1000)
    return 200, [_trade_json(trade) for trade in trades[:limit]]


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value else None


def _orders(endpoint: str, handler: Handler) -> Handler:
    return _signed(faulty(endpoint, handler, SERVER_ERROR, RATE_LIMITED))  # type: ignore[arg-type]


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/api/v3/ping"): lambda fake, request: (200, {}),
    ("GET", "/api/v3/time"): lambda fake, request: (200, {"serverTime": now_ms()}),
    ("GET", "/api/v3/exchangeInfo"): _exchange_info,
    ("GET", "/api/v3/klines"): _klines,
    ("GET", "/api/v3/account"): _signed(_body(_account)),
    ("GET", "/sapi/v1/account/apiRestrictions"): _signed(_body(_api_restrictions)),
    ("POST", "/api/v3/order"): _orders("create", _order_create),
    ("GET", "/api/v3/order"): _orders("lookup", _order_get),
    ("DELETE", "/api/v3/order"): _orders("cancel", _order_cancel),
    ("GET", "/api/v3/openOrders"): _orders("lookup", _open_orders),
    ("GET", "/api/v3/myTrades"): _orders("trades", _my_trades),
}
