"""Test settings: real PostgreSQL and Redis, Celery never eager."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

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
