"""Replaying a signal bot's alerts on a paper bot (issue 7, deliver 5): the accepted alerts,
snapshotted as for a signal backtest (a recorded-alerts strategy version), run by an
ordinary strategy bot on a replay feed over stored candles. The tick engine treats each
alert as a strategy's decision at the close of the bar it arrived in, so the orders fill at
the next bar's open, and the bot's page (P&L card, equity, orders, fills, logs) shows the
result as for any paper bot.

Unlike the signal backtest, the replay applies the signal bot's risk profile and overrides
(sizing, trade counts, drawdown stages), as its live alerts are: the replay shows what the
bot would have done with these alerts. The replay starts `LEAD_BARS` candles before the
first alert (the bot has its warmup window besides) and goes on until the stored candles
run out or the user stops it.

Everything is one transaction: the snapshot, the paper account (when a new one is asked
for), the bot and its running run, each audited by its own service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.bots.models import Bot
from apps.bots.services.create import bot_create
from apps.bots.services.lifecycle import bot_run_start
from apps.common.errors import ApplicationError
from apps.engine.timeframes import TimeframeError, parse_timeframe
from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from apps.signals.backtest import NO_ALERTS, alert_times, recorded_alerts
from apps.signals.selectors import signal_replays_of_bot
from apps.strategies.services import strategy_recorded_snapshot

DEFAULT_SECONDS_PER_CANDLE = Decimal(1)
# Candles replayed before the first alert's: a short lead, so the first trade comes soon.
LEAD_BARS = 24


@dataclass(frozen=True)
class SignalReplayInput:
    exchange: str  # whose stored candles are replayed
    timeframe: str = "1h"
    seconds_per_candle: Decimal = DEFAULT_SECONDS_PER_CANDLE
    account_id: int | None = None  # one of the owner's paper accounts; None: a new one
    initial_capital: Decimal = Decimal(10_000)  # the new account's quote balance


@transaction.atomic
def signal_replay_start(*, bot: Bot, acting_user: Any, data: SignalReplayInput) -> Bot:
    """A running paper bot replaying `bot`'s accepted alerts. ApplicationError naming the
    field ("alerts" when there is none, "account_id" for an account that is not one of the
    owner's paper accounts), InputInvalid from `bot_create` naming each setting it refuses
    (symbols without stored candles, the timeframe, the replay speed, the bot quota);
    nothing is written then."""
    alerts = recorded_alerts(bot=bot)
    if not alerts:
        raise ApplicationError(NO_ALERTS, field="alerts")
    version = strategy_recorded_snapshot(bot=bot, acting_user=acting_user, alerts=alerts)
    start = _replay_start(version, data.timeframe)
    symbols = version.recorded_symbols
    number = signal_replays_of_bot(bot=bot).count() + 1
    name = f"Replay {number} of {bot.name}"[:100]
    account = _paper_account(bot, data, label=name, quote=symbols[0].partition("/")[2])
    replay = bot_create(
        owner=bot.owner,
        name=name,
        strategy_version_id=version.pk,
        account_id=account.pk,
        symbols=symbols,
        timeframe=data.timeframe,
        risk_profile=bot.risk_profile,
        risk_overrides=dict(bot.risk_overrides or {}),
        capital_limit=bot.capital_limit,
        max_trades_per_day=bot.max_trades_per_day,
        feed=Bot.Feed.REPLAY,
        market_exchange=data.exchange,
        replay_start=start,
        replay_seconds_per_candle=data.seconds_per_candle,
    )
    bot_run_start(bot=replay, acting_user=acting_user)
    return replay


def _replay_start(version: Any, timeframe: str) -> datetime:
    """`LEAD_BARS` candles of `timeframe` before the first alert's candle (a timeframe
    that cannot be read is left to `bot_create` to refuse)."""
    first = min(alert_times(version))
    try:
        seconds = int(parse_timeframe(timeframe).seconds)
    except TimeframeError:
        seconds = 3600
    moment = int(first.timestamp())
    return datetime.fromtimestamp(moment - moment % seconds - LEAD_BARS * seconds, UTC)


def _paper_account(bot: Bot, data: SignalReplayInput, *, label: str, quote: str) -> ExchangeAccount:
    if data.account_id is None:
        return exchange_account_create(
            owner=bot.owner,
            exchange=data.exchange,
            label=label,
            mode=ExchangeAccount.Mode.PAPER,
            initial_balances={quote: data.initial_capital},
        )
    account = ExchangeAccount.objects.filter(
        pk=data.account_id, owner=bot.owner, mode=ExchangeAccount.Mode.PAPER
    ).first()
    if account is None:
        raise ApplicationError(
            f"Paper account {data.account_id} not found: a replay trades paper money only.",
            field="account_id",
        )
    return account
