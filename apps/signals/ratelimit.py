"""Per-token request counting in Redis (fixed one-minute windows, shared by every web
process). Fairness, not security: the proxy holds the hard limits (reliability.md §5.4)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


def over_limit(scope: str, key: str, *, per_minute: int | None = None) -> bool:
    """Count one request for `key`; True once the window's count passes the limit."""
    limit = per_minute if per_minute is not None else settings.SIGNALS_RATE_LIMIT_PER_MINUTE
    window = int(time.time()) // WINDOW_SECONDS
    name = f"signals:rl:{scope}:{key}:{window}"
    if cache.add(name, 1, timeout=WINDOW_SECONDS * 2):
        return limit < 1
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    return count > limit
