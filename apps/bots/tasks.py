"""Celery entry points for bots; all on the `ticks` queue (CELERY_TASK_ROUTES).

- `bots_schedule_due` (beat, every BOTS_SCHEDULE_SECONDS): enqueue the due ticks;
- `bot_ticks(run_ids, candle_iso, not_before_iso)`: a batch of runs ticked on one candle,
  idempotent on (run, candle) through the Tick rows, so duplicated or redelivered messages
  do nothing (CEL-1, CEL-3); the scheduler sends it before the candle closes with an ETA
  at the close, and a message delivered before `not_before` goes back to wait for it;
  `bot_tick(run_id, candle_iso)` is a batch of one (messages enqueued before batches
  existed);
- `bots_reconcile` (beat, and once when a worker starts): orders a crash left unresolved.

A batch that runs over its soft time limit has rolled back: the candle of the run whose
strategy was running is counted as dropped and that bot goes on with the next one
(retrying would likely overrun again and hold the bot's whole schedule back; the strategy
decides on the next candle from the persisted state, and no order was half-written); the
batch's other runs are enqueued again at once, without it.
"""

from datetime import datetime

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.utils import timezone

# Well under the visibility timeout (CEL-2); a tick normally takes milliseconds, a script
# tick at most its sandbox's wall clock (tick_trade.SCRIPT_LIMITS).
TICK_SOFT_TIME_LIMIT = 20
TICK_TIME_LIMIT = 30


@shared_task(acks_late=True, soft_time_limit=TICK_SOFT_TIME_LIMIT, time_limit=TICK_TIME_LIMIT)
def bot_ticks(
    run_ids: list[int], candle_iso: str, not_before_iso: str | None = None
) -> dict[int, str]:
    from apps.bots.tick import Batch, bot_tick_overrun, bot_ticks_run

    if not_before_iso is not None:
        not_before = datetime.fromisoformat(not_before_iso)
        if timezone.now() < not_before:
            # Delivered before its ETA (the candle is not closed yet): wait for it again.
            bot_ticks.apply_async(args=[run_ids, candle_iso, not_before_iso], eta=not_before)
            return dict.fromkeys(run_ids, "early")
    candle_time = datetime.fromisoformat(candle_iso)
    batch = Batch(run_ids, candle_time)
    try:
        return bot_ticks_run(run_ids=run_ids, candle_time=candle_time, batch=batch)
    except SoftTimeLimitExceeded:
        overran = batch.current if batch.current is not None else run_ids[0]
        bot_tick_overrun(run_id=overran, candle_time=candle_time)
        rest = [run_id for run_id in run_ids if run_id != overran]
        if rest:
            bot_ticks.apply_async(args=[rest, candle_iso])
        return {overran: "dropped"}


@shared_task(acks_late=True, soft_time_limit=TICK_SOFT_TIME_LIMIT, time_limit=TICK_TIME_LIMIT)
def bot_tick(run_id: int, candle_iso: str) -> str:
    return bot_ticks(run_ids=[run_id], candle_iso=candle_iso).get(run_id, "skipped")


@shared_task(ignore_result=True)
def bots_schedule_due() -> int:
    from apps.bots.schedule import bots_schedule

    return bots_schedule()


@shared_task(ignore_result=True)
def bots_reconcile() -> int:
    from apps.bots.exchange_orders import exchange_orders_reconcile
    from apps.bots.schedule import bot_orders_reconcile

    return bot_orders_reconcile() + exchange_orders_reconcile()


@worker_ready.connect
def _reconcile_on_start(sender=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    bots_reconcile.apply_async()
