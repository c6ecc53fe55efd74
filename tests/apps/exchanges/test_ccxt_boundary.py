"""apps.engine.brokers.ccxt_live against the real ccxt client and the loopback fake."""

from dataclasses import replace
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from apps.engine.brokers import ccxt_live
from apps.engine.brokers.ccxt_live import ClientSpec, KeyPermissions


def _spec(fake, exchange_id: str, mode: str = "live") -> ClientSpec:
    return ClientSpec(
        exchange_id=exchange_id,
        api_key="boundary-key-1234",
        secret="boundary-secret-5678",
        passphrase=None,
        mode=mode,
        base_url_override=fake.base_url,
        timeout_ms=5_000,
    )


def _all_urls(urls) -> list[str]:
    if isinstance(urls, dict):
        return [url for value in urls.values() for url in _all_urls(value)]
    return [urls]


@pytest.mark.parametrize("exchange_id", ["binance", "bybit"])
@pytest.mark.parametrize("mode", ["live", "testnet"])
def test_every_api_url_points_at_the_override_and_ccxt_never_retries(
    fake_exchange, exchange_id, mode
):
    client = ccxt_live.client_build(_spec(fake_exchange, exchange_id, mode))

    hosts = {urlsplit(url).netloc for url in _all_urls(client.urls["api"])}
    assert hosts == {urlsplit(fake_exchange.base_url).netloc}
    assert client.options["maxRetriesOnFailure"] == 0
    assert client.isSandboxModeEnabled is (mode == "testnet")


def test_binance_urls_keep_their_paths(fake_exchange):
    client = ccxt_live.client_build(_spec(fake_exchange, "binance"))

    assert client.urls["api"]["sapi"] == f"{fake_exchange.base_url}/sapi/v1"
    assert client.urls["api"]["private"] == f"{fake_exchange.base_url}/api/v3"


@pytest.mark.parametrize("exchange_id", ["binance", "bybit"])
def test_balances_come_back_as_decimals_from_the_fake(fake_exchange, exchange_id):
    fake_exchange.balances = {"USDT": Decimal("1234.5678"), "ETH": Decimal("0.1"), "BNB": 0}
    client = ccxt_live.client_build(_spec(fake_exchange, exchange_id))

    balances = ccxt_live.fetch_balances(client)

    assert balances == {"USDT": Decimal("1234.5678"), "ETH": Decimal("0.1")}
    assert all(type(amount) is Decimal for amount in balances.values())
    # Nothing but the fake was asked, and nothing private beyond what a balance needs.
    assert all(r.path.startswith(("/api/", "/sapi/", "/v5/")) for r in fake_exchange.requests)


@pytest.mark.parametrize("exchange_id", ["binance", "bybit"])
@pytest.mark.parametrize(
    ("can_withdraw", "ip_restricted"), [(False, False), (True, False), (False, True)]
)
def test_key_permissions_are_read_from_the_exchange(
    fake_exchange, exchange_id, can_withdraw, ip_restricted
):
    fake_exchange.key_permissions.can_withdraw = can_withdraw
    fake_exchange.key_permissions.ip_restricted = ip_restricted
    client = ccxt_live.client_build(_spec(fake_exchange, exchange_id))

    assert ccxt_live.key_permissions(client) == KeyPermissions(
        can_withdraw=can_withdraw, ip_restricted=ip_restricted
    )


@pytest.mark.parametrize("exchange_id", ["binance", "bybit"])
def test_a_rejected_key_is_an_authentication_error_without_ccxts_text(fake_exchange, exchange_id):
    fake_exchange.fail_auth = True
    client = ccxt_live.client_build(_spec(fake_exchange, exchange_id))

    with pytest.raises(ccxt_live.ExchangeAuthenticationError) as raised:
        ccxt_live.fetch_balances(client)

    assert "http" not in str(raised.value)
    assert raised.value.__cause__ is None


def test_unknown_exchanges_are_refused():
    spec = ClientSpec(exchange_id="nope", api_key=None, secret=None, passphrase=None, mode="paper")

    with pytest.raises(ccxt_live.UnknownExchangeError):
        ccxt_live.client_build(spec)


def test_popular_exchanges_are_listed_first():
    ids = ccxt_live.exchange_ids()

    assert ids[:5] == ["binance", "bybit", "okx", "kraken", "coinbase"]
    assert ids[5:] == sorted(ids[5:])
    assert len(ids) == len(set(ids)) > 50


@pytest.mark.parametrize("exchange_id", ["binance", "bybit"])
def test_with_balances_per_key_each_key_trades_its_own_funds(fake_exchange, exchange_id):
    fake_exchange.balances_per_key = {"USDT": Decimal(1000)}
    fake_exchange.price_set("BTCUSDT", "20000")
    buyer = ccxt_live.client_build(_spec(fake_exchange, exchange_id))
    other = ccxt_live.client_build(
        replace(_spec(fake_exchange, exchange_id), api_key="other-key-9876")
    )

    buyer.create_order("BTC/USDT", "market", "buy", 0.01)

    assert ccxt_live.fetch_balances(buyer)["BTC"] > 0
    assert ccxt_live.fetch_balances(other) == {"USDT": Decimal(1000)}
