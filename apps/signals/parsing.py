"""An alert body as TradingView sends it -> a validated `Alert`, or `PayloadInvalid` naming
the field.

TradingView posts the alert message verbatim: JSON (application/json, or text/plain when
the user's JSON is not quite valid), or any text. We accept a JSON object, or `key=value`
lines, whatever the content type. Placeholders arrive already filled in
({{ticker}} -> "BINANCE:BTCUSDT", {{timenow}} -> "2024-05-01T12:00:00Z").
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_FIELDS = 40
MAX_VALUE_LENGTH = 500
ACTIONS = ("buy", "sell", "close", "flat")
# Longest first, so BTCUSDT is BTC/USDT and not BTCUS/DT.
QUOTE_ASSETS = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "FDUSD",
            "TUSD",
            "BUSD",
            "DAI",
            "USD",
            "EUR",
            "GBP",
            "TRY",
            "BRL",
            "BTC",
            "ETH",
            "BNB",
        ),
        key=len,
        reverse=True,
    )
)
# Each field and the names TradingView users commonly give it.
ALIASES = {
    "passphrase": ("passphrase", "secret"),
    "ticker": ("ticker", "symbol"),
    "action": ("action", "side"),
    "position": ("position", "market_position"),
    "contracts": ("contracts", "qty", "size"),
    "quote_amount": ("quote_amount", "amount"),
    "equity_pct": ("equity_pct", "percent"),
    "price": ("price", "close"),
    "time": ("time", "timenow", "timestamp"),
    "alert_id": ("alert_id", "id"),
}


class PayloadInvalid(ValueError):
    """The body cannot be used; `field` names the part at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Alert:
    passphrase: str
    ticker: str
    symbol: str
    action: str  # buy, sell, close
    size_mode: str  # contracts, quote, equity_pct, or "" for the bot's default
    size: Decimal | None
    price: Decimal | None
    time: datetime | None
    alert_id: str
    canonical: str  # the body without the passphrase, keys sorted: the idempotency input

    def key(self, bot_id: int, *, window: int | None = None) -> str:
        """The idempotency key. An alert with neither an id nor a time is the same alert
        only within one dedup `window` (its number), or identical alerts sent days apart
        (a strategy that buys again) would be taken for one."""
        if self.alert_id:
            return f"id:{bot_id}:{self.alert_id}"
        digest = hashlib.sha256(f"{bot_id}\x00{self.canonical}".encode()).hexdigest()
        if self.time is None and window is not None:
            return f"sha256:{window}:{digest}"
        return f"sha256:{digest}"


def parse_alert(body: bytes) -> Alert:
    fields = _fields(body)
    values = {name: _pick(fields, name) for name in ALIASES}
    passphrase = values["passphrase"]
    if not passphrase:
        raise PayloadInvalid("passphrase is missing", "passphrase")
    ticker = values["ticker"]
    if not ticker:
        raise PayloadInvalid("ticker is missing", "ticker")
    action = _action(values["action"], values["position"])
    size_mode, size = _size(values)
    if action == "close" and size is not None:
        raise PayloadInvalid("close sells the whole position; drop the size", size_mode)
    canonical = json.dumps(
        {k: v for k, v in fields.items() if k not in ALIASES["passphrase"]},
        sort_keys=True,
        separators=(",", ":"),
    )
    return Alert(
        passphrase=passphrase,
        ticker=ticker,
        symbol=ticker_symbol(ticker),
        action=action,
        size_mode=size_mode,
        size=size,
        price=_positive(values["price"], "price") if values["price"] else None,
        time=parse_time(values["time"]) if values["time"] else None,
        alert_id=values["alert_id"][:150],
        canonical=canonical,
    )


def _fields(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadInvalid("the body is not UTF-8 text", "body") from None
    stripped = text.strip()
    if not stripped:
        raise PayloadInvalid("the body is empty", "body")
    raw = _json_object(stripped) if stripped.startswith("{") else _key_value_lines(stripped)
    if len(raw) > MAX_FIELDS:
        raise PayloadInvalid(f"the body has more than {MAX_FIELDS} fields", "body")
    fields: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).strip().lower()
        if not name or len(name) > 50:
            raise PayloadInvalid("a field name is empty or too long", "body")
        fields[name] = _scalar(value, name)
    return fields


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise PayloadInvalid("the body is not valid JSON", "body") from None
    if not isinstance(data, dict):
        raise PayloadInvalid("the JSON body must be an object", "body")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _key_value_lines(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in text.replace(";", "\n").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise PayloadInvalid("the body must be a JSON object or key=value lines", "body")
        pairs[key.strip()] = value.strip()
    return pairs


def _scalar(value: Any, name: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise PayloadInvalid(f"{name} must be a string or a number", name)
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadInvalid(f"{name} must be finite", name)
    text = str(value).strip()
    if len(text) > MAX_VALUE_LENGTH:
        raise PayloadInvalid(f"{name} is longer than {MAX_VALUE_LENGTH} characters", name)
    return text


def _pick(fields: dict[str, str], name: str) -> str:
    found = [alias for alias in ALIASES[name] if alias in fields]
    if len(found) > 1:
        raise PayloadInvalid(f"give {name} once, not as {' and '.join(found)}", found[1])
    return fields[found[0]] if found else ""


def _action(raw: str, position: str) -> str:
    action = raw.lower()
    if not action:
        raise PayloadInvalid("action is missing (buy, sell, close or flat)", "action")
    if action not in ACTIONS:
        raise PayloadInvalid(f"action must be buy, sell, close or flat, got {raw!r}", "action")
    # A strategy exit arrives as "sell" with {{strategy.market_position}} = flat.
    if action == "flat" or (action == "sell" and position.lower() == "flat"):
        return "close"
    return action


def _size(values: dict[str, str]) -> tuple[str, Decimal | None]:
    given = [name for name in ("contracts", "quote_amount", "equity_pct") if values[name]]
    if not given:
        return "", None
    if len(given) > 1:
        raise PayloadInvalid(f"give one size, not {' and '.join(given)}", given[1])
    name = given[0]
    size = _positive(values[name], name)
    if name == "equity_pct" and size > 100:
        raise PayloadInvalid("equity_pct must be at most 100", name)
    return ("quote" if name == "quote_amount" else name), size


def _positive(raw: str, field: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise PayloadInvalid(f"{field} must be a number, got {raw[:40]!r}", field) from None
    if not value.is_finite() or value <= 0:
        raise PayloadInvalid(f"{field} must be a positive number", field)
    if value.adjusted() > 15 or value.as_tuple().exponent < -18:  # type: ignore[operator]
        raise PayloadInvalid(f"{field} is out of range", field)
    return value


def ticker_symbol(ticker: str) -> str:
    """`BINANCE:BTCUSDT` -> `BTC/USDT`; a ccxt symbol passes through upper-cased."""
    name = ticker.rpartition(":")[2].strip().upper()
    if name.endswith(".P"):
        name = name[:-2]
    if "/" in name:
        base, _, quote = name.partition("/")
        if base.isalnum() and quote.isalnum():
            return f"{base}/{quote}"
    elif name.isalnum():
        for quote in QUOTE_ASSETS:
            if name.endswith(quote) and len(name) > len(quote):
                return f"{name[: -len(quote)]}/{quote}"
    raise PayloadInvalid(
        f"ticker {ticker[:40]!r} is not a known market (e.g. BINANCE:BTCUSDT)", "ticker"
    )


def parse_time(raw: str) -> datetime:
    """{{timenow}} (ISO 8601, UTC) or a Unix time in seconds or milliseconds."""
    text = raw.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
            moment = datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise PayloadInvalid(
            f"time must be ISO 8601 or Unix time, got {text[:40]!r}", "time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
