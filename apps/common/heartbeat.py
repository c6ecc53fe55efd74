"""Beat's heartbeat: the scheduler writes `<prefix>:heartbeat:beat` as it ticks."""

import logging
import time

import redis
from django_celery_beat.schedulers import DatabaseScheduler

from apps.common.health import heartbeat_record

logger = logging.getLogger(__name__)

# Beat may tick many times a second when several entries are due; one write a second is enough.
MIN_SECONDS_BETWEEN_WRITES = 1.0


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler that reports each completed tick to /healthz."""

    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        # After the tick, so a scheduler stuck in the database stops beating.
        self._record_heartbeat()
        return delay

    def _record_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < MIN_SECONDS_BETWEEN_WRITES:
            return
        try:
            heartbeat_record(kind="beat")
        except redis.RedisError as exc:
            # Beat keeps scheduling (or fails on its own) whatever happens to its heartbeat.
            logger.warning("beat heartbeat not written: %s", type(exc).__name__)
            return
        self._last_heartbeat = now
