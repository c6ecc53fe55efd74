"""Recorded alerts replayed on a paper bot (issue 7, deliver 5): the tick engine makes the
signal backtest's trades, and the signal page starts such a replay with the bot's risk."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.bots import execution
from apps.bots.models import Bot, BotFill, BotRun, PaperBook
from apps.bots.services.create import bot_create
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run
from apps.common.errors import ApplicationError, InputInvalid
from apps.engine.clock import FixedClock
from apps.engine.decide import build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.risk import RiskLimits
from apps.engine.round_trips import round_trips
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.recorded import RecordedSignalsStrategy
from apps.exchanges.models import ExchangeAccount
from apps.market.selectors import candles_load
from apps.signals.backtest import recorded_alerts
from apps.signals.replay import LEAD_BARS, SignalReplayInput, signal_replay_start
from apps.strategies.models import StrategyVersion
from apps.strategies.services import strategy_recorded_snapshot
from tests.apps.bots.conftest import bot_fills, btc_hours, paper_account  # noqa: F401
from tests.apps.signals.conftest import make_signal_bot
from tests.apps.signals.test_signal_backtest import record_alerts

# (symbol, alert time, action, size mode, size): every sizing the alerts know, a sell
# with nothing held (no order), a partial sell and alerts in the middle of a bar.
ALERTS = [
    ("BTC/USDT", datetime(2020, 9, 8, 3, 59), "sell", "", None),
    ("BTC/USDT", datetime(2020, 9, 8, 4, 10), "buy", "", None),
    ("BTC/USDT", datetime(2020, 9, 9, 17, 30), "close", "", None),
    ("BTC/USDT", datetime(2020, 9, 11, 0, 0), "buy", "contracts", Decimal("0.2")),
    ("BTC/USDT", datetime(2020, 9, 12, 9, 45), "sell", "contracts", Decimal("0.05")),
    ("BTC/USDT", datetime(2020, 9, 13, 22, 5), "close", "", None),
    ("BTC/USDT", datetime(2020, 9, 15, 6, 0), "buy", "quote", Decimal(2500)),
    ("BTC/USDT", datetime(2020, 9, 16, 12, 30), "sell", "equity_pct", Decimal(10)),
    ("BTC/USDT", datetime(2020, 9, 18, 1, 15), "buy", "equity_pct", Decimal(30)),
    ("BTC/USDT", datetime(2020, 9, 20, 8, 0), "close", "", None),
]
END = datetime(2020, 9, 22, tzinfo=UTC)


def near(paper: Decimal | None, backtest: float | None, within: str) -> bool:
    if paper is None or backtest is None:
        return paper is None and backtest is None
    return abs(paper - Decimal(str(backtest))) <= Decimal(within)


def bar_time(candles, index: int | None) -> datetime | None:
    if index is None:
        return None
    return datetime.fromtimestamp(int(candles.time[index].astype("datetime64[s]").astype(int)), UTC)


@pytest.fixture
def signal_bot(alice):
    bot, _secrets = make_signal_bot(alice, risk_profile="balanced")
    record_alerts(bot, ALERTS)
    return bot


@pytest.mark.usefixtures("btc_hours")
def test_a_paper_bot_replaying_alerts_makes_the_signal_backtests_trades(alice, signal_bot):
    version = strategy_recorded_snapshot(
        bot=signal_bot, acting_user=alice, alerts=recorded_alerts(bot=signal_bot)
    )
    start = datetime(2020, 9, 7, tzinfo=UTC)
    bot = bot_create(
        owner=alice,
        name="Alerts on paper",
        strategy_version_id=version.pk,
        account_id=paper_account(alice, label="Replay").pk,
        symbols=["BTC/USDT"],
        feed=Bot.Feed.REPLAY,
        market_exchange="binance",
        replay_start=start,
    )
    run = bot_run_start(bot=bot, acting_user=alice, limits=RiskLimits.unlimited("all_in"))
    PaperBook.objects.filter(account=bot.account).update(slippage=Decimal("0.0005"))
    with execution.account_broker(account=bot.account, clock=FixedClock(start), quote="USDT") as b:
        fee, slippage, cash = b.config.taker_fee, b.config.slippage, b.ledger.balance("USDT")
    hours = int((END - start) / timedelta(hours=1))
    for k in range(hours):
        assert bot_tick_run(run_id=run.pk, candle_time=start + timedelta(hours=k)) == "done"

    candles = candles_load(
        exchange="binance", symbol="BTC/USDT", timeframe="1h", start=start, end=END
    )
    assert len(candles) == hours
    signals = version.engine_spec(symbol="BTC/USDT")
    strategy = build_strategy(signals)
    assert isinstance(strategy, RecordedSignalsStrategy)
    config = ExecutionConfig(cash=float(cash), fee=float(fee), slippage=float(slippage))
    backtest = run_events(strategy, candles, EventConfig(config)).trades
    fills = bot_fills(bot)
    paper = round_trips(fills, {"BTC/USDT": Decimal(str(float(candles.close[-1])))})
    assert len(backtest) >= 5  # every alert but the sell of nothing made an order
    assert len(paper) == len(backtest)
    for k, (want, got) in enumerate(zip(backtest, paper, strict=True)):
        assert got.entry_time == bar_time(candles, want.entry_index), k
        assert got.exit_time == bar_time(candles, want.exit_index), k
        assert near(got.entry_price, want.entry_price, "1e-8"), (k, got, want)
        assert near(got.exit_price, want.exit_price, "1e-8"), (k, got, want)
        assert near(got.qty, want.size, "1e-8"), (k, got, want)
        assert near(got.pnl, want.pnl, "1e-6"), (k, got, want)
    # The alert at 04:10 acts at the 04:00 bar's close and fills at the 05:00 open.
    assert paper[0].entry_time == datetime(2020, 9, 8, 5, tzinfo=UTC)
    assert np.isclose(float(paper[1].qty), 0.05) and np.isclose(float(paper[2].qty), 0.15)


@pytest.mark.usefixtures("btc_hours")
def test_the_signal_page_starts_a_replay_with_the_bots_risk(alice, alice_client, signal_bot):
    url = reverse("signals:backtest", args=[signal_bot.pk])
    page = alice_client.get(url).content.decode()
    assert 'id="signal-replay-form"' in page and 'id="no-replay"' in page
    posted = alice_client.post(
        reverse("signals:replay", args=[signal_bot.pk]),
        {
            "exchange": "binance",
            "timeframe": "1h",
            "seconds_per_candle": "1",
            "initial_capital": "5000",
        },
    )
    replay = Bot.objects.get(name=f"Replay 1 of {signal_bot.name}")
    assert posted.status_code == 302 and posted.url == reverse("bots:detail", args=[replay.pk])
    run = BotRun.objects.get(bot=replay)
    assert run.status == BotRun.Status.RUNNING
    version = StrategyVersion.objects.get(strategy__signal_bot=signal_bot)
    first = datetime(2020, 9, 8, 3, 59, tzinfo=UTC)
    assert (replay.strategy_version_id, replay.feed, replay.symbols) == (
        version.pk,
        Bot.Feed.REPLAY,
        ["BTC/USDT"],
    )
    assert replay.replay_start == first.replace(minute=0) - timedelta(hours=LEAD_BARS)
    assert (replay.risk_profile, replay.replay_seconds_per_candle) == ("balanced", Decimal(1))
    assert run.limits["position_pct"] == signal_bot.runs.latest("created_at").limits["position_pct"]
    account = replay.account
    assert account.mode == ExchangeAccount.Mode.PAPER and account != signal_bot.account
    assert account.paper_balances.get(asset="USDT").amount == Decimal(5000)
    assert AuditEvent.objects.filter(event_type="bot.created", target_id=str(replay.pk)).exists()
    shown = alice_client.get(posted.url).content.decode()
    assert replay.name in shown and f"Recorded alerts of {signal_bot.name}" in shown
    listed = alice_client.get(url).content.decode()
    assert reverse("bots:detail", args=[replay.pk]) in listed and 'id="no-replay"' not in listed

    # The replay ticks as any bot does, and the bot's risk profile sizes the size-less buy
    # (the backtest would spend all the cash): it fills at the open after its bar.
    hours = int((datetime(2020, 9, 8, 6, tzinfo=UTC) - replay.replay_start) / timedelta(hours=1))
    for k in range(hours):
        assert bot_tick_run(
            run_id=run.pk, candle_time=replay.replay_start + timedelta(hours=k)
        ) == ("done")
    (fill,) = BotFill.objects.filter(bot=replay)
    assert (fill.side, fill.executed_at) == ("buy", datetime(2020, 9, 8, 5, tzinfo=UTC))
    assert 0 < fill.qty * fill.price <= Decimal(5000) * Decimal(run.limits["position_pct"])


@pytest.mark.usefixtures("btc_hours")
def test_a_replay_is_refused_with_a_named_field_and_nothing_written(alice):
    empty, _secrets = make_signal_bot(alice, name="Silent")
    with pytest.raises(ApplicationError) as no_alerts:
        signal_replay_start(bot=empty, acting_user=alice, data=SignalReplayInput("binance"))
    assert no_alerts.value.field == "alerts"

    bot, _secrets = make_signal_bot(alice, name="Loud")
    record_alerts(bot, ALERTS)
    bots, accounts = Bot.objects.count(), ExchangeAccount.objects.count()
    with pytest.raises(InputInvalid) as no_candles:
        signal_replay_start(bot=bot, acting_user=alice, data=SignalReplayInput("bybit"))
    assert no_candles.value.field == "symbols"
    with pytest.raises(ApplicationError) as not_paper:
        signal_replay_start(
            bot=bot,
            acting_user=alice,
            data=SignalReplayInput("binance", account_id=bot.account_id + 999),
        )
    assert not_paper.value.field == "account_id"
    assert (Bot.objects.count(), ExchangeAccount.objects.count()) == (bots, accounts)
    assert not StrategyVersion.objects.filter(strategy__signal_bot=bot).exists()


def test_a_recorded_version_is_refused_on_a_live_feed_or_another_symbol(alice, signal_bot):
    version = strategy_recorded_snapshot(
        bot=signal_bot, acting_user=alice, alerts=recorded_alerts(bot=signal_bot)
    )
    values = {
        "owner": alice,
        "name": "Live alerts",
        "strategy_version_id": version.pk,
        "account_id": paper_account(alice, label="Other").pk,
    }
    with pytest.raises(InputInvalid) as live:
        bot_create(**values, symbols=["BTC/USDT"])
    assert live.value.field == "strategy_version_id"
    assert "replay over stored candles" in live.value.message
    with pytest.raises(InputInvalid) as other:
        bot_create(**values, symbols=["ETH/USDT"], feed=Bot.Feed.REPLAY)
    assert ("symbols", True) in [
        (field, "holds no recorded alerts for ETH/USDT" in message)
        for field, message in other.value.problems
    ]
