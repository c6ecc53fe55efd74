"""Health tests get their own Redis key space.

Every test in the suite flushes the test Redis db (tests/conftest.py clears the cache), so
heartbeats written there can vanish mid-test under xdist. These tests use a sibling db that
nothing flushes, and a per-test key prefix so parallel tests never read each other's keys.
"""

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings as django_settings


def sibling_redis_url(url: str) -> str:
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 8) % 16}"))


@pytest.fixture
def health_prefix(settings) -> str:
    prefix = f"tlhealth-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = sibling_redis_url(django_settings.REDIS_URL)
    caches = {name: dict(config) for name, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    return prefix


@pytest.fixture
def health_redis(health_prefix):
    """A client on the health tests' Redis db; removes this test's heartbeat keys afterwards."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)  # already the sibling db
    yield client
    client.delete(*[f"{health_prefix}:heartbeat:{kind}" for kind in ("worker", "beat")])
    client.close()
