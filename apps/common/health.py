"""Platform health: database, Redis, and the worker and beat heartbeats behind /healthz.

The worker's main process (apps.common.celery_signals) and beat's scheduler
(apps.common.heartbeat) write `<prefix>:heartbeat:<kind>` = unix time to Redis; this module
reads them back. It imports no models, so Celery can load it before Django is set up.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from redis.backoff import NoBackoff
from redis.retry import Retry

HEARTBEAT_KINDS = ("worker", "beat")
# How often the worker writes its heartbeat; beat writes on every scheduler tick (<= 5 s).
WORKER_HEARTBEAT_INTERVAL_SECONDS = 10.0
# /healthz must answer fast even when Redis hangs, so no retries and one-second timeouts.
REDIS_TIMEOUT_SECONDS = 1.0


@functools.lru_cache(maxsize=8)
def _redis_client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def redis_client() -> redis.Redis:
    return _redis_client_for(settings.REDIS_URL)


def heartbeat_key(kind: str) -> str:
    # The cache prefix differs between a running platform ("tl") and a test run ("tltest"),
    # so a test never reads the heartbeats of a platform running on the same Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "tl"
    return f"{prefix}:heartbeat:{kind}"


def heartbeat_record(*, kind: str, client: redis.Redis | None = None) -> None:
    """Store "`kind` is alive now". Raises redis.RedisError when Redis is unreachable."""
    stale_after = settings.HEARTBEAT_STALE_AFTER_SECONDS
    # Keep the key well past staleness so /healthz can say "stale, 75 s old", not just "none".
    (client or redis_client()).set(heartbeat_key(kind), f"{time.time():.3f}", ex=stale_after * 10)


def _database_check() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _heartbeat_check(raw: bytes | None, now: float) -> dict[str, Any]:
    stale_after = settings.HEARTBEAT_STALE_AFTER_SECONDS
    if raw is None:
        return {"ok": False, "error": "no heartbeat", "stale_after_seconds": stale_after}
    try:
        age = round(max(0.0, now - float(raw)), 1)
    except ValueError:
        return {"ok": False, "error": "unreadable heartbeat", "stale_after_seconds": stale_after}
    check: dict[str, Any] = {"ok": age <= stale_after, "age_seconds": age}
    check["stale_after_seconds"] = stale_after
    if not check["ok"]:
        check["error"] = "stale"
    return check


def _redis_and_heartbeat_checks() -> dict[str, dict[str, Any]]:
    client = redis_client()
    try:
        client.ping()
        values = client.mget([heartbeat_key(kind) for kind in HEARTBEAT_KINDS])
    except redis.RedisError as exc:
        # The error class only: a connection error's text can contain the URL and its password.
        unknown = {"ok": False, "error": "redis unavailable"}
        checks = {"redis": {"ok": False, "error": type(exc).__name__}}
        checks.update({kind: dict(unknown) for kind in HEARTBEAT_KINDS})
        return checks
    now = time.time()
    checks = {"redis": {"ok": True}}
    for kind, raw in zip(HEARTBEAT_KINDS, values, strict=True):
        checks[kind] = _heartbeat_check(raw, now)
    return checks


def platform_health() -> dict[str, Any]:
    """The /healthz report: every check with `ok`, and "ok" only when all are."""
    checks = {"database": _database_check(), **_redis_and_heartbeat_checks()}
    status = "ok" if all(check["ok"] for check in checks.values()) else "degraded"
    return {"status": status, "checks": checks}
