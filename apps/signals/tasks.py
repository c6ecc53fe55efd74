"""Celery entry points for webhook signals; alerts run on the "orders" queue
(CELERY_TASK_ROUTES), apart from ticks and backtests, so an alert never waits behind them;
a signal backtest is sent to the "backtests" queue (signals/backtest.py `_enqueue`).

Redelivery is harmless: the event row is locked and executes only while PENDING, and its
client order id (`sig<event id>-0`) is unique, so a second delivery places nothing.
"""

from celery import shared_task

SOFT_TIME_LIMIT = 20
TIME_LIMIT = 30


@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT)
def signal_execute(event_id: int) -> str:
    from apps.signals.execute import signal_event_execute

    return signal_event_execute(event_id=event_id)


BACKTEST_TIME_LIMIT = 960  # SignalBacktestRun.TIME_LIMIT_SECONDS
BACKTEST_SOFT_TIME_LIMIT = BACKTEST_TIME_LIMIT - 60


# Sent to the `backtests` queue explicitly (backtest._enqueue): long replays must not hold
# up alerts on the orders queue. A redelivery finds the run claimed and does nothing.
@shared_task(
    acks_late=True, soft_time_limit=BACKTEST_SOFT_TIME_LIMIT, time_limit=BACKTEST_TIME_LIMIT
)
def signal_backtest_run(run_id: int) -> bool:
    from apps.signals.backtest import signal_backtest_execute

    return signal_backtest_execute(run_id=run_id)
