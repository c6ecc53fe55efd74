"""Real shipped candles (imported with the market app's own service), a template version,
and helpers to run an optimisation's chunks the way the worker does."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.engine.simulator import ExecutionConfig
from apps.market.selectors import candles_load
from apps.market.services import candles_import_csv
from apps.optimizations.services import OptimizationInput
from apps.strategies.services import strategy_create

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"
# Half a year of BTC/USDT hours (4,343 candles, data/candles/README.md).
START = datetime(2020, 9, 1, tzinfo=UTC)
END = datetime(2021, 3, 1, tzinfo=UTC)
SMA_SPACE = {"fast": [5, 10, 20], "slow": {"min": 10, "max": 40, "step": 10}}
# The engine's settings for the defaults of OptimizationInput (0.1 % taker fee).
CONFIG = ExecutionConfig(cash=10_000.0, fee=0.001)


def import_btc_candles() -> None:
    candles_import_csv(
        path=DATA / "BTC-USDT_1h.csv", exchange="binance", symbol="BTC/USDT", timeframe="1h"
    )


def stored_candles():
    return candles_load(exchange="binance", symbol="BTC/USDT", timeframe="1h", start=START, end=END)


@pytest.fixture
def candles(db):
    import_btc_candles()


def make_version(owner, name: str = "SMA cross", template: str = "sma_cross", **params):
    _strategy, version = strategy_create(
        owner=owner,
        name=name,
        kind="template",
        template=template,
        params=params or {"fast": 10, "slow": 30},
    )
    return version


@pytest.fixture
def alice_version(alice):
    return make_version(alice)


def optimization_input(version, **overrides) -> OptimizationInput:
    values = {
        "strategy_version_id": version.pk,
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "start": START,
        "end": END,
        "space": SMA_SPACE,
        "metric": "total_return",
    }
    return OptimizationInput(**(values | overrides))


@pytest.fixture
def enqueued(monkeypatch):
    """Record the chunk messages that would be sent to the broker instead of sending them."""
    from apps.optimizations import tasks

    sent: list[tuple] = []
    monkeypatch.setattr(
        tasks.optimization_chunk_run,
        "apply_async",
        lambda args=None, **kw: sent.append(tuple(args)),
    )
    return sent


@pytest.fixture
def pushes(monkeypatch):
    """Progress states published to the channel layer, in order."""
    from apps.optimizations import progress

    states: list[dict] = []
    monkeypatch.setattr(progress, "publish_progress", states.append)
    return states


def run_chunks(task, capture, order=None) -> list[bool]:
    """Deliver every chunk of `task` once, as the worker would, in `order` (default 0..n-1)."""
    from apps.optimizations.tasks import optimization_chunk_run

    results = []
    for chunk in order if order is not None else range(task.chunk_count):
        with capture(execute=True):
            results.append(optimization_chunk_run(task.pk, chunk))
    return results
