"""Celery entry points for webhook signals; alerts run on the "orders" queue
(CELERY_TASK_ROUTES), apart from ticks and backtests, so an alert never waits behind them
(a signal backtest is a backtests-app task: signals/backtest.py).

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
