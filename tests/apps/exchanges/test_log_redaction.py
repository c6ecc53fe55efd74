"""CCXT-4 plumbing: every handler, including ones added after startup, gets clean records."""

import io
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

from apps.common.logging import REDACTED, register_secret

ROOT = Path(__file__).resolve().parents[3]


def _secret() -> str:
    value = f"log-secret-{secrets.token_hex(8)}"
    register_secret(value)
    return value


STARTUP_HANDLERS = """
import logging, django
django.setup()
from apps.common.logging import RedactSecretsFilter
loggers = [logging.getLogger()] + [
    l for l in logging.Logger.manager.loggerDict.values() if isinstance(l, logging.Logger)
]
handlers = [h for logger in loggers for h in logger.handlers]
print(len(handlers))
print([repr(h) for h in handlers if not any(isinstance(f, RedactSecretsFilter) for f in h.filters)])
"""


def test_every_handler_configured_at_startup_carries_the_filter():
    # A fresh interpreter: in this one, tests and libraries have added handlers since startup
    # (those are covered by the record factory, next test).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_HANDLERS], env=env, cwd=ROOT, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    count, missing = done.stdout.splitlines()[-2:]
    assert int(count) >= 3  # ours plus Django's django.server and mail_admins
    assert missing == "[]"


def test_a_handler_added_later_receives_redacted_messages_and_tracebacks():
    secret = _secret()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.redaction.late")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", secret)
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    output = stream.getvalue()
    assert secret not in output
    assert output.count(REDACTED) >= 2
    assert "ValueError: bad key" in output


def test_unregistered_credentials_in_ccxt_headers_are_masked_by_shape():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.redaction.shape")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Request: %s", {"X-MBX-APIKEY": "never-registered-key-9f8e"})
    finally:
        logger.removeHandler(handler)

    assert "never-registered-key-9f8e" not in stream.getvalue()
