"""The ccxt boundary: build exchange clients and read balances and key permissions.

This module and ccxt_orders.py (`CcxtBroker`, orders) are the only ones that import ccxt.
Floats from ccxt become `Decimal(str(x))` here, and ccxt's exceptions become the small
`BrokerError` tree below, whose messages never carry ccxt's text (that text can hold URLs,
signed queries and response bodies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import ccxt

Mode = Literal["paper", "testnet", "live"]

# Listed first in every exchange picker; the rest follow alphabetically.
PREFERRED_EXCHANGE_IDS = ("binance", "bybit", "okx", "kraken", "coinbase")

# Exchanges whose key permissions we can read, so testnet and live keys can be vetted.
KEY_CHECK_EXCHANGE_IDS = ("binance", "bybit")

# Options that keep load_markets to public spot endpoints. fetchCurrencies and the margin
# lists are private or separate-host calls that a key-check has no use for.
_QUIET_LOAD_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "fetchMargins": False,
    "fetchMarkets": {"types": ["spot"]},
}


class BrokerError(Exception):
    """An exchange call failed; the message is safe to show to the user."""


class ExchangeAuthenticationError(BrokerError):
    """The exchange refused the key or its signature."""


class ExchangeUnavailableError(BrokerError):
    """The exchange could not be reached or answered with an error we cannot act on."""


class UnknownExchangeError(BrokerError):
    """The exchange id is not one ccxt supports."""


@dataclass(frozen=True)
class KeyPermissions:
    """What an API key may do, as the exchange reports it."""

    can_withdraw: bool
    ip_restricted: bool


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build a client; `base_url_override` points it at a fake."""

    exchange_id: str
    api_key: str | None
    secret: str | None
    passphrase: str | None
    mode: Mode
    base_url_override: str = ""
    timeout_ms: int = 10_000
    # ccxt's per-client throttle (the venue's published request weights). Off only for a
    # loopback fake, which has no limits (benchmarks, tests).
    throttle: bool = True


def exchange_ids() -> list[str]:
    """Return every ccxt exchange id, the popular ones first."""
    available = set(ccxt.exchanges)
    preferred = [exchange_id for exchange_id in PREFERRED_EXCHANGE_IDS if exchange_id in available]
    return preferred + sorted(available.difference(preferred))


def client_build(spec: ClientSpec) -> Any:
    """Build a ccxt client for `spec`; no network call happens here.

    Raises
    ------
    UnknownExchangeError
        When ccxt has no exchange with that id.
    BrokerError
        When testnet is asked of an exchange without a sandbox.
    """
    if spec.exchange_id not in ccxt.exchanges:
        raise UnknownExchangeError(f"Unknown exchange “{spec.exchange_id}”.")
    exchange_class = getattr(ccxt, spec.exchange_id)
    config: dict[str, Any] = {"timeout": spec.timeout_ms, "enableRateLimit": spec.throttle}
    for name, value in (
        ("apiKey", spec.api_key),
        ("secret", spec.secret),
        ("password", spec.passphrase),
    ):
        if value:
            config[name] = value
    client = exchange_class(config)
    # CCXT-2: ccxt must never resend a request on its own; retries are ours to decide.
    client.options["maxRetriesOnFailure"] = 0
    client.options.update(_QUIET_LOAD_OPTIONS)
    # Bybit ignores the fetchCurrencies option and asks for the private coin list whenever a
    # key is set; load_markets skips currencies only when `has` says there are none.
    client.has = {**client.has, "fetchCurrencies": False}
    if spec.mode == "testnet":
        try:
            client.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise BrokerError(f"{spec.exchange_id} has no testnet.") from None
    if spec.base_url_override:
        client.urls["api"] = _rewrite_urls(client.urls["api"], spec.base_url_override)
    return client


def _rewrite_urls(urls: Any, base_url: str) -> Any:
    # Keep each URL's path (binance: /api/v3, /sapi/v1) and swap scheme and host; bybit's
    # "https://api.{hostname}" templates have no path and so become the base itself.
    if isinstance(urls, Mapping):
        return {name: _rewrite_urls(url, base_url) for name, url in urls.items()}
    if isinstance(urls, str):
        base = urlsplit(base_url)
        path = urlsplit(urls).path
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + path, "", ""))
    return urls


def fetch_balances(client: Any) -> dict[str, Decimal]:
    """Return the total balance per asset, leaving out zero balances."""
    balance = exchange_call(client.fetch_balance)
    totals = cast(dict[str, Any], balance.get("total") or {})
    return {
        asset: Decimal(str(amount))
        for asset, amount in totals.items()
        if amount is not None and Decimal(str(amount)) != 0
    }


def key_permissions(client: Any) -> KeyPermissions:
    """Ask the exchange what the client's key may do.

    Raises
    ------
    BrokerError
        When the exchange has no permission endpoint we know, so a key cannot be vetted.
    """
    exchange_id = str(client.id)
    if exchange_id not in KEY_CHECK_EXCHANGE_IDS:
        raise BrokerError(f"tradeloop cannot check key permissions on {exchange_id} yet.")
    if exchange_id == "binance":
        return _binance_key_permissions(client)
    return _bybit_key_permissions(client)


def _binance_key_permissions(client: Any) -> KeyPermissions:
    if "sapi" not in client.urls["api"]:
        # Spot testnet has no /sapi and no withdrawals: its keys cannot move funds anywhere.
        return KeyPermissions(can_withdraw=False, ip_restricted=False)
    restrictions = exchange_call(client.sapi_get_account_apirestrictions)
    return KeyPermissions(
        can_withdraw=bool(restrictions.get("enableWithdrawals")),
        ip_restricted=bool(restrictions.get("ipRestrict")),
    )


def _bybit_key_permissions(client: Any) -> KeyPermissions:
    response = exchange_call(client.private_get_v5_user_query_api)
    result = response.get("result") or {}
    permissions = result.get("permissions") or {}
    granted = {name for names in permissions.values() for name in (names or [])}
    read_only = str(result.get("readOnly", "0")) == "1"
    ips = [ip for ip in result.get("ips") or [] if ip not in ("", "*")]
    return KeyPermissions(
        can_withdraw=not read_only and "Withdraw" in granted, ip_restricted=bool(ips)
    )


def close(client: Any) -> None:
    """Release the client's HTTP session."""
    session = getattr(client, "session", None)
    if session is not None:
        session.close()


def exchange_call(method: Any) -> Any:
    """`method()`, with ccxt's exceptions turned into the BrokerError tree above."""
    try:
        return method()
    except ccxt.BaseError as exc:
        raise broker_error(exc) from None


def broker_error(exc: ccxt.BaseError) -> BrokerError:
    """Our error for a ccxt exception: its class name crosses over, never its message
    (ccxt's messages embed URLs, signed queries and response bodies)."""
    # PermissionDenied subclasses AuthenticationError, so it goes first.
    if isinstance(exc, ccxt.PermissionDenied):
        return ExchangeAuthenticationError(
            f"The key lacks a permission this check needs ({type(exc).__name__})."
        )
    if isinstance(exc, ccxt.AuthenticationError):
        return ExchangeAuthenticationError(
            f"The exchange refused the API key ({type(exc).__name__}). "
            "Check the key, the secret and the key's IP allowlist."
        )
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailableError(
            f"The exchange could not be reached ({type(exc).__name__}). Try again later."
        )
    return ExchangeUnavailableError(f"The exchange answered with an error ({type(exc).__name__}).")


class ExchangeRateLimitedError(ExchangeUnavailableError):
    """The exchange asked us to slow down; `retry_after` is its Retry-After in seconds."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExchangeRequestError(BrokerError):
    """The exchange refused the request itself (unknown symbol, bad parameters): no retry."""


# One candle from `fetch_ohlcv_page`: (open time in ms, open, high, low, close, volume).
OhlcvRow = tuple[int, float, float, float, float, float]


def fetch_ohlcv_page(
    client: Any, *, symbol: str, timeframe: str, since_ms: int, until_ms: int, limit: int
) -> list[OhlcvRow]:
    """One page of candles opening in [since_ms, until_ms], oldest first, at most `limit`.

    ccxt's own throttle (enableRateLimit) spaces the calls. Candles stay floats: they are
    market data, stored as float64 (apps/market/models.py), not money.

    Raises
    ------
    ExchangeRateLimitedError
        HTTP 429 / RateLimitExceeded / DDoSProtection, with the exchange's Retry-After.
    ExchangeUnavailableError
        Any other network-level or server-side failure (timeouts, 5xx, OperationFailed);
        worth retrying a few times.
    ExchangeRequestError
        The exchange refused the request (unknown symbol or timeframe, bad parameters).
    """
    try:
        rows = client.fetch_ohlcv(
            symbol, timeframe, since=since_ms, limit=limit, params={"until": until_ms}
        )
    except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
        raise ExchangeRateLimitedError(
            f"The exchange asked us to slow down ({type(exc).__name__}).",
            retry_after=retry_after(client, exc),
        ) from None
    except (ccxt.NetworkError, ccxt.OperationFailed) as exc:
        # OperationFailed: a well-formed request the exchange failed to serve (Binance -1001).
        raise ExchangeUnavailableError(
            f"The exchange could not serve the candles ({type(exc).__name__})."
        ) from None
    except ccxt.BadSymbol:
        raise ExchangeRequestError(f"{client.id} does not list {symbol}.") from None
    except ccxt.BaseError as exc:
        raise ExchangeRequestError(
            f"The exchange refused the candle request ({type(exc).__name__})."
        ) from None
    page: list[OhlcvRow] = []
    for row in rows or []:
        opened = int(row[0])
        if since_ms <= opened <= until_ms:
            page.append((opened, *(float(value) for value in row[1:6])))  # type: ignore[arg-type]
    page.sort(key=lambda row: row[0])
    return page[:limit]


def retry_after(client: Any, exc: Exception) -> float | None:
    """Seconds the exchange asked us to wait (Retry-After) when `exc` is a 418/429."""
    if not isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return None
    headers: Mapping[str, Any] = getattr(client, "last_response_headers", None) or {}
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None
