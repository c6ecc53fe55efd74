"""Local development: `make run` uses these settings."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
# A fixed development key so encrypted rows survive restarts; production must set its own.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["hV1p7W8u8Q0y4o1n2m3l4k5j6h7g8f9d0s1a2z3x4c4="]
)
