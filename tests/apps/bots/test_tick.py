"""One tick per (run, candle): fills, decisions, risk, orders and the run's bookkeeping."""

import threading

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.bots.models import BotFill, BotLog, BotOrder, BotRun, EquitySnapshot, Tick
from apps.bots.services.lifecycle import bot_run_start, global_kill_set
from apps.bots.tick import bot_tick_run
from tests.apps.bots.conftest import FLIP, HOUR, START, replay_bot, script_version, template_version

BUY_EVERY_BAR = "def main(sdk, params):\n    sdk.buy(amount=100)\n"


def tick_through(run: BotRun, bars: int, first: int = 0) -> list[str]:
    return [bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k) for k in range(first, bars)]


@pytest.fixture
def sma_run(alice, btc_hours):
    bot = replay_bot(alice, template_version(alice, fast=5, slow=20), risk_profile="aggressive")
    return bot_run_start(bot=bot, acting_user=alice)


def test_a_replay_bot_trades_and_keeps_its_books(sma_run):
    outcomes = tick_through(sma_run, 150)
    assert outcomes == ["done"] * 150
    run = BotRun.objects.get(pk=sma_run.pk)
    assert run.status == "RUNNING" and run.ticks_done == 150 and run.ticks_dropped == 0
    assert run.last_candle_at == START + HOUR * 149
    assert Tick.objects.filter(run=run, status="done").count() == 150
    assert EquitySnapshot.objects.filter(run=run).count() == 150
    orders = BotOrder.objects.filter(run=run)
    assert orders.filter(side="buy").exists() and orders.filter(side="sell").exists()
    # Each order was issued on one candle close and filled at the next candle's open.
    for fill in BotFill.objects.filter(order__run=run).select_related("order"):
        assert fill.executed_at == fill.order.candle_time + HOUR
    assert run.equity_last == EquitySnapshot.objects.filter(run=run).last().equity


def test_a_repeated_tick_does_nothing(sma_run):
    tick_through(sma_run, 60)
    orders = BotOrder.objects.count()
    again = [bot_tick_run(run_id=sma_run.pk, candle_time=START + HOUR * k) for k in range(60)]
    assert set(again) == {"duplicate"}
    assert BotOrder.objects.count() == orders
    assert Tick.objects.filter(run=sma_run).count() == 60
    assert BotRun.objects.get(pk=sma_run.pk).ticks_done == 60


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_tick_at_once_run_it_once(alice, btc_hours):
    bot = replay_bot(alice, script_version(alice, BUY_EVERY_BAR))
    run = bot_run_start(bot=bot, acting_user=alice)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            outcomes.append(bot_tick_run(run_id=run.pk, candle_time=START))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["done", "duplicate", "duplicate"]
    assert Tick.objects.filter(run=run).count() == 1
    assert BotOrder.objects.filter(run=run).count() == 1


def test_a_failing_bot_fails_alone(alice, btc_hours):
    healthy = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    broken_bot = replay_bot(
        alice, template_version(alice, name="No data"), name="Broken", market_exchange="kraken"
    )
    broken = bot_run_start(bot=broken_bot, acting_user=alice)
    assert bot_tick_run(run_id=broken.pk, candle_time=START) == "failed"
    assert tick_through(healthy, 5) == ["done"] * 5
    broken.refresh_from_db()
    assert broken.status == "FAILED" and "no 1h candle for BTC/USDT" in broken.last_error
    assert Tick.objects.get(run=broken).status == "failed"
    assert BotLog.objects.filter(run=broken, level="error").exists()
    assert (
        AuditEvent.objects.filter(event_type="bots.run_failed", target_id=str(broken.pk)).count()
        == 1
    )
    assert bot_tick_run(run_id=broken.pk, candle_time=START + HOUR) == "skipped"


def test_risk_rejections_go_to_the_log_and_the_audit(alice, btc_hours):
    bot = replay_bot(
        alice,
        script_version(alice, BUY_EVERY_BAR),
        risk_profile="balanced",
        risk_overrides={"sizing": "percent", "max_trades_per_day": 2},
    )
    run = bot_run_start(bot=bot, acting_user=alice)
    tick_through(run, 5)
    assert BotOrder.objects.filter(run=run).count() == 2
    rejected = BotLog.objects.filter(run=run, source="risk")
    assert rejected.count() == 3
    assert "max_trades_per_day" in rejected.first().message
    events = AuditEvent.objects.filter(event_type="bots.risk_rejected", target_id=str(run.pk))
    assert events.count() == 3 and events.first().data["limit"] == "max_trades_per_day"


def test_the_global_kill_switch_refuses_every_intent(alice, btc_hours):
    run = bot_run_start(
        bot=replay_bot(alice, script_version(alice, BUY_EVERY_BAR)), acting_user=alice
    )
    tick_through(run, 1)
    global_kill_set(engaged=True, acting_user=alice, reason="exchange incident")
    tick_through(run, 3, first=1)
    assert BotOrder.objects.filter(run=run).count() == 1
    messages = list(BotLog.objects.filter(run=run, source="risk").values_list("message", flat=True))
    assert messages == ["buy BTC/USDT refused by kill_switch: the global kill switch is on"] * 2


def test_bots_sharing_an_account_on_different_symbols(alice, btc_hours):
    from apps.market.services import candles_import_csv
    from tests.apps.bots.conftest import DATA, paper_account

    candles_import_csv(
        path=DATA / "BNB-USDT_1h.csv", exchange="binance", symbol="BNB/USDT", timeframe="1h"
    )
    account = paper_account(alice, label="Shared")
    buy_once = (
        "def main(sdk, params):\n"
        "    if not sdk.state.get('done'):\n"
        "        sdk.buy(amount=1000)\n"
        "        sdk.state['done'] = True\n"
    )
    btc = bot_run_start(
        bot=replay_bot(alice, script_version(alice, buy_once), account=account, name="BTC"),
        acting_user=alice,
    )
    bnb = bot_run_start(
        bot=replay_bot(
            alice,
            script_version(alice, buy_once, name="BNB script"),
            account=account,
            name="BNB",
            symbols=["BNB/USDT"],
        ),
        acting_user=alice,
    )
    for k in range(3):
        for run in (btc, bnb):
            assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k) == "done"
    assert BotFill.objects.filter(account=account).count() == 2
    assert set(BotFill.objects.values_list("symbol", flat=True)) == {"BTC/USDT", "BNB/USDT"}


def test_an_unreachable_database_is_retried_not_blamed_on_the_bot(sma_run, monkeypatch):
    from django.db import OperationalError

    from apps.bots import feeds

    def refused(*args, **kwargs):
        raise OperationalError("connection failed: sorry, too many clients already")

    monkeypatch.setattr(feeds, "window", refused)
    assert bot_tick_run(run_id=sma_run.pk, candle_time=START) == "retry"
    monkeypatch.undo()
    sma_run.refresh_from_db()
    assert sma_run.status == "RUNNING" and not Tick.objects.filter(run=sma_run).exists()
    assert bot_tick_run(run_id=sma_run.pk, candle_time=START) == "done"


def test_a_losing_streak_starts_a_cooldown(alice, btc_hours):
    from decimal import Decimal

    from apps.bots.models import PaperBook

    bot = replay_bot(alice, script_version(alice, FLIP), cooldown_after_losses=2, cooldown_bars=3)
    run = bot_run_start(bot=bot, acting_user=alice)
    # 5 % per side: every round trip within an hour loses.
    PaperBook.objects.filter(account=bot.account).update(taker_fee=Decimal("0.05"))
    tick_through(run, 12)
    run.refresh_from_db()
    refused = BotLog.objects.filter(run=run, source="risk", message__contains="cooldown")
    assert BotLog.objects.filter(run=run, message__contains="2 losing trades in a row").exists()
    assert refused.filter(message__startswith="buy BTC/USDT refused by cooldown").count() >= 2
    assert AuditEvent.objects.filter(
        event_type="bots.risk_rejected", data__limit="cooldown", target_id=str(run.pk)
    ).exists()
    buys = list(BotOrder.objects.filter(run=run, side="buy").values_list("candle_time", flat=True))
    sells = BotOrder.objects.filter(run=run, side="sell").count()
    assert len(buys) < 6 and sells >= 2  # the cooldown skipped entries a flip bot makes
