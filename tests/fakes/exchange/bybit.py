"""The fake's Bybit v5 REST API (paths under /v5), spot category, unified account.

Orders follow Bybit's rules: `orderLinkId` is never accepted twice (110072); a lookup
by orderId or orderLinkId on /v5/order/realtime returns the order in any status (or an
empty list while it is not yet visible); without one it lists open orders only. Errors
come as HTTP 200 with a retCode, except gateway faults (plain HTTP 5xx/429).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tests.fakes.exchange.core import (
    BYBIT_INTERVALS,
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

INVALID_KEY_CODE = 10003
GATEWAY_ERROR = "<html><body>503 Service Temporarily Unavailable</body></html>"
RATE_LIMITED = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "time": 0}
REFUSALS = {
    "duplicate": (110072, "OrderLinkedID is duplicate"),
    "insufficient": (170131, "Insufficient balance."),
    "notional": (170140, "Order value exceeded lower limit."),
    "precision": (170137, "Order quantity has too many decimals."),
    "symbol": (10001, "params error: symbol invalid"),
    "not_found": (110001, "Order does not exist"),
}
STATUSES = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
    "CANCELED": "Cancelled",
    "EXPIRED": "Cancelled",
}


def _ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()}


def _error(code: int, message: str) -> Reply:
    return 200, {
        "retCode": code,
        "retMsg": message,
        "result": {},
        "retExtInfo": {},
        "time": now_ms(),
    }


def _signed(handler: Handler) -> Handler:
    def reply(fake: FakeExchange, request: RecordedRequest) -> Reply:
        if fake.fail_auth or "x-bapi-api-key" not in request.headers:
            return _error(INVALID_KEY_CODE, "API key is invalid.")
        with fake.keyed(request.headers["x-bapi-api-key"]):
            return handler(fake, request)

    return reply


def _result(read: Any) -> Handler:
    return lambda fake, request: (200, _ok(read(fake, request)))


def _time(fake: FakeExchange, request: RecordedRequest) -> Reply:
    now = time.time()
    return 200, _ok({"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))})


def _instruments(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if request.query.get("category", [""])[0] != "spot":
        return 200, _ok({"category": request.query.get("category"), "list": []})
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
    return 200, _ok({"category": "spot", "list": instruments, "nextPageCursor": ""})


def _query_api(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
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


def _account_info(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
    # 6 = unified trading account 2.0, what new Bybit accounts get.
    return {"unifiedMarginStatus": 6, "marginMode": "REGULAR_MARGIN", "updatedTime": "0"}


def _wallet_balance(fake: FakeExchange, request: RecordedRequest) -> dict[str, Any]:
    locked = fake.book.locked()
    coins = [
        {
            "coin": asset,
            "walletBalance": str(amount),
            "equity": str(amount),
            "locked": str(locked.get(asset, Decimal(0))),
            "borrowAmount": "0",
            "totalOrderIM": "0",
            "totalPositionIM": "0",
        }
        for asset, amount in fake.balances.items()
    ]
    account = {"accountType": "UNIFIED", "totalEquity": "0", "coin": coins}
    return {"list": [account]}


def _kline(fake: FakeExchange, request: RecordedRequest) -> Reply:
    if fake.kline_throttled():
        return 429, RATE_LIMITED, {"Retry-After": str(fake.kline_retry_after)}
    limit = min(query_int(request, "limit") or 200, 1000)
    symbol = request.query.get("symbol", [""])[0]
    rows = fake.klines_select(
        symbol,
        interval_of(BYBIT_INTERVALS, request.query.get("interval", [""])[0]),
        query_int(request, "start"),
        query_int(request, "end"),
        limit,
    )
    if rows is None:
        # A gateway error page: no Bybit envelope, so only the HTTP status speaks.
        return 503, GATEWAY_ERROR
    # Bybit lists the newest candle first, each as strings with turnover last.
    listed = [[str(t), o, h, lo, c, v, "0"] for t, o, h, lo, c, v in reversed(rows)]
    result = {"category": request.query.get("category", [""])[0], "symbol": symbol}
    return 200, _ok({**result, "list": listed})


def order_json(order: FakeOrder) -> dict[str, Any]:
    leaves = order.remaining if order.is_open else Decimal(0)
    return {
        "orderId": str(order.order_id),
        "orderLinkId": order.client_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": str(order.price or "0"),
        "qty": str(order.quote_qty if order.qty is None else order.qty),
        "side": order.side.capitalize(),
        "isLeverage": "0",
        "positionIdx": 0,
        "orderStatus": STATUSES[order.status],
        "cancelType": "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": str(order.average_price) if order.filled_qty else "",
        "leavesQty": str(leaves),
        "leavesValue": str(leaves * (order.price or 0)),
        "cumExecQty": str(order.filled_qty),
        "cumExecValue": str(order.filled_quote),
        "cumExecFee": str(order.fee),
        "timeInForce": "GTC" if order.type == "limit" else "IOC",
        "orderType": order.type.capitalize(),
        "stopOrderType": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "marketUnit": "quoteCoin" if order.qty is None else "baseCoin",
        "createdTime": str(order.created_ms),
        "updatedTime": str(order.updated_ms),
    }


def _trade_json(trade: FakeTrade, order: FakeOrder | None) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "orderId": str(trade.order_id),
        "orderLinkId": trade.client_id,
        "side": trade.side.capitalize(),
        "orderPrice": str(order.price or "0") if order else "0",
        "orderQty": str(order.qty or "0") if order else "0",
        "leavesQty": str(order.remaining) if order else "0",
        "createType": "CreateByUser",
        "orderType": order.type.capitalize() if order else "Market",
        "stopOrderType": "",
        "execFee": str(trade.fee),
        "feeCurrency": trade.fee_asset,
        "execId": str(trade.trade_id),
        "execPrice": str(trade.price),
        "execQty": str(trade.qty),
        "execType": "Trade",
        "execValue": str(trade.quote),
        "execTime": str(trade.time_ms),
        "isMaker": trade.is_maker,
        "feeRate": "0.001",
        "markPrice": "",
        "closedSize": "",
        "seq": trade.trade_id,
    }


def _order_create(fake: FakeExchange, request: RecordedRequest) -> Reply:
    params = request.params()
    order_type, side = params.get("orderType", "").lower(), params.get("side", "").lower()
    if order_type not in ("market", "limit") or side not in ("buy", "sell"):
        return _error(10001, "params error: orderType or side invalid")
    # A spot market buy's qty is in the quote coin unless marketUnit says otherwise.
    unit = params.get("marketUnit") or (
        "quoteCoin" if (order_type, side) == ("market", "buy") else "baseCoin"
    )
    qty = Decimal(params.get("qty") or "0")
    order = FakeOrder(
        order_id=0,
        client_id=params.get("orderLinkId") or f"fake-{len(fake.book.orders)}",
        symbol=params.get("symbol", ""),
        side=side,  # type: ignore[arg-type]
        type=order_type,  # type: ignore[arg-type]
        qty=None if unit == "quoteCoin" else qty,
        quote_qty=qty if unit == "quoteCoin" else None,
        price=Decimal(params["price"]) if params.get("price") else None,
        created_ms=fake.now_ms(),
    )
    try:
        fake.book.create(order, dup_rule="bybit")
    except OrderRefused as refused:
        return _error(*REFUSALS[refused.reason])
    return 200, _ok({"orderId": str(order.order_id), "orderLinkId": order.client_id})


def _order_realtime(fake: FakeExchange, request: RecordedRequest) -> Reply:
    params = request.params()
    if params.get("orderId") or params.get("orderLinkId"):
        found = fake.visible(fake.order_find(params, "orderLinkId"))
        orders = [found] if found else []
    else:
        orders = [o for o in fake.book.open_orders(params.get("symbol")) if fake.visible(o)]
    listed = [order_json(order) for order in reversed(orders)]
    return 200, _ok({"category": "spot", "list": listed, "nextPageCursor": ""})


def _order_history(fake: FakeExchange, request: RecordedRequest) -> Reply:
    status, body = _order_realtime(fake, request)[:2]
    listed = body["result"]["list"]
    closed = [item for item in listed if item["orderStatus"] in ("Filled", "Cancelled")]
    return status, {**body, "result": {**body["result"], "list": closed}}


def _order_cancel(fake: FakeExchange, request: RecordedRequest) -> Reply:
    try:
        order = fake.order_cancel(fake.order_find(request.params(), "orderLinkId"))
    except OrderRefused:
        return _error(*REFUSALS["not_found"])
    return 200, _ok({"orderId": str(order.order_id), "orderLinkId": order.client_id})


def _executions(fake: FakeExchange, request: RecordedRequest) -> Reply:
    params = request.params()
    order_id, link_id = query_int(request, "orderId"), params.get("orderLinkId")
    start, end = query_int(request, "startTime") or 0, query_int(request, "endTime")
    trades = [
        t for t in fake.book.trades
        if params.get("symbol") in (None, t.symbol)
        and order_id in (None, t.order_id)
        and link_id in (None, t.client_id)
        and start <= t.time_ms <= (end or t.time_ms)
    ]  # fmt: skip
    limit = min(query_int(request, "limit") or 50, 100)
    # Newest first, as Bybit lists them.
    listed = [
        _trade_json(trade, fake.book.find(trade.symbol, order_id=trade.order_id))
        for trade in reversed(trades)
    ][:limit]
    return 200, _ok({"category": "spot", "list": listed, "nextPageCursor": ""})


def _orders(endpoint: str, handler: Handler) -> Handler:
    return _signed(faulty(endpoint, handler, GATEWAY_ERROR, RATE_LIMITED))  # type: ignore[arg-type]


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v5/market/time"): _time,
    ("GET", "/v5/market/instruments-info"): _instruments,
    ("GET", "/v5/market/kline"): _kline,
    ("GET", "/v5/user/query-api"): _signed(_result(_query_api)),
    ("GET", "/v5/account/info"): _signed(_result(_account_info)),
    ("GET", "/v5/account/wallet-balance"): _signed(_result(_wallet_balance)),
    ("POST", "/v5/order/create"): _orders("create", _order_create),
    ("GET", "/v5/order/realtime"): _orders("lookup", _order_realtime),
    ("GET", "/v5/order/history"): _orders("lookup", _order_history),
    ("POST", "/v5/order/cancel"): _orders("cancel", _order_cancel),
    ("GET", "/v5/execution/list"): _orders("trades", _executions),
}
