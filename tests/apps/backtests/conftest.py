"""Real shipped candles (imported with the market app's own service) and strategy versions."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from apps.backtests.services import PairInput, backtest_task_create
from apps.market.services import candles_import_csv
from apps.strategies.services import strategy_create

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"
# Both BTC/USDT and BNB/USDT hourly cover this half year (data/candles/README.md).
START = datetime(2020, 9, 1, tzinfo=UTC)
END = datetime(2021, 3, 1, tzinfo=UTC)


def import_pair_candles() -> None:
    for name, symbol in (("BTC-USDT_1h.csv", "BTC/USDT"), ("BNB-USDT_1h.csv", "BNB/USDT")):
        candles_import_csv(path=DATA / name, exchange="binance", symbol=symbol, timeframe="1h")


@pytest.fixture
def candles(db):
    import_pair_candles()


def make_version(owner, name: str = "SMA cross", fast: int = 10, slow: int = 30):
    _strategy, version = strategy_create(
        owner=owner,
        name=name,
        kind="template",
        template="sma_cross",
        params={"fast": fast, "slow": slow},
    )
    return version


@pytest.fixture
def alice_version(alice):
    return make_version(alice)


@pytest.fixture
def charlie_version(charlie):
    return make_version(charlie, name="Charlie's")


def pair_input(version, symbol: str = "BTC/USDT", **overrides) -> PairInput:
    values = {
        "symbol": symbol,
        "timeframe": "1h",
        "strategy_version_id": version.pk,
        "initial_capital": Decimal(10_000),
        "taker_fee": Decimal("0.001"),
    }
    return PairInput(**(values | overrides))


def task_create(owner, pairs, **overrides):
    """backtest_task_create on binance spot over START..END, unless overridden."""
    values = {
        "owner": owner,
        "name": "Two pairs",
        "exchange": "binance",
        "market_type": "spot",
        "start": START,
        "end": END,
    }
    return backtest_task_create(**(values | overrides), pairs=pairs)


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would be sent to the broker instead of sending it."""
    from apps.backtests import tasks

    sent: list[tuple] = []
    monkeypatch.setattr(
        tasks.backtest_task_run,
        "apply_async",
        lambda args=None, task_id=None, **kw: sent.append((tuple(args), task_id)),
    )
    return sent


@pytest.fixture
def pushes(monkeypatch):
    """Progress states published to the channel layer, in order."""
    from apps.backtests import progress

    states: list[dict] = []
    monkeypatch.setattr(progress, "publish_progress", states.append)
    return states
