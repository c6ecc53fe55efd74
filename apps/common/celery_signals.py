"""The worker's heartbeat, written by the worker's main process through a Celery bootstep.

A consumer bootstep runs in the main process (never in prefork children) and uses the
consumer's timer, which the worker's event loop drives: if that loop wedges, the heartbeat
stops, which is what /healthz should report. It does not depend on beat.
"""

import logging

import redis
from celery import bootsteps

from apps.common.health import WORKER_HEARTBEAT_INTERVAL_SECONDS, heartbeat_record

logger = logging.getLogger(__name__)


def _record_worker_heartbeat() -> None:
    try:
        heartbeat_record(kind="worker")
    except redis.RedisError as exc:
        logger.warning("worker heartbeat not written: %s", type(exc).__name__)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes `<prefix>:heartbeat:worker` at start and every WORKER_HEARTBEAT_INTERVAL_SECONDS."""

    label = "tradeloop heartbeat"

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None

    def start(self, parent):
        _record_worker_heartbeat()
        self.timer_entry = parent.timer.call_repeatedly(
            WORKER_HEARTBEAT_INTERVAL_SECONDS, _record_worker_heartbeat
        )

    def stop(self, parent):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop
