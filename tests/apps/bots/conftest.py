"""Replay paper bots on real stored candles (imported with the market app's own service)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from apps.bots.models import Bot, BotFill, BotRun
from apps.bots.services.create import bot_create
from apps.engine.types import Fill
from apps.exchanges.services import exchange_account_create
from apps.market.models import Candle, CandleSeries
from apps.market.services import candles_import_csv
from apps.strategies.services import strategy_create

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"
# Hours of BTC/USDT in 2020 (data/candles/README.md).
START = datetime(2020, 9, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
# A script bot that buys when flat and sells all when not: a round trip every two candles.
FLIP = (
    "def main(sdk, params):\n"
    "    if sdk.position.size == 0:\n"
    "        sdk.buy(amount=1000)\n"
    "    else:\n"
    "        sdk.close()\n"
)


@pytest.fixture
def btc_hours(db):
    candles_import_csv(
        path=DATA / "BTC-USDT_1h.csv", exchange="binance", symbol="BTC/USDT", timeframe="1h"
    )


def paper_account(owner, label: str = "Paper", usdt: str = "10000"):
    return exchange_account_create(
        owner=owner,
        exchange="binance",
        label=label,
        mode="paper",
        initial_balances={"USDT": Decimal(usdt)},
    )


def template_version(owner, name: str = "SMA cross", template: str = "sma_cross", **params):
    _strategy, version = strategy_create(
        owner=owner, name=name, kind="template", template=template, params=params or {}
    )
    return version


def script_version(owner, source: str, name: str = "Script"):
    _strategy, version = strategy_create(owner=owner, name=name, kind="script", script=source)
    return version


def replay_bot(owner, version, *, account=None, name: str = "Replay bot", **fields) -> Bot:
    values = {
        "owner": owner,
        "name": name,
        "strategy_version": version,
        "account": account or paper_account(owner, label=f"Paper for {name}"),
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "feed": Bot.Feed.REPLAY,
        "market_exchange": "binance",
        "replay_start": START,
        "replay_seconds_per_candle": Decimal("0.5"),
        "risk_profile": "aggressive",
    }
    return Bot.objects.create(**(values | fields))


def bot_fills(bot: Bot) -> list[Fill]:
    """The bot's fills as the engine's `Fill`s (for round_trips), oldest first."""
    return [
        Fill(
            f.fill_id,
            f.order.client_order_id,
            f.symbol,
            f.side,
            f.qty,
            f.price,
            f.fee,
            f.fee_asset,
            f.liquidity,
            f.executed_at,
        )
        for f in BotFill.objects.filter(bot=bot).select_related("order").order_by("id")
    ]


def rewind(run: BotRun, candles: int) -> None:
    """Move a replay's clock back so `candles` candles are due now (no waiting in tests)."""
    speed = timedelta(seconds=float(run.bot.replay_seconds_per_candle))
    BotRun.objects.filter(pk=run.pk).update(replay_anchor=timezone.now() - speed * candles)
    run.refresh_from_db()


REPLAY_FROM = datetime(2021, 1, 1, tzinfo=UTC)


def store_candles(
    symbol: str = "BTC/USDT", timeframe: str = "1h", count: int = 48, start: datetime = REPLAY_FROM
) -> None:
    series, _ = CandleSeries.objects.get_or_create(
        exchange="binance", symbol=symbol, timeframe=timeframe
    )
    Candle.objects.bulk_create(
        Candle(
            series=series,
            open_time=start + timedelta(hours=i),
            open=100 + i,
            high=101 + i,
            low=99 + i,
            close=100.5 + i,
            volume=1,
        )
        for i in range(count)
    )


def make_version(owner, name: str = "SMA cross"):
    _strategy, version = strategy_create(
        owner=owner, name=name, kind="template", template="sma_cross", params={"fast": 3, "slow": 5}
    )
    return version


def make_paper_account(owner, label: str = "Paper"):
    return exchange_account_create(owner=owner, exchange="binance", label=label, mode="paper")


def make_bot(owner, version=None, account=None, **overrides):
    values = {
        "owner": owner,
        "name": "Paper SMA",
        "strategy_version_id": (version or make_version(owner)).pk,
        "account_id": (account or make_paper_account(owner)).pk,
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "feed": "replay",
        "replay_start": REPLAY_FROM,
    }
    values.update(overrides)
    return bot_create(**values)


@pytest.fixture
def candles(db):
    store_candles()


@pytest.fixture
def alice_version(alice):
    return make_version(alice)


@pytest.fixture
def alice_account(alice):
    return make_paper_account(alice)
