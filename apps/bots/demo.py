"""The demo's two paper bots (`make run` -> seed_demo): replays of real stored candles,
started where their strategies trade within the first candles, so a new user sees orders,
trades and P&L move within a minute. Idempotent: a bot that exists is left as it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apps.accounts.models import User
from apps.bots.models import Bot
from apps.bots.services import lifecycle
from apps.bots.services.create import bot_create
from apps.common.errors import ApplicationError
from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from apps.market.models import Candle
from apps.strategies.models import Strategy, StrategyVersion
from apps.strategies.services import strategy_create

SECONDS_PER_CANDLE = Decimal(2)


@dataclass(frozen=True)
class DemoBot:
    name: str
    strategy: str
    template: str
    params: dict[str, Any]
    symbol: str
    # Two candles before the first entry signal in data/candles (checked against the CSVs):
    # the SMA 10/30 cross on BTC/USDT crosses up at 2021-04-24 00:00 and down 13 candles
    # later; RSI 40/60 on BNB/USDT crosses up at 2021-05-30 02:00 and exits 6 candles on.
    replay_start: datetime


DEMO_BOTS = (
    DemoBot(
        name="Demo: SMA cross on BTC",
        strategy="SMA 10/30 cross",
        template="sma_cross",
        params={"fast": 10, "slow": 30},
        symbol="BTC/USDT",
        replay_start=datetime(2021, 4, 23, 22, tzinfo=UTC),
    ),
    DemoBot(
        name="Demo: RSI swing on BNB",
        strategy="RSI swing 40/60",
        template="rsi_swing",
        params={"period": 14, "oversold": 40, "overbought": 60},
        symbol="BNB/USDT",
        replay_start=datetime(2021, 5, 30, 0, tzinfo=UTC),
    ),
)


def _version(user: User, demo: DemoBot) -> StrategyVersion:
    strategy = Strategy.objects.filter(owner=user, name=demo.strategy).first()
    if strategy is None:
        strategy, version = strategy_create(
            owner=user,
            name=demo.strategy,
            kind="template",
            template=demo.template,
            params=demo.params,
            description="Traded by a demo paper bot on replayed candles.",
        )
        return version
    return StrategyVersion.objects.filter(strategy=strategy).order_by("-number").first()


def _account(user: User, demo: DemoBot) -> ExchangeAccount:
    """Each demo bot trades its own paper account, so its P&L is its own (bots sharing an
    account share its cash and positions, as on an exchange)."""
    label = f"Demo paper: {demo.symbol}"
    account = ExchangeAccount.objects.filter(owner=user, label=label).first()
    if account is None:
        account = exchange_account_create(
            owner=user,
            exchange="binance",
            label=label,
            mode=ExchangeAccount.Mode.PAPER,
            initial_balances={"USDT": Decimal(10_000)},
        )
    return account


def _candles_stored(demo: DemoBot) -> bool:
    return Candle.objects.filter(
        series__exchange="binance",
        series__symbol=demo.symbol,
        series__timeframe="1h",
        open_time__gte=demo.replay_start,
    ).exists()


def demo_bots_seed(*, user: User) -> list[str]:
    """Create the demo bots once and start those never run; return what was done."""
    if not ExchangeAccount.objects.filter(owner=user, mode=ExchangeAccount.Mode.PAPER).exists():
        return []
    done = []
    for demo in DEMO_BOTS:
        bot = Bot.objects.filter(owner=user, name=demo.name).first()
        if bot is None and not _candles_stored(demo):
            continue  # load_demo_candles has not run (make run always runs it first)
        if bot is None:
            bot = bot_create(
                owner=user,
                name=demo.name,
                strategy_version_id=_version(user, demo).pk,
                account_id=_account(user, demo).pk,
                symbols=[demo.symbol],
                timeframe="1h",
                feed=Bot.Feed.REPLAY,
                replay_start=demo.replay_start,
                replay_seconds_per_candle=SECONDS_PER_CANDLE,
            )
            done.append(f"the paper bot “{bot.name}”")
        if not bot.runs.exists():
            try:
                lifecycle.bot_run_start(bot=bot, acting_user=user)
            except ApplicationError as error:
                done.append(f"(“{bot.name}” not started: {error.message})")
            else:
                done.append(f"started “{bot.name}” on replayed {demo.symbol} 1h candles")
    return done
