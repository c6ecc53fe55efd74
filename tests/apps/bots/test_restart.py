"""Restart safety with a real Celery worker on the `ticks` queue (never eager).

CEL-1: a replay bot runs through the worker; the worker is SIGKILLed mid-run (the whole
process group, so the in-flight message is never acked) and started again. The scheduler
re-enqueues the lost tick once its lease runs out; every candle of the window ends with
exactly one DONE Tick, and the orders are exactly those of an uninterrupted run.
CEL-3: every tick message published twice, and two schedulers racing: still one Tick per
candle and the same orders.
"""

import os
import signal
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from apps.bots.models import BotOrder, BotRun, Tick
from apps.bots.schedule import _enqueue, bots_schedule
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run
from tests.apps.bots.conftest import replay_bot, script_version, template_version
from tests.apps.common.processes import process_group_stop, process_start, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ticks", "-c", "1"]
WORKER += ["-l", "info"]
WAIT_SECONDS = 180
CANDLES = 40
# The last 40 hours of data/candles/BTC-USDT_1h.csv.
LAST_CANDLE = "2021-06-09T23:00:00+00:00"


@pytest.fixture
def fast_lease(settings):
    settings.BOTS_TICK_LEASE_SECONDS = 3


def start_worker(tmp_path, n: int):
    log = tmp_path / f"worker{n}.log"
    return process_start(WORKER, env=subprocess_env(key_prefix="tltest-bots"), log=log), log


# A script bot: each tick runs a sandbox child (~0.1-0.3 s), so the worker is busy most
# of the time and the SIGKILL lands in the middle of a tick.
SMA_SCRIPT = """
def main(sdk, params):
    fast, slow = sdk.sma(3), sdk.sma(8)
    if len(sdk.candles) < 9:
        return
    if sdk.position.size == 0 and fast[-2] < slow[-2] and fast[-1] > slow[-1]:
        sdk.buy()
    elif sdk.position.size > 0 and fast[-2] > slow[-2] and fast[-1] < slow[-1]:
        sdk.close()
"""


def window_bot(owner, name: str, script: bool = False):
    from datetime import datetime

    start = datetime.fromisoformat(LAST_CANDLE) - timedelta(hours=CANDLES - 1)
    if script:
        version = script_version(owner, SMA_SCRIPT, name=f"SMA script {name}")
    else:
        version = template_version(owner, name=f"SMA {name}", fast=3, slow=8)
    return replay_bot(
        owner, version, name=name, replay_start=start, replay_seconds_per_candle="0.3"
    )


def reference_orders(owner, script: bool = False) -> list[tuple]:
    """The same bot ticked in this process without any interruption."""
    run = bot_run_start(bot=window_bot(owner, "Reference", script), acting_user=owner)
    step = timedelta(hours=1)
    for k in range(CANDLES):
        assert bot_tick_run(run_id=run.pk, candle_time=run.bot.replay_start + step * k) == "done"
    return orders_of(run)


def orders_of(run: BotRun) -> list[tuple]:
    return list(
        BotOrder.objects.filter(run=run)
        .order_by("candle_time", "side")
        .values_list("candle_time", "side", "status", "filled_qty")
    )


def drive(run: BotRun, *, until, enqueue=_enqueue, schedulers: int = 1) -> None:
    """Be beat: run the scheduler until `until()` holds (or fail after WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not until():
        assert time.monotonic() < deadline, f"stuck at {BotRun.objects.get(pk=run.pk).ticks_done}"
        threads = [
            threading.Thread(target=_schedule_once, args=(enqueue,)) for _ in range(schedulers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.1)


def _schedule_once(enqueue) -> None:
    try:
        bots_schedule(enqueue=enqueue)
    finally:
        connection.close()


TASK = "bots.tasks.bot_ticks["


def busy_with(log) -> str | None:
    """The id of the tick task the worker is running now (received, not yet finished)."""
    lines = [line for line in log.read_text().splitlines() if TASK in line]
    if not lines or "received" not in lines[-1]:
        return None
    return lines[-1].split(TASK, 1)[1].split("]", 1)[0]


def assert_every_candle_ticked_once(run: BotRun) -> None:
    run.refresh_from_db()
    ticks = list(Tick.objects.filter(run=run).order_by("candle_time"))
    step = timedelta(hours=1)
    assert [t.candle_time for t in ticks] == [
        run.bot.replay_start + step * k for k in range(CANDLES)
    ]
    assert {t.status for t in ticks} == {"done"}
    assert run.ticks_done == CANDLES and run.ticks_dropped == 0


def test_cel1_a_worker_killed_mid_run_loses_and_repeats_no_tick(
    alice, btc_hours, fast_lease, tmp_path
):
    expected = reference_orders(alice, script=True)
    assert len(expected) >= 3  # the window trades
    run = bot_run_start(bot=window_bot(alice, "Killed", script=True), acting_user=alice)
    worker, log = start_worker(tmp_path, 1)
    try:
        drive(
            run,
            until=lambda: (
                BotRun.objects.get(pk=run.pk).ticks_done >= CANDLES // 3
                and busy_with(log) is not None
            ),
        )
        os.killpg(worker.pid, signal.SIGKILL)  # in the middle of a tick
        worker.wait()
        interrupted = busy_with(log)
        assert interrupted is not None and f"{TASK}{interrupted}] succeeded" not in log.read_text()
        killed_at = BotRun.objects.get(pk=run.pk).ticks_done
        assert killed_at < CANDLES
        worker, _log = start_worker(tmp_path, 2)
        drive(run, until=lambda: BotRun.objects.get(pk=run.pk).status == "DONE")
    finally:
        process_group_stop(worker)
    assert_every_candle_ticked_once(run)
    assert orders_of(run) == expected


def test_cel3_duplicate_messages_and_two_schedulers_are_harmless(
    alice, btc_hours, fast_lease, tmp_path
):
    expected = reference_orders(alice)
    run = bot_run_start(bot=window_bot(alice, "Duplicated"), acting_user=alice)

    def twice(run_ids: list[int], candle_iso: str, eta=None) -> None:
        _enqueue(run_ids, candle_iso, eta)
        _enqueue(run_ids, candle_iso, eta)

    worker, _log = start_worker(tmp_path, 1)
    try:
        drive(
            run,
            until=lambda: BotRun.objects.get(pk=run.pk).status == "DONE",
            enqueue=twice,
            schedulers=2,
        )
    finally:
        process_group_stop(worker)
    assert_every_candle_ticked_once(run)
    assert orders_of(run) == expected
