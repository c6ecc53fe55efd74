"""Builds ccxt clients from settings and credentials: the Django side of apps.engine.brokers.

The only place that hands decrypted keys to ccxt.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.engine.brokers import ccxt_live
from apps.engine.brokers.ccxt_live import KeyPermissions


@dataclass(frozen=True)
class KeyCheck:
    """What the exchange told us about a key before we agreed to store it."""

    balances: dict[str, Decimal]
    permissions: KeyPermissions


def client_spec(
    *, exchange: str, mode: str, api_key: str | None, api_secret: str | None, passphrase: str | None
) -> ccxt_live.ClientSpec:
    return ccxt_live.ClientSpec(
        exchange_id=exchange,
        api_key=api_key,
        secret=api_secret,
        passphrase=passphrase,
        mode=mode,  # type: ignore[arg-type]  # validated against ExchangeAccount.Mode
        base_url_override=settings.EXCHANGE_BASE_URL_OVERRIDE,
        timeout_ms=settings.EXCHANGE_TIMEOUT_MS,
        throttle=settings.EXCHANGE_CLIENT_THROTTLE,
    )


@contextmanager
def exchange_client(spec: ccxt_live.ClientSpec) -> Iterator[Any]:
    client = ccxt_live.client_build(spec)
    try:
        yield client
    finally:
        ccxt_live.close(client)


def key_check(spec: ccxt_live.ClientSpec) -> KeyCheck:
    """Prove the key works (a balance call), then ask what it may do. Raises BrokerError."""
    with exchange_client(spec) as client:
        balances = ccxt_live.fetch_balances(client)
        permissions = ccxt_live.key_permissions(client)
    return KeyCheck(balances=balances, permissions=permissions)
