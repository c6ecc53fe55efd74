"""Celery entry points for bots; all on the `ticks` queue (CELERY_TASK_ROUTES).

- `bots_schedule_due` (beat, every BOTS_SCHEDULE_SECONDS): enqueue the due ticks;
- `bot_tick(run_id, candle_iso)`: one tick, idempotent on (run, candle) through the Tick
  row, so duplicated or redelivered messages do nothing (CEL-1, CEL-3);
- `bots_reconcile` (beat, and once when a worker starts): orders a crash left unresolved.

A tick that runs over its soft time limit has rolled back; its candle is counted as
dropped and the bot goes on with the next one (retrying would likely overrun again and
hold the bot's whole schedule back; the strategy decides on the next candle from the
persisted state, and no order was half-written).
"""

from datetime import datetime

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready

# Well under the visibility timeout (CEL-2); a tick normally takes milliseconds, a script
# tick at most its sandbox's wall clock (tick.SCRIPT_LIMITS).
TICK_SOFT_TIME_LIMIT = 20
TICK_TIME_LIMIT = 30


@shared_task(acks_late=True, soft_time_limit=TICK_SOFT_TIME_LIMIT, time_limit=TICK_TIME_LIMIT)
def bot_tick(run_id: int, candle_iso: str) -> str:
    from apps.bots.tick import bot_tick_overrun, bot_tick_run

    candle_time = datetime.fromisoformat(candle_iso)
    try:
        return bot_tick_run(run_id=run_id, candle_time=candle_time)
    except SoftTimeLimitExceeded:
        bot_tick_overrun(run_id=run_id, candle_time=candle_time)
        return "dropped"


@shared_task(ignore_result=True)
def bots_schedule_due() -> int:
    from apps.bots.schedule import bots_schedule

    return bots_schedule()


@shared_task(ignore_result=True)
def bots_reconcile() -> int:
    from apps.bots.schedule import bot_orders_reconcile

    return bot_orders_reconcile()


@worker_ready.connect
def _reconcile_on_start(sender=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    bots_reconcile.apply_async()
