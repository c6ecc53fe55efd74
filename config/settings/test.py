"""Test settings: real PostgreSQL and Redis, Celery never eager."""

import os
from urllib.parse import urlsplit, urlunsplit


def _redis_url_for_xdist_worker(url: str, worker: str) -> str:
    """Give each xdist worker (gw0, gw1, ...) its own Redis database.

    Workers share one Redis server: on one database, a Celery worker started by one test
    would take another test's messages, and cache.clear() (FLUSHDB) would wipe them.
    """
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 1 + int(worker.removeprefix('gw'))}"))


if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    os.environ["REDIS_URL"] = _redis_url_for_xdist_worker(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), os.environ["PYTEST_XDIST_WORKER"]
    )

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import env  # noqa: E402

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FIELD_ENCRYPTION_KEYS = ["P0yq6Fv7v2m0kWm9r1vQ2s3b4n5c6x7z8a9s0d1f2g4="]
KEY_FINGERPRINT_PEPPER = "test-pepper"
CELERY_TASK_ALWAYS_EAGER = False
# Separate key space so a test run never touches a running platform's cache or layer.
CACHES["default"]["KEY_PREFIX"] = env.str("TRADELOOP_CACHE_PREFIX", default="tltest")  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "tltest"  # noqa: F405
