"""Celery entry points for webhook signals; alerts run on the "orders" queue
(CELERY_TASK_ROUTES), apart from ticks and backtests, so an alert never waits behind them
(a signal backtest is a backtests-app task: signals/backtest.py).

Redelivery is harmless: the event row is locked and executes only while PENDING, and its
client order id (`sig<event id>-0`) is unique, so a second delivery places nothing.
"""

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_init, worker_process_init

logger = logging.getLogger(__name__)
SOFT_TIME_LIMIT = 20
TIME_LIMIT = 30


# The outcome is on the WebhookEvent; nobody reads a task result, so none is stored.
@shared_task(
    acks_late=True, ignore_result=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT
)
def signal_execute(event_id: int) -> str:
    from apps.signals.execute import signal_event_execute

    return signal_event_execute(event_id=event_id)


@worker_init.connect
def _import_before_fork(**kwargs: Any) -> None:
    """The execution's imports (ccxt, the engine) in the main process, so every forked
    child has them instead of paying a second or more on its first alert."""
    import apps.signals.execute  # noqa: F401


@worker_process_init.connect
def _warm_brokers(**kwargs: Any) -> None:
    """Each child builds the brokers of the running signal bots' exchange accounts."""
    from django.db import DatabaseError, connection

    from apps.signals.execute import signal_brokers_warm

    try:
        signal_brokers_warm()
    except DatabaseError:
        logger.warning("signal brokers not warmed: the database is unreachable")
    finally:
        # The child's first task opens its own connection, as it would have.
        connection.close()
