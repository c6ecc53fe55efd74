"""Batches: runs due on the same candle tick together, with every guarantee of one tick."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from apps.audit.models import AuditEvent
from apps.bots import tasks, tick_trade
from apps.bots.models import BotLog, BotOrder, BotRun, PaperBook, Tick
from apps.bots.schedule import bots_schedule
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run, bot_ticks_run
from apps.exchanges.models import PaperBalance
from tests.apps.bots.conftest import (
    FLIP,
    HOUR,
    START,
    paper_account,
    replay_bot,
    script_version,
    template_version,
)


def sma_runs(owner, count: int, **fields) -> list[BotRun]:
    version = template_version(owner, fast=3, slow=8)
    return [
        bot_run_start(bot=replay_bot(owner, version, name=f"SMA {i}", **fields), acting_user=owner)
        for i in range(count)
    ]


def orders(run: BotRun) -> list[tuple]:
    return list(
        BotOrder.objects.filter(run=run)
        .order_by("candle_time", "side")
        .values_list("candle_time", "side", "status", "filled_qty")
    )


def test_a_batch_trades_like_each_bot_alone(alice, btc_hours):
    alone, *batched = sma_runs(alice, 3)
    for k in range(40):
        assert bot_tick_run(run_id=alone.pk, candle_time=START + HOUR * k) == "done"
        outcomes = bot_ticks_run(run_ids=[r.pk for r in batched], candle_time=START + HOUR * k)
        assert outcomes == {r.pk: "done" for r in batched}
    expected = orders(alone)
    assert len(expected) >= 2
    for run in batched:
        assert orders(run) == expected
        run.refresh_from_db()
        assert run.ticks_done == 40 and run.last_candle_at == START + HOUR * 39
        assert Tick.objects.filter(run=run, status="done").count() == 40
    placed = AuditEvent.objects.filter(event_type="bot.order.placed")
    assert placed.count() == 3 * len(expected)


def test_a_redelivered_batch_ticks_only_what_it_has_not(alice, btc_hours):
    first, second = sma_runs(alice, 2)
    assert bot_tick_run(run_id=first.pk, candle_time=START) == "done"
    outcomes = bot_ticks_run(run_ids=[first.pk, second.pk], candle_time=START)
    assert outcomes == {first.pk: "duplicate", second.pk: "done"}
    again = bot_ticks_run(run_ids=[first.pk, second.pk], candle_time=START)
    assert again == {first.pk: "duplicate", second.pk: "duplicate"}
    for run in (first, second):
        run.refresh_from_db()
        assert run.ticks_done == 1 and Tick.objects.filter(run=run).count() == 1


def test_a_bot_failing_in_a_batch_on_a_shared_account_fails_alone(alice, btc_hours, monkeypatch):
    account = paper_account(alice, label="Shared")
    buyer = bot_run_start(
        bot=replay_bot(alice, script_version(alice, FLIP), account=account, name="Buyer"),
        acting_user=alice,
    )
    broken = bot_run_start(
        bot=replay_bot(
            alice, script_version(alice, FLIP, name="Broken"), account=account, name="Broken"
        ),
        acting_user=alice,
    )
    real = tick_trade.trade

    def trade(work, broker, context):
        real(work, broker, context)  # it places its order, then breaks
        if work.run.pk == broken.pk:
            raise RuntimeError("strategy bug")

    monkeypatch.setattr(tick_trade, "trade", trade)
    outcomes = bot_ticks_run(run_ids=[buyer.pk, broken.pk], candle_time=START)
    assert outcomes == {buyer.pk: "done", broken.pk: "failed"}
    broken.refresh_from_db()
    assert broken.status == "FAILED" and broken.last_error == "RuntimeError: strategy bug"
    assert Tick.objects.get(run=broken).status == "failed"
    assert AuditEvent.objects.filter(
        event_type="bots.run_failed", target_id=str(broken.pk)
    ).exists()
    # Its order and its audit event rolled back, in the database and in the shared book.
    assert not BotOrder.objects.filter(run=broken).exists()
    assert not AuditEvent.objects.filter(
        event_type="bot.order.placed", data__client_order_id__startswith=f"r{broken.pk}-"
    ).exists()
    book = PaperBook.objects.get(account=account).state
    assert {o["client_order_id"] for o in book["orders"]} == set(
        BotOrder.objects.filter(run=buyer).values_list("client_order_id", flat=True)
    )
    assert bot_ticks_run(run_ids=[buyer.pk, broken.pk], candle_time=START + HOUR) == {
        buyer.pk: "done",
        broken.pk: "skipped",
    }
    assert BotOrder.objects.filter(run=buyer, status="FILLED").count() == 1


def test_an_overrun_drops_the_bot_that_ran_and_resends_the_others(alice, btc_hours, monkeypatch):
    slow, other = sma_runs(alice, 2)
    real = tick_trade.trade

    def trade(work, broker, context):
        if work.run.pk == slow.pk:
            raise SoftTimeLimitExceeded()
        real(work, broker, context)

    sent = []
    monkeypatch.setattr(tick_trade, "trade", trade)
    monkeypatch.setattr(tasks.bot_ticks, "apply_async", lambda args: sent.append(args))
    assert tasks.bot_ticks([other.pk, slow.pk], START.isoformat()) == {slow.pk: "dropped"}
    slow.refresh_from_db()
    assert slow.status == "RUNNING" and slow.ticks_dropped == 1 and slow.last_candle_at == START
    assert Tick.objects.get(run=slow).note == "over the time limit"
    # The batch rolled back: the other run ticks when its message comes again.
    assert not Tick.objects.filter(run=other).exists()
    assert sent == [[[other.pk], START.isoformat()]]
    assert bot_ticks_run(run_ids=[other.pk], candle_time=START) == {other.pk: "done"}


def test_the_scheduler_batches_runs_due_on_the_same_candle(
    alice, btc_hours, settings, django_capture_on_commit_callbacks
):
    settings.BOTS_TICK_BATCH = 2
    runs = sma_runs(alice, 3)
    script = bot_run_start(
        bot=replay_bot(alice, script_version(alice, FLIP), name="Script"), acting_user=alice
    )
    sent: list[tuple[list[int], str, None]] = []
    with django_capture_on_commit_callbacks(execute=True):
        assert bots_schedule(enqueue=lambda *m: sent.append(m)) == 4
    iso = START.isoformat()
    ids = sorted(r.pk for r in runs)
    expected = [(ids[:2], iso, None), (ids[2:], iso, None), ([script.pk], iso, None)]
    assert sorted(sent) == sorted(expected)


def test_balances_are_written_only_when_they_move(alice, btc_hours):
    (run,) = sma_runs(alice, 1)
    bot_tick_run(run_id=run.pk, candle_time=START)
    stamps = list(PaperBalance.objects.filter(account=run.bot.account).values_list("updated_at"))
    for k in range(1, 5):  # the SMA's warmup: no order, no fill
        bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k)
    assert not BotOrder.objects.filter(run=run).exists()
    assert (
        list(PaperBalance.objects.filter(account=run.bot.account).values_list("updated_at"))
        == stamps
    )


@pytest.mark.parametrize("count", [2])
def test_risk_rejections_of_a_batch_are_audited(alice, btc_hours, count):
    version = script_version(alice, "def main(sdk, params):\n    sdk.buy(amount=100)\n")
    runs = [
        bot_run_start(
            bot=replay_bot(
                alice,
                version,
                name=f"Capped {i}",
                risk_profile="balanced",
                risk_overrides={"sizing": "percent", "max_trades_per_day": 1},
            ),
            acting_user=alice,
        )
        for i in range(count)
    ]
    for k in range(3):
        bot_ticks_run(run_ids=[r.pk for r in runs], candle_time=START + HOUR * k)
    for run in runs:
        assert BotLog.objects.filter(run=run, source="risk").count() == 2
        assert (
            AuditEvent.objects.filter(
                event_type="bots.risk_rejected", target_id=str(run.pk)
            ).count()
            == 2
        )


def test_a_batch_on_one_series_prepares_its_strategy_once(alice, btc_hours, monkeypatch):
    runs = sma_runs(alice, 3)
    prepared = []
    real = tick_trade.prepared_strategy
    monkeypatch.setattr(
        tick_trade, "prepared_strategy", lambda spec, w: prepared.append(spec) or real(spec, w)
    )
    for k in range(3):
        outcomes = bot_ticks_run(run_ids=[r.pk for r in runs], candle_time=START + HOUR * k)
        assert outcomes == {r.pk: "done" for r in runs}
    assert len(prepared) == 3  # one per candle, shared by the three runs
