"""Celery entry points for backtests.

`backtest_task_run` goes to the `backtests` queue (CELERY_TASK_ROUTES). Beat sends the
stale sweep to the `default` queue (its CELERY_BEAT_SCHEDULE options), so long backtests
queued ahead of it never delay it.
"""

from celery import shared_task

from apps.common.jobs import stale_after

# A year of hourly candles on 10 pairs takes a few seconds; the limits leave room for
# minute candles over several years. The soft limit ends the run as a failed task with a
# clear message (services.fail.failure_text) before the hard limit kills the process.
SOFT_TIME_LIMIT = 900
TIME_LIMIT = 960
# A running task without progress for this long has lost its worker.
STALE_AFTER = stale_after(TIME_LIMIT)


# Redelivery (acks_late, reject_on_worker_lost, Redis' visibility timeout) is safe: the run
# starts with a conditional UPDATE queued -> running, so a redelivered or duplicated message
# finds nothing to claim and returns at once. It never resumes a running task: the original
# execution may still be alive (a run longer than the visibility timeout is redelivered
# while it runs), and a pair that killed its worker would kill the next one too. A task
# whose worker died is failed by the stale sweep below instead (beat runs it every minute,
# CELERY_BEAT_SCHEDULE in config/settings/base.py).
@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT)
def backtest_task_run(task_id: int) -> bool:
    from apps.backtests.services import backtest_task_run as run

    return run(task_id=task_id)


@shared_task
def backtest_tasks_fail_stale() -> list[int]:
    from apps.backtests.services import backtest_tasks_fail_stale as fail_stale

    return fail_stale(idle_for=STALE_AFTER)
