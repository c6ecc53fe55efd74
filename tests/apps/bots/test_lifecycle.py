"""A run's transitions, each audited: start, pause/resume, stop (closing or leaving the
position), kill, panic, DONE at the end of a replay, and the explicit risk resume."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.bots.actions import bot_action_run
from apps.bots.models import AccountRisk, BotFill, BotOrder, BotRun, KillSwitch, PaperBook
from apps.bots.schedule import bots_schedule
from apps.bots.services.lifecycle import (
    bot_kill,
    bot_run_pause,
    bot_run_resume,
    bot_run_start,
    bot_run_stop,
    run_risk_resume,
    user_panic,
)
from apps.bots.tick import bot_tick_run
from apps.common.errors import ApplicationError
from apps.engine.risk import RiskState, Stage
from apps.market.models import Candle
from tests.apps.bots.conftest import HOUR, START, paper_account, replay_bot, script_version

BUY_ONCE = (
    "def main(sdk, params):\n"
    "    if not sdk.state.get('bought'):\n"
    "        sdk.buy(amount=1000)\n"
    "        sdk.state['bought'] = True\n"
)


def events(run: BotRun) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(run.pk), event_type__startswith="bots.run")
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def btc_held(account) -> Decimal:
    book = PaperBook.objects.get(account=account)
    return Decimal(book.state["ledger"]["books"]["balances"].get("BTC", "0"))


@pytest.fixture
def holding_run(alice, btc_hours):
    """A running bot that bought 1000 USDT of BTC on its first candle (filled on the 2nd)."""
    run = bot_run_start(bot=replay_bot(alice, script_version(alice, BUY_ONCE)), acting_user=alice)
    for k in range(3):
        assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k) == "done"
    return run


def test_stop_with_close_positions_sells_on_the_next_candle(alice, holding_run):
    account = holding_run.bot.account
    assert btc_held(account) > 0
    run = bot_run_stop(run=holding_run, acting_user=alice, close_positions=True)
    assert run.status == "STOPPING"
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * 3) == "done"
    run.refresh_from_db()
    assert run.status == "STOPPED" and run.ended_at is not None
    assert btc_held(account) == 0
    sell = BotOrder.objects.get(run=run, side="sell")
    assert sell.status == "FILLED" and sell.reason == "kill_switch"
    assert events(run) == ["bots.run_started", "bots.run_stopping", "bots.run_stopped"]
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * 4) == "skipped"


def test_stop_leaving_positions_stops_at_once(alice, holding_run):
    account = holding_run.bot.account
    held = btc_held(account)
    run = bot_run_stop(run=holding_run, acting_user=alice, close_positions=False)
    assert run.status == "STOPPED"
    assert btc_held(account) == held
    assert not BotOrder.objects.filter(run=run, side="sell").exists()


def test_pause_skips_ticks_and_resume_goes_on(alice, holding_run):
    run = bot_run_pause(run=holding_run, acting_user=alice)
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * 3) == "skipped"
    assert bots_schedule(enqueue=lambda *a: pytest.fail("a paused run was scheduled")) == 0
    run = bot_run_resume(run=run, acting_user=alice)
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * 3) == "done"
    assert events(run)[-2:] == ["bots.run_paused", "bots.run_resumed"]
    with pytest.raises(ApplicationError):
        bot_run_resume(run=run, acting_user=alice)


def test_a_bot_runs_once_at_a_time(alice, holding_run):
    with pytest.raises(ApplicationError, match="already running"):
        bot_run_start(bot=holding_run.bot, acting_user=alice)


def test_kill_and_panic_flatten_and_stop(alice, holding_run, btc_hours):
    other = bot_run_start(
        bot=replay_bot(alice, script_version(alice, BUY_ONCE, name="Two"), name="Second"),
        acting_user=alice,
    )
    assert user_panic(user=alice, acting_user=alice, reason="test") == 2
    assert KillSwitch.objects.get(user=alice).engaged
    holding_run.refresh_from_db()
    other.refresh_from_db()
    assert holding_run.status == "STOPPING" and other.status == "STOPPED"
    bot_tick_run(run_id=holding_run.pk, candle_time=START + HOUR * 3)
    holding_run.refresh_from_db()
    assert holding_run.status == "STOPPED" and btc_held(holding_run.bot.account) == 0
    with pytest.raises(ApplicationError, match="kill switch"):
        bot_run_start(bot=holding_run.bot, acting_user=alice)
    assert AuditEvent.objects.filter(event_type="bots.user_panic").count() == 1
    assert bot_kill(bot=holding_run.bot, acting_user=alice) is None


@pytest.fixture
def replayed_to_the_end(alice, btc_hours):
    """A running bot that ticked the replay's last 3 candles (bought on the first)."""
    bot = replay_bot(alice, script_version(alice, BUY_ONCE))
    bot.replay_start = START.replace(year=2021, month=6, day=9, hour=21)
    bot.save()
    run = bot_run_start(bot=bot, acting_user=alice)
    for k in range(3):
        assert bot_tick_run(run_id=run.pk, candle_time=bot.replay_start + HOUR * k) == "done"
    run.refresh_from_db()
    return run


def test_a_replay_that_runs_out_of_candles_is_done(replayed_to_the_end):
    run = replayed_to_the_end
    later = run.replay_anchor + timedelta(hours=1)
    assert bots_schedule(now=later, enqueue=lambda *a: pytest.fail("nothing is left")) == 0
    run.refresh_from_db()
    assert run.status == "DONE" and events(run)[-1] == "bots.run_done"


def test_a_stop_after_the_replay_ran_out_flattens_at_the_last_close(alice, replayed_to_the_end):
    run, bot = replayed_to_the_end, replayed_to_the_end.bot
    assert btc_held(bot.account) > 0
    run = bot_run_stop(run=run, acting_user=alice, close_positions=True)
    assert run.status == "STOPPED" and btc_held(bot.account) == 0
    sell = BotOrder.objects.get(run=run, side="sell")
    last = Candle.objects.get(
        series__symbol="BTC/USDT", series__timeframe="1h", open_time=bot.replay_start + HOUR * 2
    )
    fill = BotFill.objects.get(order=sell)
    assert sell.status == "FILLED" and abs(fill.price / Decimal(str(last.close)) - 1) < Decimal(
        "0.01"
    )
    run.refresh_from_db()
    # Flat again, the run's P&L is exactly its own fills' cash flow, fees included.
    fills = BotFill.objects.filter(order__run=run)
    assert {fill.fee_asset for fill in fills} == {"USDT"}
    cash_flow = sum(
        (f.qty * f.price * (1 if f.side == "sell" else -1) - f.fee for f in fills), Decimal(0)
    )
    assert run.realized_pnl == cash_flow != 0 and run.ended_at is not None
    assert events(run) == ["bots.run_started", "bots.run_stopping", "bots.run_stopped"]


def test_a_halted_run_resumes_only_by_an_explicit_action(alice, holding_run):
    halted = RiskState(stage=Stage.HALTED)
    BotRun.objects.filter(pk=holding_run.pk).update(risk_state=halted.to_dict())
    bot_tick_run(run_id=holding_run.pk, candle_time=START + HOUR * 3)
    holding_run.refresh_from_db()
    assert RiskState.from_dict(holding_run.risk_state).stage is Stage.HALTED
    run = run_risk_resume(run=holding_run, acting_user=alice)
    assert RiskState.from_dict(run.risk_state).stage is Stage.ACTIVE
    resumed = AuditEvent.objects.get(event_type="bots.risk_resumed", target_id=str(run.pk))
    assert resumed.data["stage_before"] == "HALTED"


def test_an_account_resume_restarts_from_the_accounts_equity_not_one_bots(alice, btc_hours):
    account = paper_account(alice, usdt="10000")
    small = replay_bot(alice, script_version(alice, BUY_ONCE), account=account, name="Small")
    small.capital_limit = Decimal(1000)
    small.save()
    run = bot_run_start(bot=small, acting_user=alice)
    assert run.equity_start == Decimal(1000)
    AccountRisk.objects.update_or_create(
        account=account, defaults={"state": RiskState(stage=Stage.HALTED).to_dict()}
    )
    bot_action_run(bot=small, user=alice, action="risk-resume")
    state = RiskState.from_dict(AccountRisk.objects.get(account=account).state)
    assert state.stage is Stage.ACTIVE
    assert state.peak_equity == state.day_start_equity == Decimal(10000)
