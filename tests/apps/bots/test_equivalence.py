"""A replay paper bot over stored real candles makes exactly the backtest's trades for the
same version and settings (issue 6 §8); tests/engine/test_paper_equivalence.py is the
engine's version of this. Here everything goes through the app: candles imported by the
market app, the bot started by the lifecycle service with unlimited all-in limits (the
backtest's sizing), each candle ticked by the tick service, fills read back from BotFill."""

from datetime import timedelta
from decimal import Decimal

from apps.bots import execution
from apps.bots.models import PaperBook
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run
from apps.engine.backtest import run_backtest
from apps.engine.clock import FixedClock
from apps.engine.risk import RiskLimits
from apps.engine.round_trips import round_trips
from apps.engine.simulator import ExecutionConfig
from apps.market.selectors import candles_load
from tests.apps.bots.conftest import START, bot_fills, replay_bot, template_version

BARS = 600


def near(paper: Decimal | None, backtest: float | None, within: str) -> bool:
    if paper is None or backtest is None:
        return paper is None and backtest is None
    return abs(paper - Decimal(str(backtest))) <= Decimal(within)


def iso(moment) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def test_a_replay_paper_bot_makes_the_backtests_trades(alice, btc_hours):
    version = template_version(alice, fast=5, slow=20)
    bot = replay_bot(alice, version)
    run = bot_run_start(bot=bot, acting_user=alice, limits=RiskLimits.unlimited("all_in"))
    PaperBook.objects.filter(account=bot.account).update(slippage=Decimal("0.0005"))
    with execution.account_broker(
        account=bot.account, clock=FixedClock(START), quote="USDT"
    ) as broker:
        config = broker.config
        assert (config.taker_fee, config.slippage) == (Decimal("0.001"), Decimal("0.0005"))
        cash = broker.ledger.balance("USDT")
    for k in range(BARS):
        assert bot_tick_run(run_id=run.pk, candle_time=START + timedelta(hours=k)) == "done"

    candles = candles_load(
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
        start=START,
        end=START + timedelta(hours=BARS),
    )
    spec = version.engine_spec()
    report = run_backtest(
        spec,
        candles,
        ExecutionConfig(
            cash=float(cash), fee=float(config.taker_fee), slippage=float(config.slippage)
        ),
    )
    fills = bot_fills(bot)
    last_close = Decimal(str(float(candles.close[-1])))
    paper = round_trips(fills, {"BTC/USDT": last_close})
    assert len(report.trades) >= 8
    assert len(paper) == len(report.trades)
    for k, (want, got) in enumerate(zip(report.trades, paper, strict=True)):
        assert (iso(got.entry_time), iso(got.exit_time)) == (want.entry_time, want.exit_time), k
        assert near(got.entry_price, want.entry_price, "1e-8"), (k, got, want)
        assert near(got.exit_price, want.exit_price, "1e-8"), (k, got, want)
        assert near(got.qty, want.size, "1e-8"), (k, got, want)
        assert near(got.fee, want.fee, "1e-8"), (k, got, want)
        assert near(got.pnl, want.pnl, "1e-6"), (k, got, want)
