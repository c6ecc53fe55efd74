"""Signal bots on paper accounts, webhook deliveries, and the queued executions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.exchanges.services import exchange_account_create
from apps.signals.services import SignalBotInput, signal_bot_create

# A signal backtest is a backtests-app task: its tests use that app's broker fixtures.
from tests.apps.backtests.conftest import enqueued, pushes  # noqa: F401
from tests.apps.exchanges import conftest as exchange_fixtures

PASSPHRASE = "correct-passphrase-123"


def make_signal_bot(owner, name="TV bot", symbols=("BTC/USDT",), **values):
    account = values.pop("account", None) or exchange_account_create(
        owner=owner, exchange="binance", label=f"Paper {name}", mode="paper"
    )
    data = SignalBotInput(
        name=name,
        account_id=account.pk,
        symbols=list(symbols),
        passphrase=values.pop("passphrase", PASSPHRASE),
        **values,
    )
    return signal_bot_create(owner=owner, data=data)


def hook_path(token: str) -> str:
    return reverse("hooks:tradingview", kwargs={"hook_token": token})


def alert(**fields) -> dict:
    body = {
        "passphrase": PASSPHRASE,
        "ticker": "BINANCE:BTCUSDT",
        "action": "buy",
        "price": "30000",
        "time": datetime.now(UTC).isoformat(),
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def post_alert(client, token: str, body, content_type="application/json", **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(hook_path(token), data=data, content_type=content_type, **extra)


@pytest.fixture
def queued(monkeypatch):
    """Event ids queued for execution (the real task is run by `run_queued`)."""
    from apps.signals import tasks

    ids: list[int] = []
    monkeypatch.setattr(tasks.signal_execute, "delay", ids.append)
    return ids


def run_queued(ids: list[int]) -> list[str]:
    from apps.signals.execute import signal_event_execute

    outcomes = [signal_event_execute(event_id=event_id) for event_id in ids]
    ids.clear()
    return outcomes


@pytest.fixture
def signal_bot(alice):
    return make_signal_bot(alice, size_mode="quote", size_value=Decimal(100))


# The loopback fake exchange, with every ccxt client pointed at it.
fake_exchange = exchange_fixtures.fake_exchange

TESTNET_KEY = "testnet-key-SENTINEL-7a51c0de"
TESTNET_SECRET = "testnet-secret-SENTINEL-9f3e2b77"


@pytest.fixture
def testnet_account(alice, fake_exchange):
    """Alice's Binance testnet account, on the fake: 10,000 USDT, BTC/USDT at 30,000."""
    from apps.bots.exchange_orders import exchange_brokers_forget

    fake_exchange.balances = {"USDT": Decimal(10000)}
    fake_exchange.price_set("BTCUSDT", "30000")
    account = exchange_account_create(
        owner=alice,
        exchange="binance",
        label="Binance testnet",
        mode="testnet",
        api_key=TESTNET_KEY,
        api_secret=TESTNET_SECRET,
    )
    yield account
    exchange_brokers_forget()


def make_testnet_signal_bot(owner, account, name="TV testnet bot", **values):
    """A signal bot on `account` (testnet), made through the service as a user makes one."""
    return make_signal_bot(owner, name=name, account=account, **values)
