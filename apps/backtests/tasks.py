"""Celery entry point for backtests (routed to the `backtests` queue by CELERY_TASK_ROUTES)."""

from celery import shared_task

# A year of hourly candles on 10 pairs takes a few seconds; the limits leave room for
# minute candles over several years. The soft limit ends the run as a failed task with a
# clear message (services.fail.failure_text) before the hard limit kills the process.
SOFT_TIME_LIMIT = 900
TIME_LIMIT = 960


# acks_late is safe: the run starts with a conditional UPDATE queued -> running, so a
# redelivered or duplicated message finds nothing to claim and returns at once.
@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT)
def backtest_task_run(task_id: int) -> bool:
    from apps.backtests.services import backtest_task_run as run

    return run(task_id=task_id)
